/**
 * One Level-1 training step as the benches record it (forward with the tape, log-softmax + NLL,
 * backward, Adam), shared by train_step_stats.ts, step_split.ts and dispatch_cost.ts so they time
 * the same work. Nothing is read back: the caller decides when to sync.
 */
import type { TwoPartNetwork } from '../src/nn/networks.ts';
import { logSoftmaxNllLoss } from '../src/nn/ops.ts';
import type { Adam } from '../src/nn/optim.ts';
import { Tape } from '../src/nn/tape.ts';
import type { Tensor } from '../src/nn/tensor.ts';

/** A function that records one training step of `net` on (`x`, `labels`) with the dropout seed given. */
export function trainingStep(net: TwoPartNetwork, adam: Adam, x: Tensor, labels: GPUBuffer): (seed: number) => void {
  return (seed) => {
    adam.zeroGrad();
    const tape = new Tape();
    const logits = net.forward(x, { tape, seed });
    const { logp, loss } = logSoftmaxNllLoss(logits, labels, tape);
    logits.release();
    logp.release();
    tape.backward(loss);
    loss.release();
    adam.update();
  };
}
