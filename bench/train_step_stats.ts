/**
 * What one Level-1 training step costs besides time: dispatches and submits it records, and the
 * peak GPU memory it needs (the buffer pool's high-water mark: parameters, gradients, Adam moments,
 * activations saved for backward and scratch, all at once). Counted on the second step of a fresh
 * network, so shader compilation and first-use allocations are out of the figure; the pool's
 * high-water mark is reset after the warm-up step, so it is the peak of one steady-state step.
 *
 * `npm run bench` prints it for the tiny patch network at batch 16 and the seed patch network at
 * batch 16 (MODEL-SPEC's batch; the figure must fit an 11 GB card).
 */
import type { Runtime } from '../src/kernels/runtime.ts';
import type { ModelConfig } from '../src/nn/config.ts';
import { buildPatchNetwork } from '../src/nn/networks.ts';
import { Adam } from '../src/nn/optim.ts';
import { Tensor } from '../src/nn/tensor.ts';
import { trainingStep } from './train_step.ts';

export interface TrainStepStats {
  name: string;
  batch: number;
  dispatches: number;
  submits: number;
  /** Pool high-water mark during one step, bytes. */
  peakBytes: number;
  /** Wall time of the measured step (includes waiting for the GPU), ms. */
  stepMs: number;
}

/** Two training steps of a fresh patch network on a deterministic batch; the second is measured. */
export async function measureTrainStep(rt: Runtime, name: string, config: ModelConfig, batch: number): Promise<TrainStepStats> {
  const size = config.patch.size;
  const net = buildPatchNetwork(rt, config, 7).train();
  const adam = new Adam(net.parameters(), { lr: 1e-3 });
  const x = Tensor.fromArray(rt, Float32Array.from({ length: batch * 3 * size * size }, (_, i) => ((i * 2654435761) >>> 0) / 4294967296), [batch, 3, size, size]);
  const labels = rt.upload(Uint32Array.from({ length: batch }, (_, i) => i % config.classes.length));
  const step = trainingStep(net, adam, x, labels);
  try {
    step(0);
    await rt.sync();
    rt.pool.resetHighWater();
    const before = { ...rt.counters };
    const start = performance.now();
    step(1);
    await rt.sync();
    const stepMs = performance.now() - start;
    return {
      name,
      batch,
      dispatches: rt.counters.dispatches - before.dispatches,
      submits: rt.counters.submits - before.submits,
      peakBytes: rt.pool.snapshot().highWaterBytes,
      stepMs,
    };
  } finally {
    x.release();
    rt.release(labels);
    adam.destroy();
    net.destroy();
  }
}
