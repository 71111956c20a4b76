/**
 * CPU and wall time per Level-1 training batch of `lungpath train`, measured from outside: runs the
 * CLI of a checkout (niced, as LUNGPATH_FROM_SOURCE=1), and at each Level-1 batch record of its
 * metrics.jsonl reads the process's CPU time from /proc (user + system of all threads, and per
 * thread: the main thread, lavapipe's compute threads, the rest). Reports the cost per batch
 * between batch records FIRST and LAST, then kills the run. CPU time is what to compare on a
 * shared machine (wall time follows the load); run two checkouts at once so the load hits both.
 *
 *   npx tsx tools/batch_cost.ts [--checkout DIR] [--first 25] [--last 125] [--cache DIR] -- [train flags]
 *
 * The train flags default to `--data .cache/synth-256px-80-per-class-seed2026`; `--cache` sets
 * XDG_CACHE_HOME (kernel table and Mesa shader cache) for the run. One JSON line on stdout.
 * Linux only (/proc).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const TICKS_PER_SECOND = 100; // Linux USER_HZ

const split = process.argv.indexOf('--');
const ours = split === -1 ? process.argv.slice(2) : process.argv.slice(2, split);
const trainFlags = split === -1 ? [] : process.argv.slice(split + 1);
const { values } = parseArgs({ args: ours, options: { checkout: { type: 'string', default: '.' }, first: { type: 'string', default: '25' }, last: { type: 'string', default: '125' }, cache: { type: 'string' } } });
const checkout = resolve(values.checkout as string);
const [first, last] = [Number(values.first), Number(values.last)];
if (!(first >= 1 && last > first)) throw new Error(`batch_cost: need 1 <= --first < --last, got ${first} and ${last}`);
if (!trainFlags.includes('--data')) trainFlags.push('--data', join(checkout, '.cache/synth-256px-80-per-class-seed2026'));
const out = join(tmpdir(), `batch-cost-${process.pid}-${Date.now()}`);

/** CPU seconds (utime + stime) of one /proc stat line, and its thread name. */
function parseStat(text: string): { name: string; seconds: number } {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { name: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')), seconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
}

/** CPU seconds per thread of `pid` ('main' for the main thread), and their sum with reaped children. */
function sample(pid: number): { total: number; threads: Map<string, number> } {
  const threads = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const { name, seconds } = parseStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
      threads.set(Number(tid) === pid ? 'main' : `${name}:${tid}`, seconds);
    } catch {
      // the thread ended between listing and reading
    }
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const total = fields.slice(11, 15).reduce((s, f) => s + Number(f), 0) / TICKS_PER_SECOND;
  return { total, threads };
}

const child = spawn('nice', ['-n', '15', 'node', 'bin/lungpath.js', 'train', '--out', out, '--epochs', '1', '--level2-epochs', '1', '--log-interval', '25', ...trainFlags], {
  cwd: checkout,
  env: { ...process.env, LUNGPATH_FROM_SOURCE: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...(values.cache ? { XDG_CACHE_HOME: resolve(values.cache) } : {}) },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const pid = child.pid as number;
const t0 = performance.now();
const seen = new Map<number, { wall: number; total: number; threads: Map<string, number> }>();
let lines = 0;
const exited = new Promise<void>((r) => child.on('exit', () => r()));
let done = false;
void exited.then(() => (done = true));
while (!done && !seen.has(last)) {
  await new Promise((r) => setTimeout(r, 20));
  const file = join(out, 'metrics.jsonl');
  if (!existsSync(file)) continue;
  const records = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  if (records.length <= lines) continue;
  const now = { wall: (performance.now() - t0) / 1000, ...sample(pid) };
  for (const line of records.slice(lines)) {
    const r = JSON.parse(line) as { level?: number; kind?: string; batch?: number };
    if (r.level === 1 && r.kind === undefined && r.batch !== undefined) seen.set(r.batch, now);
  }
  lines = records.length;
}
if (!done) child.kill('SIGKILL');
await exited;
const [a, b] = [seen.get(first), seen.get(last)];
if (!a || !b) {
  console.log(JSON.stringify({ error: `the run ended before batch ${last} (records at ${[...seen.keys()].join(', ') || 'none'}); its folder: ${out}` }));
  process.exit(1);
}
const n = last - first;
const perThread = [...b.threads].map(([k, v]) => [k, (v - (a.threads.get(k) ?? 0)) / n] as const).filter(([, v]) => v >= 0.001);
perThread.sort((x, y) => y[1] - x[1]);
const round = (v: number) => Math.round(v * 1e4) / 1e4;
console.log(
  JSON.stringify({
    checkout,
    flags: trainFlags.join(' '),
    batches: `${first}..${last}`,
    cpuPerBatchS: round((b.total - a.total) / n),
    wallPerBatchS: round((b.wall - a.wall) / n),
    cpuPerBatchByThreadS: Object.fromEntries(perThread.slice(0, 6).map(([k, v]) => [k, round(v)])),
    load1: readFileSync('/proc/loadavg', 'utf8').split(' ')[0],
  }),
);
