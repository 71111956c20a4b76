/**
 * Diffs two V8 heap snapshots (rss_rounds.ts --snapshots writes them) by constructor: which kinds of
 * object grew in count and bytes between the two. A diagnostic for the soak's memory growth.
 *
 *   npx tsx test/soak/heap_diff.ts A.heapsnapshot B.heapsnapshot [--top 25]
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Count and self bytes of the nodes of a snapshot, by "type:name". */
export function byConstructor(path: string): Map<string, { count: number; bytes: number }> {
  const s = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt] as number] as string;
    let name = type === 'object' || type === 'native' || type === 'closure' ? (s.strings[s.nodes[i + nameAt] as number] as string) : '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type}:${name}`;
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + sizeAt] as number;
    out.set(key, e);
  }
  return out;
}

function main(argv: string[]): void {
  const [a, b] = argv;
  if (!a || !b) throw new Error('usage: heap_diff.ts A.heapsnapshot B.heapsnapshot [--top N]');
  const top = Number(argv[argv.indexOf('--top') + 1] ?? 25) || 25;
  const before = byConstructor(a);
  const after = byConstructor(b);
  const rows = [...after].map(([key, e]) => ({ key, count: e.count - (before.get(key)?.count ?? 0), bytes: e.bytes - (before.get(key)?.bytes ?? 0) }));
  rows.sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  console.log(`self bytes grown in total: ${(total / 1024).toFixed(1)} KiB`);
  for (const r of rows.slice(0, top)) console.log(`${(r.bytes / 1024).toFixed(1).padStart(10)} KiB ${String(r.count).padStart(8)}  ${r.key}`);
}

if (process.argv[1]?.endsWith('heap_diff.ts')) main(process.argv.slice(2));
