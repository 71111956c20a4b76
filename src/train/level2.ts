/**
 * Level 2: the image network trained on cached Level-1 feature maps (no back-propagation into
 * Level 1). Adam, NLL, dropout; a checkpoint after every epoch (and every `checkpointEvery` batches
 * inside one) for resume, and the best-validation weights kept as level2.safetensors.
 */
import { OutOfMemoryError } from '../kernels/pool.ts';
import type { Runtime } from '../kernels/runtime.ts';
import { derivedSizes, type ModelConfig } from '../nn/config.ts';
import { writeFileAtomic } from '../nn/files.ts';
import { buildImageNetwork, type TwoPartNetwork } from '../nn/networks.ts';
import { stepLr } from '../nn/optim.ts';
import { mixSeed, Rng, SEED_STREAM } from '../nn/random.ts';
import { weightsToSafetensors } from '../nn/weights.ts';
import { loadLatestCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { Replicated } from './data_parallel.ts';
import { checkpointDue, EpochTally, skipRecord, withCheckpointNote } from './epoch_loop.ts';
import { featureBatch, type FeatureSplit } from './features.ts';
import { describeNonFinite, skipLimit } from './guard.ts';
import { shardSize, stepSeed, type EpochSummary, type LevelOptions } from './level1.ts';
import { checkBatchFits, outOfMemoryAdvice, type StepMemory } from './memory.ts';
import { EpochProgress } from './progress.ts';
import { stopSignal } from './stop_signal.ts';
import type { RunFolder } from './run_folder.ts';
import { predictBatch, scoreLogp, type StepResult } from './step.ts';

/** Batches of indices 0..n−1, shuffled from (seed, epoch) when `shuffle`. */
export function indexBatches(n: number, batchSize: number, seed: number, epoch: number, shuffle: boolean): number[][] {
  const order = Array.from({ length: n }, (_, i) => i);
  if (shuffle) new Rng(mixSeed(seed, SEED_STREAM.level2Order, epoch)).shuffle(order);
  const out: number[][] = [];
  for (let i = 0; i < n; i += batchSize) out.push(order.slice(i, i + batchSize));
  return out;
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
  let startBatch = 0;
  let savedTally: unknown;
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
      startBatch = state.batch ?? 0;
      savedTally = state.extra.tally;
      best = (state.extra.best as EpochSummary | undefined) ?? null;
      if (!o.quiet) console.log(`level 2: resuming after epoch ${state.epoch}${startBatch ? ` and ${startBatch} batches of epoch ${state.epoch + 1}` : ''}`);
    }
  }
  const summaries: EpochSummary[] = [];
  let measured: StepMemory | null = null;
  const heldBefore = rt.poolStats().inUseBytes;
  if (startEpoch < o.epochs) measured = await checkBatchFits(rt, imageProbe(config), shardSize(o.batchSize, rts.length));
  let where = 'level 2';
  try {
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      const first = epoch === startEpoch ? startBatch : 0;
      model.lr = o.stepLr ? stepLr(o.lr, epoch, o.stepLr.step, o.stepLr.gamma) : o.lr;
      const batches = indexBatches(train.count, o.batchSize, o.seed, epoch, true);
      const progress = new EpochProgress(`level 2 epoch ${epoch + 1}/${o.epochs}`, batches.length, 'images', o.quiet);
      const limit = skipLimit(batches.length, o.maxSkips);
      const tally = first > 0 ? EpochTally.restore(limit, savedTally) : new EpochTally(limit);
      model.train();
      for (let step = first; step < batches.length; step++) {
        where = `level 2 epoch ${epoch + 1} batch ${step + 1}`;
        const batch = featureBatch(rt, train, batches[step] as number[], config);
        const r = await model.step(batch.x, batch.labels, batch.labelsCpu, stepSeed(o.seed + 1, epoch, step), where, o.onNonFinite);
        batch.x.release();
        rt.release(batch.labels);
        const skipped = tally.add(r, where);
        if (skipped) {
          run.logMetric(skipRecord(2, epoch + 1, step + 1, skipped, tally));
          o.warn(`${where}: skipped (${tally.skipped} this epoch, at most ${limit}): ${describeNonFinite(skipped)}`);
        }
        const { total } = tally;
        progress.update(step + 1, r.count, { loss: total.loss / total.count, accuracy: total.correct / total.count });
        if ((step + 1) % o.logInterval === 0) run.logMetric({ level: 2, epoch: epoch + 1, batch: step + 1, loss: total.loss / total.count, accuracy: total.correct / total.count, lr: adam.lr });
        if (checkpointDue(step + 1, o.checkpointEvery, batches.length) || stopSignal.requested) {
          where = `a checkpoint after ${where}`;
          const saved = await saveCheckpoint(run.checkpoints, 'level2', net, adam, { epoch, batch: step + 1, optimizerStep: adam.step, lr: adam.lr, rng: [], extra: { tally: tally.toJSON(), best, level1: level1Hash } }, config);
          stopSignal.stopIfRequested(saved, `level 2 epoch ${epoch + 1} batch ${step + 1}`);
        }
      }
      progress.stop();
      where = `level 2 epoch ${epoch + 1} validation`;
      const v = await evaluateImages(rt, net, val, config, o.batchSize);
      const { total } = tally;
      const summary: EpochSummary = { epoch: epoch + 1, trainLoss: total.loss / total.count, trainAccuracy: total.correct / total.count, valLoss: v.loss, valAccuracy: v.correct / v.count };
      summaries.push(summary);
      run.logMetric({ level: 2, kind: 'epoch', ...summary, lr: adam.lr, skipped: tally.skipped });
      const improved = !best || summary.valAccuracy > best.valAccuracy || (summary.valAccuracy === best.valAccuracy && summary.valLoss < best.valLoss);
      if (improved) {
        best = summary;
        writeFileAtomic(run.level2Weights, await weightsToSafetensors(net, { config: JSON.stringify(config), level: 'level2', epoch: String(summary.epoch) }));
      }
      if (!o.quiet) {
        console.log(
          `level 2 epoch ${summary.epoch}: train loss ${summary.trainLoss.toFixed(4)} acc ${(100 * summary.trainAccuracy).toFixed(1)}% | validation loss ${summary.valLoss.toFixed(4)} acc ${(100 * summary.valAccuracy).toFixed(1)}%${tally.skipped ? ` | ${tally.skipped} batches skipped` : ''}${improved ? ' (best so far, saved)' : ''}`,
        );
      }
      where = `the checkpoint of level 2 epoch ${epoch + 1}`;
      await saveCheckpoint(run.checkpoints, 'level2', net, adam, { epoch: epoch + 1, optimizerStep: adam.step, lr: adam.lr, rng: [], extra: { ...summary, skipped: tally.skipped, best, level1: level1Hash } }, config);
    }
  } catch (e) {
    if (e instanceof OutOfMemoryError) e.message += outOfMemoryAdvice(e, measured, heldBefore);
    throw withCheckpointNote(e, run.checkpoints, 'level2', where);
  }
  model.destroy();
  return { net, epochs: summaries, best };
}
