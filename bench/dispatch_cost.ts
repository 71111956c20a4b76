/**
 * What the runtime costs on the CPU: microseconds to record one dispatch, and to record one whole
 * training step of the tiny patch network (forward, loss, backward, Adam: every launcher, the tape,
 * the pool, the uniform arena, the bind groups, and the submit), with the GPU idle while it records.
 * On a real GPU a small network's step is bound by this, not by the kernels.
 *
 * Each figure is the median over rounds of (CPU time of the main thread during the synchronous
 * recording + `flush`) / dispatches recorded; the GPU work is waited for outside the timed region.
 * CPU time is the thread's own (Linux /proc/self/task/PID/schedstat, nanoseconds), so time the
 * thread spends waiting for a core on a busy machine is not counted; where that file does not
 * exist, wall time is used instead (and the row says so).
 *
 *   npx tsx bench/dispatch_cost.ts      # prints the rows (also part of `npm run bench`)
 */
import { readFileSync } from 'node:fs';
import { reluForward } from '../src/kernels/relu.ts';
import type { Runtime } from '../src/kernels/runtime.ts';
import { TINY_CONFIG } from '../src/nn/config.ts';
import { buildPatchNetwork } from '../src/nn/networks.ts';
import { Adam } from '../src/nn/optim.ts';
import { Tensor } from '../src/nn/tensor.ts';
import { trainingStep } from './train_step.ts';

export interface DispatchCost {
  /** µs of CPU per dispatch, the same buffers every time (a training loop's steady state). */
  usPerDispatchRepeated: number;
  /** µs of CPU per dispatch, the input cycling through 64 buffers (no two neighbours alike). */
  usPerDispatchVaried: number;
  /** µs of CPU to record and submit one tiny patch-net training step at batch 16. */
  usPerTinyStep: number;
  /** Dispatches in that step. */
  tinyStepDispatches: number;
  /** 'thread CPU' (schedstat) or 'wall' (no schedstat here). */
  clock: 'thread CPU' | 'wall';
}

const SCHEDSTAT = `/proc/self/task/${process.pid}/schedstat`;

/** Nanoseconds of CPU the main thread has run, or null where the kernel does not say. */
function threadCpuNs(): number | null {
  try {
    return Number(readFileSync(SCHEDSTAT, 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
}

/** The clock the rows use: the main thread's CPU time where available, else wall time (both in µs). */
function nowUs(): number {
  const ns = threadCpuNs();
  return ns === null ? performance.now() * 1000 : ns / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Median over `rounds` of (µs of `record()` + flush) / `per`; the GPU is drained before each round. */
async function timeRecording(rt: Runtime, rounds: number, per: number, record: () => void): Promise<number> {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    await rt.sync();
    const t0 = nowUs();
    record();
    rt.flush();
    samples.push((nowUs() - t0) / per);
  }
  await rt.sync();
  return median(samples);
}

/** Measures the rows above on `rt` (a few seconds on lavapipe). */
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
    return { usPerDispatchRepeated, usPerDispatchVaried, usPerTinyStep, tinyStepDispatches, clock: threadCpuNs() === null ? 'wall' : 'thread CPU' };
  } finally {
    x.release();
    rt.release(labels);
    adam.destroy();
    net.destroy();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { createNodeRuntime } = await import('../src/kernels/node.ts');
  const rt = await createNodeRuntime();
  const c = await measureDispatchCost(rt);
  console.log(`clock: ${c.clock}`);
  console.log(`CPU per recorded dispatch (same buffers):   ${c.usPerDispatchRepeated.toFixed(1)} µs`);
  console.log(`CPU per recorded dispatch (64 inputs):      ${c.usPerDispatchVaried.toFixed(1)} µs`);
  console.log(`CPU per tiny training step (b16, ${c.tinyStepDispatches} dispatches): ${c.usPerTinyStep.toFixed(0)} µs (${(c.usPerTinyStep / c.tinyStepDispatches).toFixed(1)} µs per dispatch)`);
  rt.destroy();
  process.exit(0);
}
