/**
 * Exact BatchNorm statistics ("precise BN", as torch.optim.swa_utils.update_bn and fvcore): with
 * the weights fixed, every BatchNorm layer's running mean and variance are recomputed from N
 * training patches drawn near-iid (a pool plan over the training images, no augmentation: the
 * statistics of what eval mode sees), forward only in training mode, in batches. Each batch's
 * per-channel mean and biased variance are read back (momentum 1 makes the running buffers hold
 * them) and merged in float64 with equal weight per value (Chan et al.'s pairwise update), so
 * the result is the population mean and unbiased variance of the layer's inputs over all N
 * patches — not a momentum average that remembers mostly the last batches.
 *
 * Why: Level-1 batches used to come from windows of a few images; with momentum 0.1 the running
 * statistics at the end of an epoch describe the last window, and on real slides, whose stain
 * differs from image to image, eval mode then normalises with the wrong statistics.
 */
import type { Runtime } from '../kernels/runtime.ts';
import type { ModelConfig } from '../nn/config.ts';
import { BatchNorm2d, type Module } from '../nn/modules.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import type { Tensor } from '../nn/tensor.ts';
import type { DecodeSettings } from './loader.ts';
import { PatchBatches } from './loader.ts';
import type { DatasetImage } from './dataset.ts';
import { mixSeed, SEED_STREAM } from '../nn/random.ts';
import { DEFAULT_POOL_BYTES, poolImagesFor } from './patch_plan.ts';

/** Every BatchNorm2d of `module`, in forward order. */
export function batchNormLayers(module: Module): BatchNorm2d[] {
  return module instanceof BatchNorm2d ? [module] : module.children().flatMap(batchNormLayers);
}

/** Per-channel count, mean and sum of squared deviations, merged in float64. */
export class ChannelMoments {
  count = 0;
  readonly mean: Float64Array;
  readonly m2: Float64Array;

  constructor(channels: number) {
    this.mean = new Float64Array(channels);
    this.m2 = new Float64Array(channels);
  }

  /** Adds a group of `n` values per channel with the given means and biased variances. */
  merge(n: number, mean: ArrayLike<number>, biasedVar: ArrayLike<number>): void {
    const total = this.count + n;
    for (let c = 0; c < this.mean.length; c++) {
      const delta = (mean[c] as number) - (this.mean[c] as number);
      this.mean[c] = (this.mean[c] as number) + (delta * n) / total;
      this.m2[c] = (this.m2[c] as number) + (biasedVar[c] as number) * n + (delta * delta * this.count * n) / total;
    }
    this.count = total;
  }

  /** Unbiased variance, as PyTorch keeps in running_var. */
  unbiasedVar(): Float64Array {
    return this.m2.map((m) => m / Math.max(1, this.count - 1));
  }
}

/** One batch of network inputs with its labels (which recalibration only releases). */
export interface InputBatch {
  x: Tensor;
  labels: GPUBuffer;
  labelsCpu: Uint32Array;
}

export interface RecalibrateOptions extends DecodeSettings {
  /** Patches to draw: whole batches until at least this many (at most every training patch). */
  patches: number;
  /** Batch size of the forward passes (level1.ts uses the training batch size). */
  batchSize: number;
  seed: number;
  epoch: number;
  /** Images in the sampling pool (default: as many as 1 GiB of RGB8 holds). */
  poolImages?: number;
}

/**
 * Recomputes the running statistics of every BatchNorm2d in `net` from `o.patches` training
 * patches (a pure function of seed and epoch). Weights are untouched; the layers' momentum,
 * num_batches_tracked and training flag are restored. Returns the patches used.
 */
export async function recalibrateBatchNorm(rt: Runtime, net: TwoPartNetwork, images: readonly DatasetImage[], config: ModelConfig, o: RecalibrateOptions): Promise<number> {
  if (batchNormLayers(net).length === 0 || o.patches <= 0 || images.length === 0) return 0;
  const loader = new PatchBatches(rt, images, config, {
    batchSize: o.batchSize,
    seed: mixSeed(o.seed, SEED_STREAM.bnRecalibrate),
    epoch: o.epoch,
    augment: false,
    poolImages: o.poolImages ?? poolImagesFor(DEFAULT_POOL_BYTES, config.imageSize),
    warn: o.warn,
    onMismatch: o.onMismatch,
    maxPixels: o.maxPixels,
  });
  return recalibrateFromBatches(rt, net, loader, o.patches);
}

/**
 * The same from any batches of network inputs (Level 2: feature maps): forward passes in training
 * mode until at least `limit` inputs were seen or the batches end; each batch's tensors are
 * released here. Returns the inputs used.
 */
export async function recalibrateFromBatches(rt: Runtime, net: TwoPartNetwork, batches: AsyncIterable<InputBatch> | Iterable<InputBatch>, limit: number): Promise<number> {
  const layers = batchNormLayers(net);
  if (layers.length === 0 || limit <= 0) return 0;
  const wasTraining = net.training;
  const saved = layers.map((l) => ({ momentum: l.state_.momentum, tracked: l.numBatchesTracked }));
  const moments = layers.map((l) => new ChannelMoments(l.state_.runningMean.size));
  let used = 0;
  try {
    net.train();
    for (const l of layers) l.state_.momentum = 1; // the running buffers then hold each batch's statistics
    for await (const batch of batches) {
      // Every BatchNorm of a TwoPartNetwork is in `features`; the classifier needs no run.
      net.features.forward(batch.x, { tape: null, seed: 0 }).release();
      batch.x.release();
      rt.release(batch.labels);
      const parts = layers.flatMap((l) => [{ buffer: l.state_.runningMean.buffer, bytes: l.state_.runningMean.size * 4 }, { buffer: l.state_.runningVar.buffer, bytes: l.state_.runningVar.size * 4 }]);
      const values = await rt.readMany(parts);
      layers.forEach((l, i) => {
        const [n, , h, w] = l.lastInputShape as readonly number[];
        const m = (n as number) * (h as number) * (w as number);
        const mean = new Float32Array(values[2 * i] as ArrayBuffer);
        const unbiased = new Float32Array(values[2 * i + 1] as ArrayBuffer);
        (moments[i] as ChannelMoments).merge(m, mean, Array.from(unbiased, (v) => (v * (m - 1)) / m));
      });
      used += batch.labelsCpu.length;
      if (used >= limit) break;
    }
    layers.forEach((l, i) => {
      const mo = moments[i] as ChannelMoments;
      rt.write(l.state_.runningMean.buffer, Float32Array.from(mo.mean));
      rt.write(l.state_.runningVar.buffer, Float32Array.from(mo.unbiasedVar()));
    });
  } finally {
    layers.forEach((l, i) => {
      l.state_.momentum = (saved[i] as { momentum: number }).momentum;
      l.numBatchesTracked = (saved[i] as { tracked: number }).tracked;
    });
    net.train(wasTraining);
  }
  return used;
}
