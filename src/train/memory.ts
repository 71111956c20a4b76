/**
 * Does a batch fit on the GPU? Before a level trains, one training step at the real batch size
 * runs on a throwaway copy of the network (zeros in, nothing kept): the buffer pool's high-water
 * mark is what a step needs, and a buffer the device refuses (over maxBufferSize, over the memory
 * budget of `--gpu-memory`, or out of device memory) shows up here rather than hours later. When
 * the batch does not fit, steps at batch 1 and 2 give the memory per sample, and the message names
 * the largest batch that fits.
 */
import { OutOfMemoryError } from '../kernels/pool.ts';
import { formatBytes, type Runtime } from '../kernels/runtime.ts';
import { Adam } from '../nn/optim.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import { Tensor } from '../nn/tensor.ts';
import { trainStep } from './step.ts';

/** What one level's probe needs: how to build its network, one sample's shape, and what a sample is. */
export interface StepProbe {
  level: string;
  build: (rt: Runtime) => TwoPartNetwork;
  sampleShape: readonly number[];
  /** What a sample is, one and many ('patch', 'patches'), for messages. */
  unit: string;
  units: string;
  /** Bytes the level holds on the GPU besides the step (the loader's resident images). */
  extraBytes: number;
}

/** A step's measured needs at one batch size. */
export interface StepMemory {
  batch: number;
  /** Peak bytes in use during the step, beyond what the real model already holds. */
  stepBytes: number;
  largestBufferBytes: number;
}

/** The batch does not fit; the message names the largest one that does. */
export class BatchTooLargeError extends Error {
  constructor(message: string, readonly largest: number) {
    super(message);
    this.name = 'BatchTooLargeError';
  }
}

/** Peak pool bytes of one training step at batch `n` on a throwaway network; throws OutOfMemoryError. */
export async function measureStep(rt: Runtime, probe: StepProbe, n: number): Promise<StepMemory> {
  await rt.sync();
  const before = rt.poolStats().inUseBytes;
  rt.pool.resetHighWater();
  rt.pool.startTracking();
  let net: TwoPartNetwork | null = null;
  let adam: Adam | null = null;
  let x: Tensor | null = null;
  try {
    net = probe.build(rt);
    adam = new Adam(net.parameters(), { lr: 0 });
    x = Tensor.zeros(rt, [n, ...probe.sampleShape], 'memory probe input');
    const labels = rt.upload(new Uint32Array(n), 'memory probe labels');
    await trainStep(net, adam, x, labels, new Uint32Array(n), 0, `${probe.level} memory probe`, { onNonFinite: 'skip' });
    rt.release(labels);
    await rt.sync();
    const stats = rt.poolStats();
    const modelBytes = 3 * 4 * net.parameterCount(); // weights and Adam moments: the real model holds its own
    return { batch: n, stepBytes: stats.highWaterBytes - before - modelBytes, largestBufferBytes: stats.largestBufferBytes };
  } finally {
    x?.release();
    adam?.destroy();
    net?.destroy();
    rt.pool.releaseTracked();
  }
}

/** The budget a step must fit in: the memory budget, else what the device held when it refused. */
function capacity(rt: Runtime, failure: OutOfMemoryError | null): number | null {
  if (rt.maxMemoryBytes !== null) return rt.maxMemoryBytes;
  if (failure && failure.limit === 'device memory') return failure.heldBytes;
  return null;
}

/** The largest batch whose step fits, from steps at batch 1 and 2 (0 when not even 1 fits). */
async function largestBatch(rt: Runtime, probe: StepProbe, batchSize: number, heldBytes: number, failure: OutOfMemoryError | null): Promise<{ largest: number; perSample: number; fixed: number }> {
  rt.flush(); // idle buffers may still be named by recorded commands: submit them before destroying
  rt.pool.trim();
  let one: StepMemory;
  let two: StepMemory;
  try {
    one = await measureStep(rt, probe, 1);
    two = await measureStep(rt, probe, 2);
  } catch (e) {
    if (e instanceof OutOfMemoryError) return { largest: 0, perSample: 0, fixed: 0 };
    throw e;
  }
  const perSample = Math.max(1, two.stepBytes - one.stepBytes);
  const fixed = one.stepBytes - perSample;
  const budget = capacity(rt, failure);
  let largest = Number.MAX_SAFE_INTEGER;
  if (budget !== null) largest = Math.floor((budget - heldBytes - probe.extraBytes - fixed) / perSample);
  const perSampleBuffer = Math.max(1, two.largestBufferBytes - one.largestBufferBytes);
  const maxBuffer = rt.device.limits.maxBufferSize;
  largest = Math.min(largest, Math.floor((maxBuffer - (one.largestBufferBytes - perSampleBuffer)) / perSampleBuffer));
  return { largest: Math.max(0, Math.min(largest, batchSize - 1)), perSample, fixed };
}

/**
 * Checks that a training step at `batchSize` fits, before training: returns its measured needs,
 * or throws a BatchTooLargeError naming the largest batch that fits (errors other than running
 * out of memory pass through).
 */
export async function checkBatchFits(rt: Runtime, probe: StepProbe, batchSize: number): Promise<StepMemory> {
  const heldBytes = rt.poolStats().inUseBytes;
  let failure: OutOfMemoryError | null = null;
  try {
    const measured = await measureStep(rt, probe, batchSize);
    const budget = rt.maxMemoryBytes;
    if (budget === null || heldBytes + measured.stepBytes + probe.extraBytes <= budget) return measured;
  } catch (e) {
    if (!(e instanceof OutOfMemoryError)) throw e;
    failure = e;
  }
  const { largest, perSample, fixed } = await largestBatch(rt, probe, batchSize, heldBytes, failure);
  const budget = capacity(rt, failure);
  const what = failure ? failure.message : `a step needs more than the memory budget of ${formatBytes(budget ?? 0)}`;
  const needs = perSample > 0 ? ` (about ${formatBytes(Math.max(0, fixed))} + ${formatBytes(perSample)} per ${probe.unit} for a step, besides ${formatBytes(heldBytes + probe.extraBytes)} for the model and data)` : '';
  const advice = largest > 0 ? `the largest batch that fits is about ${largest}: use --batch-size ${largest}` : 'not even a batch of 1 fits: use a smaller --preset';
  throw new BatchTooLargeError(`${probe.level}: a batch of ${batchSize} ${probe.units} does not fit on this GPU: ${what}${needs}; ${advice}`, largest);
}

/** Resident RGB8 bytes of `images` images of side `size` (pool buffers are rounded to 16 bytes). */
export function imageBytes(images: number, size: number): number {
  return images * Math.ceil((3 * size * size) / 16) * 16;
}

/** Advice for an out-of-memory error in the middle of training, from the step measured before it. */
export function outOfMemoryAdvice(failure: OutOfMemoryError, measured: StepMemory | null, heldBeforeBytes: number): string {
  if (!measured) return '';
  const needed = heldBeforeBytes + measured.stepBytes;
  const fits = Math.max(1, Math.floor((measured.batch * failure.heldBytes) / Math.max(needed, 1)));
  return `; a step at batch ${measured.batch} needed about ${formatBytes(needed)}: try --batch-size ${Math.min(fits, Math.max(1, measured.batch - 1))}`;
}
