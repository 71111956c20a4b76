/**
 * One optimisation step and one evaluation pass, shared by both levels and by every device of a
 * data-parallel step: forward under a tape, log_softmax + NLL, backward, (with several devices) the
 * gradient reduction, the non-finite guard (guard.ts), Adam. The step reads back only the loss and
 * log-probabilities of its batch and one flag word per parameter (a few hundred bytes).
 */
import type { TwoPartNetwork } from '../nn/networks.ts';
import { logSoftmax, logSoftmaxNllLoss } from '../nn/ops.ts';
import type { Adam } from '../nn/optim.ts';
import { Tape } from '../nn/tape.ts';
import type { Tensor } from '../nn/tensor.ts';
import { BufferSnapshot, gradientFlags, NonFiniteError, nonFiniteReport, withGradients, type NonFinitePolicy, type NonFiniteReport } from './guard.ts';
import { argmax } from './metrics.ts';

export interface StepResult {
  loss: number;
  correct: number;
  count: number;
  /** Set when the batch was skipped for a NaN or Inf (policy 'skip'): no update was applied. */
  skipped?: NonFiniteReport;
}

/**
 * How one replica of a data-parallel step (data_parallel.ts) joins the others: its shard's loss is
 * scaled by `share` (n_k / n), and after backward `gradients` makes every replica's `.grad` the sum
 * over replicas; after the read-back `loss` turns the shard's mean loss into the whole batch's.
 * Both are collective: every replica must call them, and they resolve to the same result on each.
 */
export interface GradientReduce {
  share: number;
  gradients(): Promise<void>;
  loss(shardLoss: number): Promise<number>;
}

/** Adds a batch's result to running sums: its mean loss weighted by its rows. */
export function accumulate(total: Pick<StepResult, 'loss' | 'correct' | 'count'>, r: StepResult): void {
  total.loss += r.loss * r.count;
  total.correct += r.correct;
  total.count += r.count;
}

/** Rows of a [n, classes] array. */
export function rows(values: Float32Array, classes: number): Float32Array[] {
  return Array.from({ length: values.length / classes }, (_, i) => values.subarray(i * classes, (i + 1) * classes));
}

function countCorrect(logp: Float32Array, labels: ArrayLike<number>, classes: number): number {
  return rows(logp, classes).reduce((n, row, i) => n + (argmax(row) === labels[i] ? 1 : 0), 0);
}

/** How one training step differs from the plain one-device step. */
export interface TrainStepOptions {
  /** A NaN or Inf in the loss or a gradient: throw (default) or skip the batch. */
  onNonFinite?: NonFinitePolicy;
  /** Data parallel: `x` is this replica's shard and the gradients are reduced across replicas. */
  reduce?: GradientReduce;
  /** Label smoothing ε: train against (1 − ε)·onehot + ε/classes (default 0). */
  labelSmoothing?: number;
}

/**
 * Forward, backward and Adam on one batch. `seed` drives this step's dropout masks. A NaN or Inf in
 * the loss or a gradient throws a NonFiniteError (policy 'stop') or skips the batch ('skip'); either
 * way Adam does not step and, when skipping, the BatchNorm running statistics are put back.
 * With `reduce`, `x` is this replica's shard; the returned loss is the whole batch's, `correct`
 * and `count` the shard's. With label smoothing the returned loss is the smoothed loss.
 */
export async function trainStep(net: TwoPartNetwork, adam: Adam, x: Tensor, labels: GPUBuffer, labelsCpu: ArrayLike<number>, seed: number, where: string, options: TrainStepOptions = {}): Promise<StepResult> {
  const { onNonFinite = 'stop', reduce, labelSmoothing = 0 } = options;
  adam.zeroGrad();
  const snapshot = onNonFinite === 'skip' ? new BufferSnapshot(x.rt, net) : null;
  const tape = new Tape();
  const logits = net.forward(x, { tape, seed });
  const { logp, loss } = logSoftmaxNllLoss(logits, labels, tape, labelSmoothing);
  logits.release();
  tape.backward(loss, reduce?.share);
  if (reduce) await reduce.gradients();
  const params = withGradients(net);
  const flags = gradientFlags(x.rt, params);
  const [lossBytes, logpBytes, flagBytes] = await x.rt.readMany([{ buffer: loss.buffer, bytes: 4 }, { buffer: logp.buffer, bytes: logp.size * 4 }, { buffer: flags, bytes: params.length * 4 }]);
  const [lossValue, logpValues, flagValues] = [new Float32Array(lossBytes as ArrayBuffer), new Float32Array(logpBytes as ArrayBuffer), new Uint32Array(flagBytes as ArrayBuffer)];
  loss.release();
  logp.release();
  x.rt.release(flags);
  const value = reduce ? await reduce.loss(lossValue[0] as number) : (lossValue[0] as number);
  const count = labelsCpu.length;
  const bad = nonFiniteReport(value, flagValues, params);
  if (bad) {
    if (!snapshot) throw new NonFiniteError(`${where} (optimizer step ${adam.step + 1})`, bad);
    snapshot.restore();
    snapshot.release();
    adam.zeroGrad();
    return { loss: value, correct: 0, count, skipped: bad };
  }
  snapshot?.release();
  adam.update();
  const classes = logpValues.length / count;
  return { loss: value, correct: countCorrect(logpValues, labelsCpu, classes), count };
}

/** Eval-mode log-probabilities of a batch (no tape), read back as rows. */
export async function predictBatch(net: TwoPartNetwork, x: Tensor): Promise<Float32Array> {
  const logits = net.forward(x, { tape: null, seed: 0 });
  const logp = logSoftmax(logits);
  logits.release();
  const values = await logp.read();
  logp.release();
  return values;
}

/** Mean NLL and correct count of eval log-probabilities against labels. */
export function scoreLogp(logp: Float32Array, labels: ArrayLike<number>): StepResult {
  const classes = logp.length / labels.length;
  let loss = 0;
  rows(logp, classes).forEach((row, i) => {
    loss -= row[labels[i] as number] as number;
  });
  return { loss: loss / labels.length, correct: countCorrect(logp, labels, classes), count: labels.length };
}
