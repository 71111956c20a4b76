/**
 * What the runtime costs on the CPU: microseconds to record one dispatch, and to record one whole
 * training step of the tiny patch network (forward, loss, backward, Adam: every launcher, the tape,
 * the pool, the uniform arena, the bind groups, and the submit), with the GPU idle while it records.
 * On a real GPU a small network's step is bound by this, not by the kernels.
 *
 * Each figure is the median over 15 rounds (after 3 untimed ones) of (CPU time of the main thread
 * during the synchronous recording + `flush`) / dispatches recorded; the GPU work is waited for
 * outside the timed region.
 * CPU time is the thread's own (Linux `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` through koffi), so
 * time the thread spends waiting for a core on a busy machine is not counted; elsewhere wall time
 * is used instead (and the rows say so). The /proc schedstat counter used before moves only at
 * scheduler ticks when the thread is not switched out (4 ms steps here: 2 µs per dispatch over a
 * 2000-dispatch round), which quantised the earlier figures.
 *
 * The *floor* row is the same loop calling only Dawn's three calls per dispatch (setPipeline,
 * setBindGroup with a dynamic offset, dispatchWorkgroups; pipeline and bind group made once): what
 * any runtime pays through Dawn's Node binding. The rest of a relu row is ours.
 *
 * The same code in two processes can differ by half (8 vs 14 µs seen for the floor alone), and a
 * process that ran the kernel rows first measured twice a fresh one: so the rows are measured in
 * `--processes N` fresh child processes, one after another, and reported as median [min–max].
 *
 *   npx tsx bench/dispatch_cost.ts [--processes 5]   # the rows (also part of `npm run bench`)
 */
import './spin_polls.ts';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { reluForward } from '../src/kernels/relu.ts';
import type { Runtime } from '../src/kernels/runtime.ts';
import { TINY_CONFIG } from '../src/nn/config.ts';
import { buildPatchNetwork } from '../src/nn/networks.ts';
import { Adam } from '../src/nn/optim.ts';
import { Tensor } from '../src/nn/tensor.ts';
import { trainingStep } from './train_step.ts';

/** One process's figures (µs of CPU). */
export interface DispatchCost {
  /** Per dispatch, the same buffers every time (a training loop's steady state). */
  usPerDispatchRepeated: number;
  /** Per dispatch, the input cycling through 64 buffers (no two neighbours alike). */
  usPerDispatchVaried: number;
  /** Per dispatch, Dawn's three calls alone: the floor under the two rows above. */
  usPerDispatchFloor: number;
  /** To record and submit one tiny patch-net training step at batch 16. */
  usPerTinyStep: number;
  /** Dispatches in that step. */
  tinyStepDispatches: number;
  /** 'thread CPU' (clock_gettime's CLOCK_THREAD_CPUTIME_ID through koffi) or 'wall' (where that is unavailable). */
  clock: 'thread CPU' | 'wall';
}

/** A figure over processes. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

type Timed = 'usPerDispatchRepeated' | 'usPerDispatchVaried' | 'usPerDispatchFloor' | 'usPerTinyStep';

/** The figures of several fresh processes: each timed row as median [min–max] over them. */
export type DispatchCostSpread = { [K in Timed]: Spread } & { processes: number; tinyStepDispatches: number; clock: DispatchCost['clock'] };

/** Nanoseconds of CPU the calling thread has run, where Linux and koffi allow; else null. */
async function threadClock(): Promise<(() => number) | null> {
  if (process.platform !== 'linux') return null;
  try {
    const koffi = (await import('koffi')).default;
    const timespec = koffi.struct('dispatch_cost_timespec', { tv_sec: 'int64_t', tv_nsec: 'long' });
    const clockGettime = koffi.load('libc.so.6').func('int clock_gettime(int, _Out_ dispatch_cost_timespec *ts)');
    const ts = { tv_sec: 0, tv_nsec: 0 };
    return () => {
      clockGettime(3 /* CLOCK_THREAD_CPUTIME_ID */, ts);
      return ts.tv_sec * 1e9 + ts.tv_nsec;
    };
  } catch {
    return null;
  }
}

const threadCpuNs = await threadClock();

/** The clock the rows use: the main thread's CPU time where available, else wall time (both in µs). */
function nowUs(): number {
  return threadCpuNs ? threadCpuNs() / 1000 : performance.now() * 1000;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Rounds run untimed first, so the JIT has compiled the loop before any sample. */
const WARMUP_ROUNDS = 3;

/** Median over `rounds` of (µs of `record()` + `submit()`) / `per`; the GPU is drained before each round. */
async function timeRecording(rt: Runtime, rounds: number, per: number, record: () => void, submit = () => rt.flush()): Promise<number> {
  const samples: number[] = [];
  for (let r = -WARMUP_ROUNDS; r < rounds; r++) {
    await rt.sync();
    const t0 = nowUs();
    record();
    submit();
    if (r >= 0) samples.push((nowUs() - t0) / per);
  }
  await rt.sync();
  return median(samples);
}

const FLOOR_WGSL = `
struct Params { n: u32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> y: array<vec4f>;
@group(0) @binding(2) var<storage, read> x: array<vec4f>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < params.n) { y[id.x] = max(x[id.x], vec4f(0.0)); }
}`;

/** µs per dispatch of Dawn's three calls alone, on a relu-like pipeline with the runtime's binding layout. */
async function measureFloor(rt: Runtime, count: number, rounds: number): Promise<number> {
  const device = rt.device;
  const layout = device.createBindGroupLayout({
    entries: [
      { binding: 0, visibility: 4, buffer: { type: 'uniform', hasDynamicOffset: true } },
      { binding: 1, visibility: 4, buffer: { type: 'storage' } },
      { binding: 2, visibility: 4, buffer: { type: 'read-only-storage' } },
    ],
  });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module: device.createShaderModule({ code: FLOOR_WGSL }), entryPoint: 'main' },
  });
  const params = device.createBuffer({ size: 256, usage: 0x0040 /* UNIFORM */ | 0x0008 /* COPY_DST */ });
  device.queue.writeBuffer(params, 0, new Uint32Array([256]));
  const [y, x] = [rt.alloc(4096), rt.alloc(4096)] as [GPUBuffer, GPUBuffer];
  const group = device.createBindGroup({ layout, entries: [{ binding: 0, resource: { buffer: params, size: 16 } }, { binding: 1, resource: { buffer: y } }, { binding: 2, resource: { buffer: x } }] });
  const offsets = new Uint32Array(1);
  let encoder: GPUCommandEncoder | null = null;
  const record = () => {
    encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let i = 0; i < count; i++) {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group, offsets, 0, 1);
      pass.dispatchWorkgroups(4);
    }
    pass.end();
  };
  const submit = () => device.queue.submit([(encoder as GPUCommandEncoder).finish()]);
  try {
    return await timeRecording(rt, rounds, count, record, submit);
  } finally {
    [y, x].forEach((b) => rt.release(b));
    params.destroy();
  }
}

/** Measures the rows above in this process, on `rt` (a few seconds on lavapipe). */
export async function measureDispatchCost(rt: Runtime, options: { dispatches?: number; rounds?: number } = {}): Promise<DispatchCost> {
  const count = options.dispatches ?? 2000;
  const rounds = options.rounds ?? 15;
  const n = 1024;
  const inputs = Array.from({ length: 64 }, (_, i) => rt.upload(new Float32Array(n).fill(i - 32)));
  const one = (x: GPUBuffer) => rt.release(reluForward(rt, x, n));
  one(inputs[0] as GPUBuffer); // compile outside the timed rounds
  const usPerDispatchRepeated = await timeRecording(rt, rounds, count, () => {
    for (let i = 0; i < count; i++) one(inputs[0] as GPUBuffer);
  });
  const usPerDispatchVaried = await timeRecording(rt, rounds, count, () => {
    for (let i = 0; i < count; i++) one(inputs[i % inputs.length] as GPUBuffer);
  });
  inputs.forEach((b) => rt.release(b));
  const usPerDispatchFloor = await measureFloor(rt, count, rounds);

  const batch = 16;
  const size = TINY_CONFIG.patch.size;
  const net = buildPatchNetwork(rt, TINY_CONFIG, 7).train();
  const adam = new Adam(net.parameters(), { lr: 1e-3 });
  const x = Tensor.fromArray(rt, Float32Array.from({ length: batch * 3 * size * size }, (_, i) => ((i * 2654435761) >>> 0) / 4294967296), [batch, 3, size, size]);
  const labels = rt.upload(Uint32Array.from({ length: batch }, (_, i) => i % TINY_CONFIG.classes.length));
  let seed = 0;
  const recordStep = trainingStep(net, adam, x, labels);
  const step = () => recordStep(seed++);
  try {
    step(); // compiles and allocates
    await rt.sync();
    const before = rt.counters.dispatches;
    step();
    await rt.sync();
    const tinyStepDispatches = rt.counters.dispatches - before;
    const usPerTinyStep = await timeRecording(rt, rounds, 1, step);
    return { usPerDispatchRepeated, usPerDispatchVaried, usPerDispatchFloor, usPerTinyStep, tinyStepDispatches, clock: threadCpuNs ? 'thread CPU' : 'wall' };
  } finally {
    x.release();
    rt.release(labels);
    adam.destroy();
    net.destroy();
  }
}

const THIS_FILE = fileURLToPath(import.meta.url);

/**
 * Runs measureDispatchCost in `processes` fresh child processes, one after another (each makes its
 * own runtime), and gives each row's median and range over them.
 */
export async function measureDispatchCostInProcesses(processes = 5): Promise<DispatchCostSpread> {
  // Under tsx the loader is in execArgv, so the child runs this .ts file the same way.
  const args = [...process.execArgv, THIS_FILE, '--child'];
  const runs: DispatchCost[] = [];
  for (let i = 0; i < processes; i++) {
    const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1 << 20 });
    const line = stdout.trim().split('\n').at(-1) ?? '';
    runs.push(JSON.parse(line) as DispatchCost);
  }
  const spread = (k: Timed): Spread => {
    const xs = runs.map((r) => r[k]);
    return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  };
  const first = runs[0] as DispatchCost;
  return {
    processes,
    usPerDispatchRepeated: spread('usPerDispatchRepeated'),
    usPerDispatchVaried: spread('usPerDispatchVaried'),
    usPerDispatchFloor: spread('usPerDispatchFloor'),
    usPerTinyStep: spread('usPerTinyStep'),
    tinyStepDispatches: first.tinyStepDispatches,
    clock: first.clock,
  };
}

/** `median [min–max]` with `digits` decimals. */
export function formatSpread(s: Spread, digits = 1): string {
  return `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
}

/** The rows as label/value pairs, for the bench's text and Markdown tables. */
export function dispatchCostRows(d: DispatchCostSpread): [string, string][] {
  const perDispatch = (d.usPerTinyStep.median / d.tinyStepDispatches).toFixed(1);
  return [
    ['per recorded dispatch, same buffers (relu, 1024 floats)', formatSpread(d.usPerDispatchRepeated)],
    ['per recorded dispatch, 64 input buffers in turn', formatSpread(d.usPerDispatchVaried)],
    ["floor: Dawn's setPipeline + setBindGroup + dispatchWorkgroups alone", formatSpread(d.usPerDispatchFloor)],
    [`per tiny patch-net training step, batch 16 (${d.tinyStepDispatches} dispatches)`, `${formatSpread(d.usPerTinyStep, 0)} (${perDispatch} per dispatch)`],
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { processes: { type: 'string', default: '5' }, child: { type: 'boolean', default: false } } });
  if (values.child) {
    const { createNodeRuntime } = await import('../src/kernels/node.ts');
    const rt = await createNodeRuntime();
    console.log(JSON.stringify(await measureDispatchCost(rt)));
    rt.destroy();
  } else {
    const d = await measureDispatchCostInProcesses(Number(values.processes));
    console.log(`runtime CPU cost (${d.clock}, main thread), µs, median [min–max] over ${d.processes} fresh processes:`);
    for (const [label, value] of dispatchCostRows(d)) console.log(`  ${label.padEnd(72)} ${value}`);
  }
  process.exit(0);
}
