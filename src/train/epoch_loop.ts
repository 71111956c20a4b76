/**
 * Bookkeeping both levels share inside an epoch: the running loss/accuracy and the skipped batches
 * (saved in a checkpoint taken inside an epoch, so a resumed epoch reports what an uninterrupted
 * one would), when to take such a checkpoint, and what a failed run says about the checkpoint it
 * leaves on disk.
 */
import { join } from 'node:path';
import { OutOfMemoryError } from '../kernels/pool.ts';
import { DeviceLostError } from '../kernels/runtime.ts';
import { listCheckpoints, readCheckpoint } from './checkpoint.ts';
import { describeNonFinite, NonFiniteError, NonFiniteWeightsError, TooManySkipsError, type NonFiniteReport } from './guard.ts';
import type { StepResult } from './step.ts';

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
    for (const s of [this.total, this.window]) {
      s.loss += r.loss * r.count;
      s.correct += r.correct;
      s.count += r.count;
    }
    return null;
  }

  resetWindow(): void {
    this.window = zero();
  }

  toJSON(): { total: Sums; window: Sums; skipped: number } {
    return { total: { ...this.total }, window: { ...this.window }, skipped: this.skipped };
  }
}

/** The metrics record and warning text of a skipped batch. */
export function skipRecord(level: number, epoch: number, batch: number, report: NonFiniteReport, tally: EpochTally): Record<string, unknown> {
  return { level, kind: 'skip', epoch, batch, reason: describeNonFinite(report), skippedThisEpoch: tally.skipped };
}

/** True after `step` batches when a checkpoint inside the epoch is due (not at its end: that one is taken anyway). */
export function checkpointDue(step: number, every: number, batchesPerEpoch: number): boolean {
  return every > 0 && step % every === 0 && step < batchesPerEpoch;
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
