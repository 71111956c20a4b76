/**
 * Where does a process's memory go, round by round? A diagnostic driver for the soak's RSS growth
 * (issue 16): it repeats one phase of a training run many times in one process on one runtime and,
 * after each round and a full `global.gc()`, records RSS, the V8 heap, external and ArrayBuffer
 * bytes, the buffer pool's bytes, the GPU objects the runtime holds (pool buffers, pipelines,
 * layouts, cached bind groups, staging buffers), the GPU objects created in the round (counted on the
 * device) and the signal/exit listeners on `process`.
 *
 *   node --expose-gc --import tsx test/soak/rss_rounds.ts [--phase train|evaluate|features|plots|level1|idle]
 *        [--rounds 30] [--preset micro|tiny] [--out FILE.json] [--snapshots DIR]
 *
 * Phases: `train` is the soak's round (a whole in-process `lungpath train --resume` with two more
 * Level-1 epochs each time); `level1` the same with no Level-2 epochs... (see PHASES); `evaluate`,
 * `features` and `plots` repeat one phase on a run trained once before the first round; `idle`
 * does nothing (the floor). Run under different allocators to separate leaks from fragmentation,
 * e.g. `MALLOC_ARENA_MAX=2` or `LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { createNodeRuntime } from '../../src/kernels/node.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { TINY_CONFIG } from '../../src/nn/config.ts';
import { parseTrainArgs, train, loadDataset } from '../../src/train/commands/train.ts';
import { evaluateRun, writeReport, loadRunNetworks } from '../../src/train/evaluate.ts';
import { cachedFeatures } from '../../src/train/features.ts';
import { trainLevel2 } from '../../src/train/level2.ts';
import { rocPlot, trainingCurvesPlot, confusionPlot } from '../../src/train/plots.ts';
import { RunFolder } from '../../src/train/run_folder.ts';
import { generateSynthDataset } from '../../src/train/synth.ts';
import { MICRO } from '../helpers/micro_run.ts';

const MiB = 1 << 20;
const r1 = (x: number) => Math.round(x * 10) / 10;

export interface RoundRecord {
  round: number;
  seconds: number;
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
  poolHeldMiB: number;
  poolBuffersCreated: number;
  pipelines: number;
  layouts: number;
  bindGroupsCached: number;
  stagingCreated: number;
  stagingFreeMiB: number;
  /** GPU objects created on the device during the round, by kind. */
  created: Record<string, number>;
  /** Buffers created minus destroyed on the device since the start. */
  liveBuffers: number;
  listeners: number;
  /** glibc malloc: bytes in use and bytes free but kept (mallinfo2; main arena and the others). */
  mallocInUseMiB: number;
  mallocFreeMiB: number;
  /** RSS split as /proc/self/status does: anonymous pages, and pages of mapped files (libraries included). */
  rssAnonMiB: number;
  rssFileMiB: number;
}

/** Counts what is created on `device` (wrapping its create* methods) and buffers destroyed. */
function countDevice(device: GPUDevice): { created: Record<string, number>; live: () => number } {
  const created: Record<string, number> = {};
  let live = 0;
  const d = device as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const name of ['createBuffer', 'createBindGroup', 'createShaderModule', 'createComputePipeline', 'createPipelineLayout', 'createBindGroupLayout', 'createCommandEncoder', 'createQuerySet']) {
    const original = d[name] as (...a: unknown[]) => unknown;
    d[name] = function (this: unknown, ...args: unknown[]) {
      created[name] = (created[name] ?? 0) + 1;
      const made = original.apply(device, args);
      if (name === 'createBuffer') {
        live++;
        const buffer = made as GPUBuffer;
        const destroy = buffer.destroy.bind(buffer);
        let destroyed = false;
        buffer.destroy = () => {
          if (!destroyed) live--;
          destroyed = true;
          destroy();
        };
      }
      return made;
    };
  }
  return { created, live: () => live };
}

let trimFn: ((pad: number) => number) | null = null;
let mallinfoFn: (() => Record<string, number>) | null = null;
/** glibc's mallinfo2(): bytes malloc holds in use (`uordblks`, `hblkhd` mmapped) and free (`fordblks`), in MiB. */
function mallocInfo(): { inUseMiB: number; freeMiB: number } {
  if (!mallinfoFn) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const fields = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost'];
    const struct = koffi.struct('mallinfo2_t', Object.fromEntries(fields.map((f) => [f, 'size_t'])));
    mallinfoFn = koffi.load('libc.so.6').func('mallinfo2', struct, []) as () => Record<string, number>;
  }
  const m = mallinfoFn();
  return { inUseMiB: r1((Number(m.uordblks) + Number(m.hblkhd)) / MiB), freeMiB: r1(Number(m.fordblks) / MiB) };
}
/** glibc's malloc_trim(0): returns free pages of every arena to the system. */
function mallocTrim(): void {
  if (!trimFn) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    trimFn = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number;
  }
  trimFn(0);
}

/** RssAnon and RssFile of /proc/self/status in MiB (0 where there is no /proc). */
function procRss(): { rssAnonMiB: number; rssFileMiB: number } {
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return { rssAnonMiB: 0, rssFileMiB: 0 };
  }
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { rssAnonMiB: r1(kib('RssAnon') / 1024), rssFileMiB: r1(kib('RssFile') / 1024) };
}

function listeners(): number {
  return ['SIGINT', 'SIGTERM', 'exit', 'uncaughtException', 'unhandledRejection', 'warning'].reduce((a, s) => a + process.listenerCount(s), 0);
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('run with node --expose-gc');
  g();
  g();
}

export interface RoundsOptions {
  phase: string;
  rounds: number;
  preset: 'micro' | 'tiny';
  snapshots?: string;
  /** Call glibc's malloc_trim(0) (through koffi) after each round, before measuring. */
  trim?: boolean;
  log: (line: string) => void;
}

/** Runs `rounds` rounds of `phase`; see the file header. */
export async function runRounds(o: RoundsOptions): Promise<RoundRecord[]> {
  const work = mkdtempSync(join(tmpdir(), 'lungpath-rss-'));
  process.env.LUNGPATH_KERNELS ??= 'heuristic';
  let rt: Runtime | null = null;
  try {
    const config = o.preset === 'tiny' ? TINY_CONFIG : MICRO;
    const presetPath = join(work, 'preset.json');
    writeFileSync(presetPath, JSON.stringify(config));
    const data = join(work, 'data');
    await generateSynthDataset({ out: data, perClass: 8, size: config.imageSize, seed: 17, layout: 'split' });
    rt = await createNodeRuntime();
    const runtime = rt;
    const counts = countDevice(rt.device);
    const out = join(work, 'run');
    let epochs = 0;
    const trainRound = async (level2Epochs: number) => {
      epochs += 2;
      const args = ['--data', data, '--out', out, '--preset', presetPath, '--seed', '3', '--quiet', '--batch-size', '16',
        '--epochs', String(epochs), '--level2-epochs', String(level2Epochs), '--log-interval', '1', '--checkpoint-every', '5', '--resume'];
      await train(parseTrainArgs(args) as NonNullable<ReturnType<typeof parseTrainArgs>>, [runtime]);
    };
    const noop = () => {};
    let phase: () => Promise<void>;
    if (o.phase === 'train') phase = () => trainRound(3);
    else if (o.phase === 'level1') phase = () => trainRound(1);
    else if (o.phase === 'idle') phase = async () => {};
    else {
      await trainRound(3);
      const run = new RunFolder(out);
      const cfg = run.readConfig();
      const dataset = await loadDataset(data, cfg, 3, false, noop);
      if (o.phase === 'evaluate') {
        phase = async () => {
          const report = await evaluateRun(runtime, run, dataset, 'test', { tta: false, batchSize: 16, warn: noop, onMismatch: 'resize', log: noop });
          await writeReport(run, report);
        };
      } else if (o.phase === 'features') {
        phase = async () => {
          rmSync(run.cache, { recursive: true, force: true });
          run.create();
          const { level1, level2, level1Bytes } = loadRunNetworks(runtime, run, cfg);
          try {
            const f = await cachedFeatures(runtime, run.cache, 'train', level1, level1Bytes, cfg, dataset.splits.train, { warn: noop, onMismatch: 'resize' });
            f.close();
          } finally {
            level1.destroy();
            level2.destroy();
          }
        };
      } else if (o.phase === 'level2') {
        // GPU training steps and checkpoints only: no image decoding, no plots.
        const { level1, level2, level1Bytes } = loadRunNetworks(runtime, run, cfg);
        level2.destroy();
        const opts = { warn: noop, onMismatch: 'resize' as const };
        const trainF = await cachedFeatures(runtime, run.cache, 'train', level1, level1Bytes, cfg, dataset.splits.train, opts);
        const valF = await cachedFeatures(runtime, run.cache, 'val', level1, level1Bytes, cfg, dataset.splits.val, opts);
        level1.destroy();
        const settings = parseTrainArgs(['--data', data, '--out', out, '--preset', presetPath, '--seed', '3', '--quiet', '--batch-size', '16', '--level2-epochs', '3', '--log-interval', '1', '--checkpoint-every', '5']);
        phase = async () => {
          const result = await trainLevel2([runtime], run, cfg, [trainF], valF, 'x', { ...(settings as NonNullable<typeof settings>).level2, warn: noop });
          result.net.destroy();
        };
      } else if (o.phase === 'plots') {
        phase = async () => {
          const points = Array.from({ length: 40 }, (_, i) => ({ level: 'Level 1 (patches)', epoch: i, split: 'train' as const, loss: 1 / (i + 1), accuracy: i / 40 }));
          await trainingCurvesPlot(points, 'curves');
          await rocPlot([{ fpr: [0, 0.5, 1], tpr: [0, 0.7, 1], auc: 0.6 }], ['A'], 'roc');
          await confusionPlot([[1, 2], [3, 4]], ['A', 'B'], 'confusion');
        };
      } else throw new Error(`--phase ${o.phase}: train, level1, evaluate, features, plots or idle`);
    }
    const records: RoundRecord[] = [];
    o.log('round     s   rss  heapU  heapT    ext   arrB  poolMiB poolBuf pipes lay  bgs stg stgMiB liveBuf lis mallocUse mallocFree anon file created-in-round');
    const t0 = Date.now();
    for (let round = 0; round <= o.rounds; round++) {
      const before = { ...counts.created };
      if (round > 0) await phase();
      for (const k of Object.keys(counts.created)) counts.created[k] = counts.created[k] as number; // keep keys
      gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
      gc();
      if (o.trim) mallocTrim();
      const mem = process.memoryUsage();
      const held = runtime.heldObjects();
      const stats = runtime.poolStats();
      const staging = runtime.stagingCreated();
      const created: Record<string, number> = {};
      for (const [k, v] of Object.entries(counts.created)) if (v - (before[k] ?? 0) > 0) created[k.replace('create', '')] = v - (before[k] ?? 0);
      const rec: RoundRecord = {
        round,
        seconds: r1((Date.now() - t0) / 1000),
        rssMiB: r1(mem.rss / MiB),
        heapUsedMiB: r1(mem.heapUsed / MiB),
        heapTotalMiB: r1(mem.heapTotal / MiB),
        externalMiB: r1(mem.external / MiB),
        arrayBuffersMiB: r1(mem.arrayBuffers / MiB),
        poolHeldMiB: r1(stats.allocatedBytes / MiB),
        poolBuffersCreated: stats.created,
        pipelines: held.pipelines,
        layouts: held.layouts,
        bindGroupsCached: held.bindGroups,
        stagingCreated: staging.upload + staging.readback,
        stagingFreeMiB: r1(held.stagingFreeBytes / MiB),
        created,
        liveBuffers: counts.live(),
        listeners: listeners(),
        ...procRss(),
        ...(({ inUseMiB, freeMiB }) => ({ mallocInUseMiB: inUseMiB, mallocFreeMiB: freeMiB }))(mallocInfo()),
      };
      records.push(rec);
      o.log(formatRecord(rec));
      if (o.snapshots && (round === 3 || round === o.rounds)) writeHeapSnapshot(join(o.snapshots, `round-${round}.heapsnapshot`));
    }
    return records;
  } finally {
    rt?.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

function formatRecord(r: RoundRecord): string {
  const n = (x: number, w: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1)).padStart(w);
  const created = Object.entries(r.created).map(([k, v]) => `${k}:${v}`).join(' ');
  return [n(r.round, 5), n(r.seconds, 5), n(r.rssMiB, 5), n(r.heapUsedMiB, 6), n(r.heapTotalMiB, 6), n(r.externalMiB, 6), n(r.arrayBuffersMiB, 6), n(r.poolHeldMiB, 8), n(r.poolBuffersCreated, 7), n(r.pipelines, 5), n(r.layouts, 3), n(r.bindGroupsCached, 4), n(r.stagingCreated, 3), n(r.stagingFreeMiB, 6), n(r.liveBuffers, 7), n(r.listeners, 3), n(r.mallocInUseMiB, 9), n(r.mallocFreeMiB, 10), n(r.rssAnonMiB, 6), n(r.rssFileMiB, 5), created].join(' ');
}

/** Least-squares slope of `ys` per round. */
export function slopePerRound(ys: readonly number[]): number {
  const n = ys.length;
  const mx = (n - 1) / 2;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0;
  let sxy = 0;
  ys.forEach((y, i) => {
    sxx += (i - mx) ** 2;
    sxy += (i - mx) * (y - my);
  });
  return sxx > 0 ? sxy / sxx : 0;
}

function flag(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? fallback : (argv[i + 1] ?? fallback);
}

async function main(argv: string[]): Promise<void> {
  const preset = flag(argv, 'preset', 'micro');
  if (preset !== 'micro' && preset !== 'tiny') throw new Error('--preset must be micro or tiny');
  const snapshots = flag(argv, 'snapshots', '');
  const records = await runRounds({ phase: flag(argv, 'phase', 'train'), rounds: Number(flag(argv, 'rounds', '30')), preset, snapshots: snapshots || undefined, trim: argv.includes('--trim'), log: (l) => console.log(l) });
  const half = records.slice(Math.floor(records.length / 2));
  const keys = ['rssMiB', 'heapUsedMiB', 'externalMiB', 'arrayBuffersMiB', 'mallocInUseMiB', 'mallocFreeMiB', 'rssAnonMiB', 'rssFileMiB'] as const;
  console.log(`slopes per round over the second half: ${keys.map((k) => `${k} ${slopePerRound(half.map((r) => r[k])).toFixed(2)}`).join(', ')}`);
  const outFile = flag(argv, 'out', '');
  if (outFile) writeFileSync(outFile, JSON.stringify(records, null, 2));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main(process.argv.slice(2));
}
