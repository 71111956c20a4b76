/**
 * Level 2: the image network trained on cached Level-1 feature maps (no back-propagation into
 * Level 1). Adam, NLL, dropout; a checkpoint after every epoch (and every `checkpointEvery` batches
 * inside one) for resume — the epoch loop of epoch_loop.ts — and the best-validation weights kept
 * as level2.safetensors, or with `averageLast` N the parameters averaged over the last N epochs.
 *
 * Why averaging is offered: on 44–56 validation images the best epoch is a noisy pick. Retrained
 * with five seeds on the frozen Level-1 maps of every fold of two 5-fold cross-validations of the
 * LC25000 dev set (tools/level2-cv.ts), the average of the last 10 of 30 epochs scored 0.5 and 1.0
 * points more of the 369 test tiles than the best-validation weights on average, on 9 of the 10
 * seeds at least as many; on the fixed 56-image test split, 0.9 points less over four seeds. Off by
 * default (README, Science results, round 9).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../kernels/runtime.ts';
import { derivedSizes, type ModelConfig } from '../nn/config.ts';
import { writeFileAtomic } from '../nn/files.ts';
import { buildImageNetwork, type TwoPartNetwork } from '../nn/networks.ts';
import { mixSeed, Rng, SEED_STREAM } from '../nn/random.ts';
import { weightsToSafetensors } from '../nn/weights.ts';
import { recalibrateFromBatches } from './bn_recalibrate.ts';
import { averageCheckpointTensors, checkpointName } from './checkpoint.ts';
import { Replicated } from './data_parallel.ts';
import { trainEpochs, type TrainBatch } from './epoch_loop.ts';
import { featureBatch, variantView, type FeatureSplit } from './features.ts';
import { stepSeed, type EpochSummary, type LevelOptions } from './level1.ts';
import type { RunFolder } from './run_folder.ts';
import { accumulate, predictBatch, scoreLogp, type StepResult } from './step.ts';

/** Batches of indices 0..n−1, shuffled from (seed, epoch) when `shuffle`. */
export function indexBatches(n: number, batchSize: number, seed: number, epoch: number, shuffle: boolean): number[][] {
  const order = Array.from({ length: n }, (_, i) => i);
  if (shuffle) new Rng(mixSeed(seed, SEED_STREAM.level2Order, epoch)).shuffle(order);
  const out: number[][] = [];
  for (let i = 0; i < n; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
}

/**
 * Which cached variant each of n training images uses in `epoch`: drawn from (seed, epoch), so a
 * resumed epoch reads the same maps; all 0 when there is one variant.
 */
export function variantChoice(n: number, variants: number, seed: number, epoch: number): Uint8Array {
  const choice = new Uint8Array(n);
  if (variants > 1) {
    const rng = new Rng(mixSeed(seed, SEED_STREAM.level2Variant, epoch));
    for (let i = 0; i < n; i++) choice[i] = rng.below(variants);
  }
  return choice;
}

/** The feature batches of `batches`, each uploaded when the loop asks for it. */
function* featureBatches(rt: Runtime, split: FeatureSplit, batches: readonly number[][], config: ModelConfig): Generator<TrainBatch> {
  for (const indices of batches) yield featureBatch(rt, split, indices, config);
}

/** What the batch-size check of Level 2 runs: the image network on [n, K, m, m]. */
export function imageProbe(config: ModelConfig) {
  const { level2Patches, featureMapSize } = derivedSizes(config);
  return { level: 'level 2', build: (r: Runtime) => buildImageNetwork(r, config, 0), sampleShape: [level2Patches, featureMapSize, featureMapSize], unit: 'image', units: 'images', extraBytes: 0 };
}

/** Eval-mode loss/accuracy and per-image log-probabilities of a feature split. */
export async function evaluateImages(rt: Runtime, net: TwoPartNetwork, split: FeatureSplit, config: ModelConfig, batchSize: number): Promise<StepResult & { logp: Float32Array[] }> {
  net.eval();
  const total: StepResult = { loss: 0, correct: 0, count: 0 };
  const logp: Float32Array[] = [];
  const classes = config.classes.length;
  for (const indices of indexBatches(split.count, batchSize, 0, 0, false)) {
    const batch = featureBatch(rt, split, indices, config);
    const values = await predictBatch(net, batch.x);
    batch.x.release();
    rt.release(batch.labels);
    accumulate(total, scoreLogp(values, batch.labelsCpu));
    for (let i = 0; i < indices.length; i++) logp.push(values.slice(i * classes, (i + 1) * classes));
  }
  return { loss: total.count ? total.loss / total.count : NaN, correct: total.correct, count: total.count, logp };
}

/**
 * Trains (or resumes) Level 2 on cached feature maps. `train` holds the training images' maps once
 * per flip/rotation variant (index 0: the image as it is; one variant: no augmentation); each
 * epoch reads one variant per image. `level1Hash` identifies the Level-1 weights the maps came
 * from: checkpoints made with other Level-1 weights are not resumed. `observe`, if given, sees the
 * network in eval mode after each epoch's validation (tools that score every epoch).
 */
export async function trainLevel2(rts: readonly Runtime[], run: RunFolder, config: ModelConfig, train: readonly FeatureSplit[], val: FeatureSplit, level1Hash: string, o: LevelOptions, observe?: (summary: EpochSummary, net: TwoPartNetwork) => Promise<void>): Promise<{ net: TwoPartNetwork; epochs: EpochSummary[]; best: EpochSummary | null }> {
  const rt = rts[0] as Runtime;
  const model = new Replicated(rts, rts.map((r) => buildImageNetwork(r, config, o.seed + 1)), o.lr, o.weightDecay ?? 0, o.labelSmoothing ?? 0);
  const { net } = model;
  let best: EpochSummary | null = null;
  const epochs = await trainEpochs({
    level: 2,
    model,
    run,
    config,
    o,
    probe: imageProbe(config),
    stepSeed: (epoch, step) => stepSeed(o.seed + 1, epoch, step),
    batches: (epoch, first) => {
      const images = train[0] as FeatureSplit;
      const batches = indexBatches(images.count, o.batchSize, o.seed, epoch, true);
      const split = variantView(train, variantChoice(images.count, train.length, o.seed, epoch));
      return { perEpoch: batches.length, batches: featureBatches(rt, split, batches.slice(first), config) };
    },
    validate: () => evaluateImages(rt, net, val, config, o.batchSize),
    keepEpochEnds: o.averageLast,
    afterValidation: async (summary) => {
      await observe?.(summary, net);
      const improved = !best || summary.valAccuracy > best.valAccuracy || (summary.valAccuracy === best.valAccuracy && summary.valLoss < best.valLoss);
      if (!improved) return '';
      best = summary;
      writeFileAtomic(run.level2Weights, await weightsToSafetensors(net, { config: JSON.stringify(config), level: 'level2', epoch: String(summary.epoch) }));
      return ' (best so far, saved)';
    },
    checkpointExtra: () => ({ best, level1: level1Hash, variants: train.length }),
    accept: (state, path) => {
      if (state.extra.level1 !== level1Hash) {
        o.warn(`${path} was trained on the feature maps of other Level-1 weights; Level 2 starts afresh`);
        return false;
      }
      if ((state.extra.variants ?? 1) !== train.length) {
        o.warn(`${path} was trained on ${state.extra.variants ?? 1} flip/rotation variant(s) of the feature maps, this run uses ${train.length} (--level2-augment); Level 2 starts afresh`);
        return false;
      }
      return true;
    },
    resumed: (state) => {
      best = (state.extra.best as EpochSummary | undefined) ?? null;
    },
  });
  model.destroy();
  if (o.averageLast) await keepAverage(rt, net, run, config, train[0] as FeatureSplit, val, o);
  return { net, epochs, best };
}

/**
 * Stochastic weight averaging of Level 2 (Izmailov et al. 2018), from the epoch-end checkpoints
 * of the last `o.averageLast` epochs (kept for it): their parameters averaged in float64 in epoch
 * order, every BatchNorm's statistics recomputed from all training maps (the images as they are,
 * as torch's swa_utils.update_bn does), validation scored, and the result saved as
 * level2.safetensors. Reads only files, so a run resumed after its last epoch averages the same.
 */
async function keepAverage(rt: Runtime, net: TwoPartNetwork, run: RunFolder, config: ModelConfig, train: FeatureSplit, val: FeatureSplit, o: LevelOptions): Promise<void> {
  const n = o.averageLast as number;
  const first = o.epochs - n + 1;
  const paths = Array.from({ length: n }, (_, i) => join(run.checkpoints, checkpointName('level2', first + i, 0)));
  for (const path of paths) {
    if (!existsSync(path)) throw new Error(`${path}: missing; averaging Level 2 over epochs ${first}–${o.epochs} (--level2-average-last ${n}) needs the checkpoint of each (a run resumed from before this option keeps only the newest three: train Level 2 again without --resume)`);
  }
  const means = averageCheckpointTensors(paths, net.parameters().map((p) => p.name));
  for (const p of net.parameters()) rt.write(p.buffer, means.get(p.name) as Float32Array);
  const images = await recalibrateFromBatches(rt, net, featureBatches(rt, train, indexBatches(train.count, o.batchSize, 0, 0, false), config), train.count);
  const v = await evaluateImages(rt, net, val, config, o.batchSize);
  const summary: EpochSummary = { epoch: o.epochs, trainLoss: NaN, trainAccuracy: NaN, valLoss: v.loss, valAccuracy: v.correct / v.count };
  writeFileAtomic(run.level2Weights, await weightsToSafetensors(net, { config: JSON.stringify(config), level: 'level2', epoch: String(o.epochs), averagedEpochs: `${first}-${o.epochs}` }));
  run.logMetric({ level: 2, kind: 'average', fromEpoch: first, toEpoch: o.epochs, valLoss: summary.valLoss, valAccuracy: summary.valAccuracy, batchNormImages: images });
  if (!o.quiet) console.log(`level 2: parameters averaged over epochs ${first}–${o.epochs}, BatchNorm statistics from ${images} training images | validation loss ${summary.valLoss.toFixed(4)} acc ${(100 * summary.valAccuracy).toFixed(1)}% (saved)`);
}
