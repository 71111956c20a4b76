/**
 * Level 1: the patch network trained on every patch of every training image (patch.size at
 * patch.stride), label = the image's label, with the original's augmentation. Adam, NLL, optional
 * StepLR, a log line every `logInterval` batches, validation and an atomic checkpoint after every
 * epoch (and every `checkpointEvery` batches inside one): the epoch loop of epoch_loop.ts. Batches
 * are drawn near-iid from a pool of resident images (patch_plan.ts); after each epoch's training
 * steps, before validation and the checkpoint, the BatchNorm statistics are recomputed exactly
 * (bn_recalibrate.ts: the loop's after-training step). Resumes from the newest valid
 * checkpoint, inside an epoch too: the batch order, augmentation and dropout seeds are pure functions of
 * (seed, epoch, step), so the loader skips the batches already trained and a resumed run ends
 * with the same weights. Before training, one step checks that the batch fits on the GPU (memory.ts).
 */
import type { Runtime } from '../kernels/runtime.ts';
import type { ModelConfig } from '../nn/config.ts';
import { writeFileAtomic } from '../nn/files.ts';
import { buildPatchNetwork, type TwoPartNetwork } from '../nn/networks.ts';
import { mixSeed, SEED_STREAM } from '../nn/random.ts';
import { weightsToSafetensors } from '../nn/weights.ts';
import type { DatasetImage } from './dataset.ts';
import { Replicated } from './data_parallel.ts';
import { trainEpochs } from './epoch_loop.ts';
import type { NonFinitePolicy } from './guard.ts';
import { imageBytes } from './memory.ts';
import { PatchBatches } from './loader.ts';
import { DEFAULT_POOL_BYTES, poolImagesFor } from './patch_plan.ts';
import { recalibrateBatchNorm } from './bn_recalibrate.ts';
import type { RunFolder } from './run_folder.ts';
import { accumulate, predictBatch, scoreLogp, type StepResult } from './step.ts';

export interface LevelOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  /** Adam's L2 weight decay (torch.optim.Adam's weight_decay; default 0). */
  weightDecay?: number;
  /** Label smoothing ε of the training loss (torch's cross-entropy `label_smoothing`; default 0). */
  labelSmoothing?: number;
  seed: number;
  logInterval: number;
  /** StepLR(step, gamma); null for a constant learning rate. */
  stepLr: { step: number; gamma: number } | null;
  resume: boolean;
  quiet: boolean;
  warn: (message: string) => void;
  onMismatch: 'resize' | 'refuse';
  /** Also checkpoint every N batches inside an epoch (0: at epoch ends only). */
  checkpointEvery: number;
  /** A NaN or Inf in a step's loss or gradients: stop training (default) or skip the batch. */
  onNonFinite: NonFinitePolicy;
  /** Skipped batches allowed per epoch when skipping (null: 1% of the epoch's batches, at least 1). */
  maxSkips: number | null;
  /** Called before each Level-1 epoch: throws naming the images that changed on disk (data_manifest.ts). */
  checkData?: (where: string) => void;
  /**
   * Level 1: after each epoch, recompute every BatchNorm's running statistics from this many
   * training patches (bn_recalibrate.ts); 0 or absent keeps the momentum averages.
   */
  bnRecalibrate?: number;
  /**
   * Level 1: images in the near-iid sampling pool (patch_plan.ts); 0 keeps the original's windows
   * of 8 images; absent: as many as DEFAULT_POOL_BYTES of RGB8 images hold.
   */
  poolImages?: number;
  /** Level 1: HED stain augmentation strength σ (kernels/augment_hed.ts); 0 or absent: none. */
  hedStrength?: number;
  /** Level 1: random crops, each training patch moved off its grid origin by up to this many pixels along x and y (default 0). */
  patchJitter?: number;
  /** Level 1: the original's colour/contrast/brightness augmentation (default true). */
  colourAugment?: boolean;
  /**
   * Level 2: train on the feature maps of all 8 flips/rotations of each training image (one drawn
   * per image and epoch) instead of the image as it is (default false).
   */
  featureVariants?: boolean;
  /**
   * Level 2: keep, instead of the best-validation epoch's weights, the parameters averaged over the
   * last N epochs with BatchNorm statistics recomputed from the training maps (stochastic weight
   * averaging; level2.ts). 0 or absent: the best-validation weights.
   */
  averageLast?: number;
}

/** The pool size Level 1 trains with: `o.poolImages`, else what the default memory budget holds. */
export function level1PoolImages(o: Pick<LevelOptions, 'poolImages'>, config: ModelConfig, memoryBudgetBytes: number | null = null): number {
  // Under a GPU memory budget (--gpu-memory) the resident pool takes at most a sixteenth of it.
  const poolBytes = memoryBudgetBytes === null ? DEFAULT_POOL_BYTES : Math.min(DEFAULT_POOL_BYTES, memoryBudgetBytes / 16);
  return o.poolImages ?? poolImagesFor(poolBytes, config.imageSize);
}

export interface EpochSummary {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number;
  valAccuracy: number;
}

/** Per-step seed for dropout masks, distinct for every (seed, epoch, step). */
export function stepSeed(seed: number, epoch: number, step: number): number {
  return mixSeed(seed, SEED_STREAM.dropoutStep, epoch, step);
}

/** What the batch-size check of Level 1 runs: the patch network on [n, 3, p, p]. */
export function patchProbe(config: ModelConfig, residentImages = 16) {
  return { level: 'level 1', build: (r: Runtime) => buildPatchNetwork(r, config, 0), sampleShape: [3, config.patch.size, config.patch.size], unit: 'patch', units: 'patches', extraBytes: imageBytes(Math.max(16, residentImages), config.imageSize) };
}

/** Patch-level loss and accuracy of `images` in eval mode (no augmentation). */
export async function evaluatePatches(rt: Runtime, net: TwoPartNetwork, images: DatasetImage[], config: ModelConfig, options: Pick<LevelOptions, 'batchSize' | 'seed' | 'warn' | 'onMismatch'>): Promise<StepResult> {
  net.eval();
  const total: StepResult = { loss: 0, correct: 0, count: 0 };
  const batches = new PatchBatches(rt, images, config, { batchSize: options.batchSize, seed: options.seed, epoch: 0, augment: false, shuffle: false, warn: options.warn, onMismatch: options.onMismatch });
  for await (const batch of batches) {
    accumulate(total, scoreLogp(await predictBatch(net, batch.x), batch.labelsCpu));
    batch.x.release();
    rt.release(batch.labels);
  }
  return { loss: total.count ? total.loss / total.count : NaN, correct: total.correct, count: total.count };
}

/**
 * Trains (or resumes) Level 1 in `run` on one device per runtime (batches split across them);
 * returns the network on the first (caller destroys it) and per-epoch summaries.
 */
export async function trainLevel1(rts: readonly Runtime[], run: RunFolder, config: ModelConfig, train: DatasetImage[], val: DatasetImage[], o: LevelOptions): Promise<{ net: TwoPartNetwork; epochs: EpochSummary[] }> {
  const rt = rts[0] as Runtime;
  const model = new Replicated(rts, rts.map((r) => buildPatchNetwork(r, config, o.seed)), o.lr, o.weightDecay ?? 0, o.labelSmoothing ?? 0);
  const { net } = model;
  const poolImages = level1PoolImages(o, config, rt.maxMemoryBytes);
  const epochs = await trainEpochs({
    level: 1,
    model,
    run,
    config,
    o,
    probe: patchProbe(config, Math.min(train.length, poolImages)),
    stepSeed: (epoch, step) => stepSeed(o.seed, epoch, step),
    beforeEpoch: (epoch) => o.checkData?.(`level 1 epoch ${epoch + 1}`),
    batches: (epoch, first) => {
      const batches = new PatchBatches(rt, train, config, { batchSize: o.batchSize, seed: o.seed, epoch, augment: true, shuffle: true, warn: o.warn, onMismatch: o.onMismatch, startBatch: first, poolImages, hedStrength: o.hedStrength ?? 0, jitter: o.patchJitter ?? 0, colourAugment: o.colourAugment ?? true });
      return { perEpoch: batches.batchesPerEpoch, batches };
    },
    afterTraining: o.bnRecalibrate
      ? {
          what: 'BatchNorm recalibration',
          run: async (epoch) => {
            // At the training batch size: the batch-fits check (memory.ts) and the kernel table
            // (kernels.ts) cover it, and deeper layers see the batch normalisation training gave them.
            const used = await recalibrateBatchNorm(rt, net, train, config, { patches: o.bnRecalibrate ?? 0, batchSize: o.batchSize, poolImages: level1PoolImages({}, config, rt.maxMemoryBytes), seed: o.seed, epoch, warn: o.warn, onMismatch: o.onMismatch });
            if (rts.length > 1) await model.broadcast();
            if (!o.quiet) console.log(`level 1 epoch ${epoch + 1}: BatchNorm statistics recomputed from ${used} training patches`);
          },
        }
      : undefined,
    validate: () => evaluatePatches(rt, net, val, config, o),
  });
  writeFileAtomic(run.level1Weights, await weightsToSafetensors(net, { config: JSON.stringify(config), level: 'level1' }));
  model.destroy();
  return { net, epochs };
}
