/**
 * One optimisation step and one evaluation pass, shared by both levels: forward under a tape,
 * log_softmax + NLL, backward, Adam. The step reads back only the loss and log-probabilities of
 * its batch (a few hundred bytes) for the progress line and running accuracy.
 */
import type { TwoPartNetwork } from '../nn/networks.ts';
import { logSoftmax, logSoftmaxNllLoss } from '../nn/ops.ts';
import type { Adam } from '../nn/optim.ts';
import { Tape } from '../nn/tape.ts';
import type { Tensor } from '../nn/tensor.ts';
import { argmax } from './metrics.ts';

export interface StepResult {
  loss: number;
  correct: number;
  count: number;
}

/** Rows of a [n, classes] array. */
export function rows(values: Float32Array, classes: number): Float32Array[] {
  return Array.from({ length: values.length / classes }, (_, i) => values.subarray(i * classes, (i + 1) * classes));
}

function countCorrect(logp: Float32Array, labels: ArrayLike<number>, classes: number): number {
  return rows(logp, classes).reduce((n, row, i) => n + (argmax(row) === labels[i] ? 1 : 0), 0);
}

/** Checks a step's loss: NaN or Inf stops training with the step named. */
export class NonFiniteLossError extends Error {
  constructor(where: string) {
    super(`${where}: the loss is NaN or Inf (learning rate too high, or bad input); the last good checkpoint is kept`);
    this.name = 'NonFiniteLossError';
  }
}

/** Forward, backward and Adam on one batch. `seed` drives this step's dropout masks. */
export async function trainStep(net: TwoPartNetwork, adam: Adam, x: Tensor, labels: GPUBuffer, labelsCpu: ArrayLike<number>, seed: number, where: string): Promise<StepResult> {
  adam.zeroGrad();
  const tape = new Tape();
  const logits = net.forward(x, { tape, seed });
  const { logp, loss } = logSoftmaxNllLoss(logits, labels, tape);
  logits.release();
  tape.backward(loss);
  const [lossValue, logpValues] = await Promise.all([loss.read(), logp.read()]);
  loss.release();
  logp.release();
  const value = lossValue[0] as number;
  if (!Number.isFinite(value)) throw new NonFiniteLossError(where);
  adam.update();
  const classes = logpValues.length / labelsCpu.length;
  return { loss: value, correct: countCorrect(logpValues, labelsCpu, classes), count: labelsCpu.length };
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
