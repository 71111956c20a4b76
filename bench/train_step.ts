/**
 * One Level-1 training step as the benches record it (forward with the tape, log-softmax + NLL,
 * backward, Adam), shared by train_step_stats.ts, step_split.ts, step_cpu.ts and dispatch_cost.ts so
 * they time the same work; and the FLOPs such a step is counted as. Nothing is read back: the
 * caller decides when to sync.
 */
import { conv2dFlops, type Conv2dShape } from '../src/kernels/conv2d_shape.ts';
import type { kernelUses } from '../src/nn/kernel_uses.ts';
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

/** A training step's FLOPs as the train-step rows count them: 3 × the forward convolutions' and linear layers'. */
export function stepFlops(uses: ReturnType<typeof kernelUses>): number {
  const linearFlops = uses.filter((u) => u.op === 'linear.forward').reduce((s, u) => s + 2 * (u.shape as { n: number; inFeatures: number; outFeatures: number }).n * (u.shape as { inFeatures: number }).inFeatures * (u.shape as { outFeatures: number }).outFeatures, 0);
  const forwardFlops = uses.filter((u) => u.op === 'conv2d.forward').reduce((s, u) => s + conv2dFlops(u.shape as Conv2dShape), 0) + linearFlops;
  return 3 * forwardFlops;
}
