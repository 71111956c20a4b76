/**
 * Level 2: the image network trained on cached Level-1 feature maps (no back-propagation into
 * Level 1). Adam, NLL, dropout; a checkpoint after every epoch for resume, and the best-validation
 * weights kept as level2.safetensors.
 */
import type { Runtime } from '../kernels/runtime.ts';
import type { ModelConfig } from '../nn/config.ts';
import { writeFileAtomic } from '../nn/files.ts';
import { buildImageNetwork, type TwoPartNetwork } from '../nn/networks.ts';
import { stepLr } from '../nn/optim.ts';
import { Rng } from '../nn/random.ts';
import { weightsToSafetensors } from '../nn/weights.ts';
import { loadLatestCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { Replicated } from './data_parallel.ts';
import { featureBatch, type FeatureSplit } from './features.ts';
import { stepSeed, type EpochSummary, type LevelOptions } from './level1.ts';
import { EpochProgress } from './progress.ts';
import type { RunFolder } from './run_folder.ts';
import { predictBatch, scoreLogp, type StepResult } from './step.ts';

/** Batches of indices 0..n−1, shuffled from (seed, epoch) when `shuffle`. */
export function indexBatches(n: number, batchSize: number, seed: number, epoch: number, shuffle: boolean): number[][] {
  const order = Array.from({ length: n }, (_, i) => i);
  if (shuffle) new Rng((seed ^ Math.imul(epoch + 1, 0x2545f491)) >>> 0).shuffle(order);
  const out: number[][] = [];
  for (let i = 0; i < n; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
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
    const r = scoreLogp(values, batch.labelsCpu);
    total.loss += r.loss * r.count;
    total.correct += r.correct;
    total.count += r.count;
    for (let i = 0; i < indices.length; i++) logp.push(values.slice(i * classes, (i + 1) * classes));
  }
  return { loss: total.count ? total.loss / total.count : NaN, correct: total.correct, count: total.count, logp };
}

/**
 * Trains (or resumes) Level 2 on cached feature maps. `level1Hash` identifies the Level-1 weights
 * the maps came from: checkpoints made with other Level-1 weights are not resumed.
 */
export async function trainLevel2(rts: readonly Runtime[], run: RunFolder, config: ModelConfig, train: FeatureSplit, val: FeatureSplit, level1Hash: string, o: LevelOptions): Promise<{ net: TwoPartNetwork; epochs: EpochSummary[]; best: EpochSummary | null }> {
  const rt = rts[0] as Runtime;
  const model = new Replicated(rts, rts.map((r) => buildImageNetwork(r, config, o.seed + 1)), o.lr);
  const { net, adam } = model;
  let startEpoch = 0;
  let best: EpochSummary | null = null;
  if (o.resume) {
    const sameLevel1 = (state: { extra: Record<string, unknown> }, path: string) => {
      if (state.extra.level1 === level1Hash) return true;
      o.warn(`${path} was trained on the feature maps of other Level-1 weights; Level 2 starts afresh`);
      return false;
    };
    const state = loadLatestCheckpoint(run.checkpoints, 'level2', net, adam, o.warn, sameLevel1);
    if (state) {
      await model.broadcast();
      startEpoch = state.epoch;
      best = (state.extra.best as EpochSummary | undefined) ?? null;
      if (!o.quiet) console.log(`level 2: resuming after epoch ${state.epoch}`);
    }
  }
  const summaries: EpochSummary[] = [];
  for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
    model.lr = o.stepLr ? stepLr(o.lr, epoch, o.stepLr.step, o.stepLr.gamma) : o.lr;
    const batches = indexBatches(train.count, o.batchSize, o.seed, epoch, true);
    const progress = new EpochProgress(`level 2 epoch ${epoch + 1}/${o.epochs}`, batches.length, 'images', o.quiet);
    const total: StepResult = { loss: 0, correct: 0, count: 0 };
    model.train();
    for (const [step, indices] of batches.entries()) {
      const batch = featureBatch(rt, train, indices, config);
      const r = await model.step(batch.x, batch.labels, batch.labelsCpu, stepSeed(o.seed + 1, epoch, step), `level 2 epoch ${epoch + 1} batch ${step + 1}`);
      batch.x.release();
      rt.release(batch.labels);
      total.loss += r.loss * r.count;
      total.correct += r.correct;
      total.count += r.count;
      progress.update(step + 1, r.count, { loss: total.loss / total.count, accuracy: total.correct / total.count });
      if ((step + 1) % o.logInterval === 0) run.logMetric({ level: 2, epoch: epoch + 1, batch: step + 1, loss: total.loss / total.count, accuracy: total.correct / total.count, lr: adam.lr });
    }
    progress.stop();
    const v = await evaluateImages(rt, net, val, config, o.batchSize);
    const summary: EpochSummary = { epoch: epoch + 1, trainLoss: total.loss / total.count, trainAccuracy: total.correct / total.count, valLoss: v.loss, valAccuracy: v.correct / v.count };
    summaries.push(summary);
    run.logMetric({ level: 2, kind: 'epoch', ...summary, lr: adam.lr });
    const improved = !best || summary.valAccuracy > best.valAccuracy || (summary.valAccuracy === best.valAccuracy && summary.valLoss < best.valLoss);
    if (improved) {
      best = summary;
      writeFileAtomic(run.level2Weights, await weightsToSafetensors(net, { config: JSON.stringify(config), level: 'level2', epoch: String(summary.epoch) }));
    }
    if (!o.quiet) {
      console.log(
        `level 2 epoch ${summary.epoch}: train loss ${summary.trainLoss.toFixed(4)} acc ${(100 * summary.trainAccuracy).toFixed(1)}% | validation loss ${summary.valLoss.toFixed(4)} acc ${(100 * summary.valAccuracy).toFixed(1)}%${improved ? ' (best so far, saved)' : ''}`,
      );
    }
    await saveCheckpoint(run.checkpoints, 'level2', net, adam, { epoch: epoch + 1, optimizerStep: adam.step, lr: adam.lr, rng: [], extra: { ...summary, best, level1: level1Hash } }, config);
  }
  model.destroy();
  return { net, epochs: summaries, best };
}
