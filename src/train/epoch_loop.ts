/**
 * The one epoch loop both levels train with (`trainEpochs`): resume from the newest valid
 * checkpoint (inside an epoch too), the batch-size check, then per epoch the learning rate, the
 * training steps with their metrics, log lines, skipped batches and checkpoints inside the epoch
 * (and at a stop signal), what a level does after its training steps (Level 1: the BatchNorm
 * recalibration), validation, the epoch's record and its checkpoint. A level says only what
 * differs (a LevelPlan): how its batches are made, its dropout seeds, its validation, and what it
 * keeps in its checkpoints. Also here: the running loss/accuracy and skipped batches of an epoch
 * (saved in a checkpoint taken inside it, so a resumed epoch reports what an uninterrupted one
 * would), and what a failed run says about the checkpoint it leaves on disk.
 *
 * metrics.jsonl, per level: a batch record every `logInterval` batches, whose `loss` and
 * `accuracy` are the mean over the training batches since the previous batch record of the epoch
 * (train mode, skipped batches left out); an epoch record (`kind: 'epoch'`) whose `trainLoss` and
 * `trainAccuracy` are the mean over the whole epoch; a `kind: 'skip'` record per skipped batch.
 */
import { join } from 'node:path';
import { OutOfMemoryError } from '../kernels/pool.ts';
import { DeviceLostError, type Runtime } from '../kernels/runtime.ts';
import type { ModelConfig } from '../nn/config.ts';
import { stepLr } from '../nn/optim.ts';
import { listCheckpoints, loadLatestCheckpoint, readCheckpoint, saveCheckpoint, type CheckpointState } from './checkpoint.ts';
import type { Replicated } from './data_parallel.ts';
import { describeNonFinite, NonFiniteError, NonFiniteWeightsError, skipLimit, TooManySkipsError, type NonFiniteReport } from './guard.ts';
import type { EpochSummary, LevelOptions } from './level1.ts';
import { checkBatchFits, outOfMemoryAdvice, type StepMemory, type StepProbe } from './memory.ts';
import type { PatchBatch } from './loader.ts';
import { EpochProgress } from './progress.ts';
import type { RunFolder } from './run_folder.ts';
import { accumulate, type StepResult } from './step.ts';
import { stopSignal } from './stop_signal.ts';

/** Loss, correct and count summed over steps. */
export interface Sums {
  loss: number;
  correct: number;
  count: number;
}

const zero = (): Sums => ({ loss: 0, correct: 0, count: 0 });

function isSums(value: unknown): value is Sums {
  const v = value as Sums | null;
  return typeof v === 'object' && v !== null && [v.loss, v.correct, v.count].every((x) => typeof x === 'number');
}

/** An epoch's running totals (`window`: since the last log line) and its skipped batches. */
export class EpochTally {
  total = zero();
  window = zero();
  skipped = 0;

  /** @param limit skipped batches allowed in this epoch */
  constructor(readonly limit: number) {}

  /** A tally saved by `toJSON` in a checkpoint inside the epoch (a fresh one when there is none). */
  static restore(limit: number, saved: unknown): EpochTally {
    const tally = new EpochTally(limit);
    const s = saved as { total?: unknown; window?: unknown; skipped?: unknown } | undefined;
    if (s && isSums(s.total) && isSums(s.window) && typeof s.skipped === 'number') Object.assign(tally, { total: { ...s.total }, window: { ...s.window }, skipped: s.skipped });
    return tally;
  }

  /**
   * Adds one step. A skipped step is counted, not summed; past the limit it throws a
   * TooManySkipsError. Returns the skip report, if the step was skipped.
   */
  add(r: StepResult, where: string): NonFiniteReport | null {
    if (r.skipped) {
      this.skipped++;
      if (this.skipped > this.limit) throw new TooManySkipsError(where, this.skipped, this.limit, r.skipped);
      return r.skipped;
    }
    accumulate(this.total, r);
    accumulate(this.window, r);
    return null;
  }

  resetWindow(): void {
    this.window = zero();
  }

  toJSON(): { total: Sums; window: Sums; skipped: number } {
    return { total: { ...this.total }, window: { ...this.window }, skipped: this.skipped };
  }
}

/** The newest checkpoint of `level` that reads back and verifies, or null. */
function lastGoodCheckpoint(dir: string, level: string): string | null {
  for (const name of listCheckpoints(dir, level).reverse()) {
    try {
      readCheckpoint(join(dir, name));
      return join(dir, name);
    } catch {
      // corrupt: the resume will fall back past it too
    }
  }
  return null;
}

/**
 * Adds to a training failure's message which checkpoint is the last good state — NaN/Inf, too
 * many skips, out of memory, device lost — so the user knows what --resume will continue from.
 */
export function withCheckpointNote(e: unknown, dir: string, level: string, where: string): unknown {
  const numeric = e instanceof NonFiniteError || e instanceof TooManySkipsError || e instanceof NonFiniteWeightsError;
  if (!numeric && !(e instanceof OutOfMemoryError) && !(e instanceof DeviceLostError)) return e;
  const last = lastGoodCheckpoint(dir, level);
  const context = numeric ? '' : ` during ${where}`;
  const note = last ? `the last checkpoint, ${last}, is intact: fix the cause and run again with --resume` : 'no checkpoint of this level was written yet';
  (e as Error).message = `${(e as Error).message}${context}; ${note}`;
  return e;
}

/** A training batch on device 0; the loop releases it after the step. */
export type TrainBatch = Pick<PatchBatch, 'x' | 'labels' | 'labelsCpu'>;

/** What one level's training does differently; `trainEpochs` does the rest. */
export interface LevelPlan {
  level: 1 | 2;
  model: Replicated;
  run: RunFolder;
  config: ModelConfig;
  o: LevelOptions;
  /** The throwaway step at the real batch size that checks it fits (memory.ts); its `units` name the progress bar's. */
  probe: StepProbe;
  /** The dropout seed of step `step` of `epoch`. */
  stepSeed(epoch: number, step: number): number;
  /** The epoch's training batches from batch `first` on, and how many the whole epoch has. */
  batches(epoch: number, first: number): { perEpoch: number; batches: AsyncIterable<TrainBatch> | Iterable<TrainBatch> };
  /** Eval-mode loss and accuracy on the validation split. */
  validate(): Promise<StepResult>;
  /** Before an epoch's batches (Level 1: the data-manifest check). */
  beforeEpoch?(epoch: number): void;
  /** After an epoch's training steps, before validation (Level 1: the BatchNorm recalibration). */
  afterTraining?: { what: string; run(epoch: number): Promise<void> };
  /** After an epoch's record, before its checkpoint; returns a note for its console line. */
  afterValidation?(summary: EpochSummary): Promise<string>;
  /** Epoch-end checkpoints kept besides the newest three (Level 2's weight averaging reads them). */
  keepEpochEnds?: number;
  /** Fields every checkpoint of the level keeps besides the loop's own (Level 2: best, Level-1 hash). */
  checkpointExtra?(): Record<string, unknown>;
  /** Which checkpoints may be resumed (Level 2: those from the same Level-1 weights). */
  accept?(state: CheckpointState, path: string): boolean;
  /** Called with the checkpoint a run resumes from. */
  resumed?(state: CheckpointState): void;
}

/**
 * Trains (or resumes) one level per `plan` on `model` (device 0 validates and saves) and returns
 * the summaries of the epochs it ran.
 */
export async function trainEpochs(plan: LevelPlan): Promise<EpochSummary[]> {
  const { level, model, run, config, o } = plan;
  const { net, adam } = model;
  const rt = model.runtimes[0] as Runtime;
  const name = `level ${level}`;
  const file = `level${level}`;
  let startEpoch = 0;
  let startBatch = 0;
  let savedTally: unknown;
  if (o.resume) {
    const state = loadLatestCheckpoint(run.checkpoints, file, net, adam, o.warn, plan.accept);
    if (state) {
      await model.broadcast();
      startEpoch = state.epoch;
      startBatch = state.batch ?? 0;
      savedTally = state.extra.tally;
      plan.resumed?.(state);
      if (!o.quiet) console.log(`${name}: resuming after epoch ${state.epoch}${startBatch ? ` and ${startBatch} batches of epoch ${state.epoch + 1}` : ''} (optimizer step ${state.optimizerStep})`);
    }
  }
  const summaries: EpochSummary[] = [];
  let measured: StepMemory | null = null;
  const heldBefore = rt.poolStats().inUseBytes;
  if (startEpoch < o.epochs) measured = await checkBatchFits(rt, plan.probe, Math.ceil(o.batchSize / model.replicas.length)); // rows per device
  const save = (epoch: number, batch: number | null, extra: Record<string, unknown>) =>
    saveCheckpoint(run.checkpoints, file, net, adam, { epoch, ...(batch === null ? {} : { batch }), optimizerStep: adam.step, lr: adam.lr, rng: [], extra }, config, plan.keepEpochEnds);
  let where = name;
  try {
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      const first = epoch === startEpoch ? startBatch : 0;
      const label = `${name} epoch ${epoch + 1}`;
      plan.beforeEpoch?.(epoch);
      model.lr = o.stepLr ? stepLr(o.lr, epoch, o.stepLr.step, o.stepLr.gamma) : o.lr;
      model.train();
      const { perEpoch, batches } = plan.batches(epoch, first);
      const progress = new EpochProgress(`${label}/${o.epochs}`, perEpoch, plan.probe.units, o.quiet);
      const limit = skipLimit(perEpoch, o.maxSkips);
      const tally = first > 0 ? EpochTally.restore(limit, savedTally) : new EpochTally(limit);
      let step = first;
      for await (const batch of batches) {
        where = `${label} batch ${step + 1}`;
        const r = await model.step(batch.x, batch.labels, batch.labelsCpu, plan.stepSeed(epoch, step), where, o.onNonFinite);
        batch.x.release();
        rt.release(batch.labels);
        step++;
        const skipped = tally.add(r, where);
        if (skipped) {
          const reason = describeNonFinite(skipped);
          run.logMetric({ level, kind: 'skip', epoch: epoch + 1, batch: step, reason, skippedThisEpoch: tally.skipped });
          o.warn(`${where}: skipped (${tally.skipped} this epoch, at most ${limit}): ${reason}`);
        }
        const { total, window } = tally;
        progress.update(step, r.count, { loss: total.loss / total.count, accuracy: total.correct / total.count });
        if (step % o.logInterval === 0) {
          const record = { level, epoch: epoch + 1, batch: step, loss: window.loss / window.count, accuracy: window.correct / window.count, lr: adam.lr };
          run.logMetric(record);
          progress.log(`${label} batch ${step}: loss ${record.loss.toFixed(4)} acc ${(100 * record.accuracy).toFixed(1)}%`);
          tally.resetWindow();
        }
        // Every `checkpointEvery` batches inside the epoch (its end has its own), or at a stop signal.
        if ((o.checkpointEvery > 0 && step % o.checkpointEvery === 0 && step < perEpoch) || stopSignal.requested) {
          where = `a checkpoint after ${where}`;
          const saved = await save(epoch, step, { tally: tally.toJSON(), ...plan.checkpointExtra?.() });
          stopSignal.stopIfRequested(saved, `${label} batch ${step}`);
        }
      }
      progress.stop();
      if (plan.afterTraining) {
        where = `${label} ${plan.afterTraining.what}`;
        await plan.afterTraining.run(epoch);
      }
      where = `${label} validation`;
      const v = await plan.validate();
      const { total } = tally;
      const summary: EpochSummary = { epoch: epoch + 1, trainLoss: total.loss / total.count, trainAccuracy: total.correct / total.count, valLoss: v.loss, valAccuracy: v.correct / v.count };
      summaries.push(summary);
      run.logMetric({ level, kind: 'epoch', ...summary, lr: adam.lr, skipped: tally.skipped });
      const note = (await plan.afterValidation?.(summary)) ?? '';
      if (!o.quiet) {
        console.log(`${name} epoch ${summary.epoch}: train loss ${summary.trainLoss.toFixed(4)} acc ${(100 * summary.trainAccuracy).toFixed(1)}% | validation loss ${summary.valLoss.toFixed(4)} acc ${(100 * summary.valAccuracy).toFixed(1)}%${tally.skipped ? ` | ${tally.skipped} batches skipped` : ''}${note}`);
      }
      where = `the checkpoint of ${label}`;
      await save(epoch + 1, null, { ...summary, skipped: tally.skipped, ...plan.checkpointExtra?.() });
    }
  } catch (e) {
    if (e instanceof OutOfMemoryError) e.message += outOfMemoryAdvice(e, measured, heldBefore);
    throw withCheckpointNote(e, run.checkpoints, file, where);
  }
  return summaries;
}
