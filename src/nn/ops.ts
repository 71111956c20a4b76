/**
 * Differentiable ops: each runs its forward launcher and, when a tape wants it, records a node whose
 * backward calls the matching gradient launchers. Inputs are never released here; outputs belong
 * to the caller. What a backward needs is retained on the node (conv: x and W; batchnorm: x, γ,
 * mean, inverse std, and its output when fused with a ReLU; ReLU: its output; dropout: only its
 * seed and offset).
 */
import { batchNorm2dBackward, batchNorm2dEvalStats, batchNorm2dForwardEval, batchNorm2dForwardTrain } from '../kernels/batchnorm2d.ts';
import { conv2dBackwardData, conv2dForward } from '../kernels/conv2d.ts';
import type { Conv2dShape } from '../kernels/conv2d_shape.ts';
import { conv2dOutputSize } from '../kernels/conv2d_shape.ts';
import { conv2dBackwardBias, conv2dBackwardWeight } from '../kernels/conv2d_weight_grad.ts';
import { dropoutBackward, dropoutForward } from '../kernels/dropout.ts';
import { linearBackwardBias, linearBackwardData, linearBackwardWeight, linearForward } from '../kernels/linear.ts';
import { logSoftmaxForward, logSoftmaxNllBackward, nllLossForward } from '../kernels/log_softmax_nll.ts';
import { reluBackward, reluForward } from '../kernels/relu.ts';
import type { Tape } from './tape.ts';
import { Parameter, Tensor, formatShape } from './tensor.ts';

function dims4(x: Tensor, op: string): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: expected an NCHW tensor, got ${formatShape(x.shape)} ('${x.label}')`);
  return x.shape as unknown as [number, number, number, number];
}

/** Whether `t` needs a gradient under `tape` (a parameter that trains, or a recorded result). */
function needs(tape: Tape | null, t: Tensor | null): boolean {
  return tape !== null && t !== null && tape.wants([t]);
}

/** y = conv2d(x, W) + b, PyTorch Conv2d (square stride and zero padding). */
export function conv2d(x: Tensor, w: Parameter, b: Parameter | null, stride: number, pad: number, tape: Tape | null, label = 'conv'): Tensor {
  const [n, cIn, h, wIn] = dims4(x, 'conv2d');
  const [cOut, wcIn, kh, kw] = w.shape as [number, number, number, number];
  if (wcIn !== cIn) throw new Error(`conv2d '${label}': input has ${cIn} channels, weight ${w.name} expects ${wcIn}`);
  const s: Conv2dShape = { n, cIn, h, w: wIn, cOut, kh, kw, stride, pad };
  const { ho, wo } = conv2dOutputSize(s);
  const y = new Tensor(x.rt, conv2dForward(x.rt, x.buffer, w.buffer, b?.buffer ?? null, s), [n, cOut, ho, wo], label);
  if (tape?.wants([x, w, b])) {
    const wantX = needs(tape, x);
    const xs = x.retain();
    const ws = w.retain();
    tape.record({
      op: `conv2d '${label}'`,
      inputs: b ? [x, w, b] : [x, w],
      output: y,
      saved: [xs, ws],
      backward: (dy) => [
        wantX ? new Tensor(x.rt, conv2dBackwardData(x.rt, dy.buffer, ws.buffer, s), x.shape, `d${label}.x`) : null,
        new Tensor(x.rt, conv2dBackwardWeight(x.rt, xs.buffer, dy.buffer, s), w.shape, `d${w.name}`),
        b ? new Tensor(x.rt, conv2dBackwardBias(x.rt, dy.buffer, s), b.shape, `d${b.name}`) : null,
      ],
    });
  }
  return y;
}

export interface BatchNormState {
  gamma: Parameter;
  beta: Parameter;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
  momentum: number;
}

/** BatchNorm2d: batch statistics (and running-stat update) when training, running stats otherwise. */
export function batchNorm2d(x: Tensor, bn: BatchNormState, training: boolean, tape: Tape | null, label = 'bn'): Tensor {
  return batchNorm2dMaybeRelu(x, bn, training, tape, label, false);
}

/**
 * ReLU(BatchNorm2d(x)) as one op and one tape node: the ReLU is applied in BatchNorm's element pass
 * and its gradient mask (output > 0) inside BatchNorm's backward passes, saving a read and a write
 * of the activation each way. The same values, bit for bit, as batchNorm2d then relu.
 */
export function batchNorm2dRelu(x: Tensor, bn: BatchNormState, training: boolean, tape: Tape | null, label = 'bn+relu'): Tensor {
  return batchNorm2dMaybeRelu(x, bn, training, tape, label, true);
}

function batchNorm2dMaybeRelu(x: Tensor, bn: BatchNormState, training: boolean, tape: Tape | null, label: string, relu: boolean): Tensor {
  const [n, c, h, w] = dims4(x, 'batchNorm2d');
  const s = { n, c, h, w };
  const rt = x.rt;
  let y: Tensor;
  let mean: Tensor;
  let invStd: Tensor;
  if (training) {
    const out = batchNorm2dForwardTrain(rt, x.buffer, bn.gamma.buffer, bn.beta.buffer, bn.runningMean.buffer, bn.runningVar.buffer, s, { eps: bn.eps, momentum: bn.momentum, relu });
    y = new Tensor(rt, out.y, x.shape, label);
    mean = new Tensor(rt, out.mean, [c], `${label}.mean`);
    invStd = new Tensor(rt, out.invStd, [c], `${label}.invStd`);
  } else {
    y = new Tensor(rt, batchNorm2dForwardEval(rt, x.buffer, bn.gamma.buffer, bn.beta.buffer, bn.runningMean.buffer, bn.runningVar.buffer, s, { eps: bn.eps, relu }), x.shape, label);
    if (!tape?.wants([x, bn.gamma, bn.beta])) return y;
    const stats = batchNorm2dEvalStats(rt, bn.runningMean.buffer, bn.runningVar.buffer, c, bn.eps);
    mean = new Tensor(rt, stats.mean, [c], `${label}.mean`);
    invStd = new Tensor(rt, stats.invStd, [c], `${label}.invStd`);
  }
  if (!tape?.wants([x, bn.gamma, bn.beta])) {
    mean.release();
    invStd.release();
    return y;
  }
  const wantX = needs(tape, x);
  const xs = x.retain();
  const gs = bn.gamma.retain();
  const ys = relu ? y.retain() : null;
  tape.record({
    op: `${relu ? 'batchNorm2d+relu' : 'batchNorm2d'} '${label}'`,
    inputs: [x, bn.gamma, bn.beta],
    output: y,
    saved: ys ? [xs, gs, mean, invStd, ys] : [xs, gs, mean, invStd],
    backward: (dy) => {
      const g = batchNorm2dBackward(rt, dy.buffer, xs.buffer, gs.buffer, mean.buffer, invStd.buffer, s, training, ys?.buffer ?? null);
      let dx: Tensor | null = new Tensor(rt, g.dx, x.shape, `d${label}.x`);
      if (!wantX) {
        dx.release();
        dx = null;
      }
      return [dx, new Tensor(rt, g.dGamma, [c], `d${bn.gamma.name}`), new Tensor(rt, g.dBeta, [c], `d${bn.beta.name}`)];
    },
  });
  return y;
}

export function relu(x: Tensor, tape: Tape | null, label = 'relu'): Tensor {
  const y = new Tensor(x.rt, reluForward(x.rt, x.buffer, x.size), x.shape, label);
  if (tape?.wants([x])) {
    const ys = y.retain();
    tape.record({
      op: `relu '${label}'`,
      inputs: [x],
      output: y,
      saved: [ys],
      backward: (dy) => [new Tensor(x.rt, reluBackward(x.rt, dy.buffer, ys.buffer, x.size), x.shape, `d${label}`)],
    });
  }
  return y;
}

/** y = x·Wᵀ + b for x [n, in], W [out, in]. */
export function linear(x: Tensor, w: Parameter, b: Parameter | null, tape: Tape | null, label = 'linear'): Tensor {
  if (x.shape.length !== 2) throw new Error(`linear '${label}': expected [n, features], got ${formatShape(x.shape)}`);
  const [n, inFeatures] = x.shape as [number, number];
  const [outFeatures, wIn] = w.shape as [number, number];
  if (wIn !== inFeatures) throw new Error(`linear '${label}': input has ${inFeatures} features, weight ${w.name} expects ${wIn}`);
  const s = { n, inFeatures, outFeatures };
  const y = new Tensor(x.rt, linearForward(x.rt, x.buffer, w.buffer, b?.buffer ?? null, s), [n, outFeatures], label);
  if (tape?.wants([x, w, b])) {
    const wantX = needs(tape, x);
    const xs = x.retain();
    const ws = w.retain();
    tape.record({
      op: `linear '${label}'`,
      inputs: b ? [x, w, b] : [x, w],
      output: y,
      saved: [xs, ws],
      backward: (dy) => [
        wantX ? new Tensor(x.rt, linearBackwardData(x.rt, dy.buffer, ws.buffer, s), x.shape, `d${label}.x`) : null,
        new Tensor(x.rt, linearBackwardWeight(x.rt, xs.buffer, dy.buffer, s), w.shape, `d${w.name}`),
        b ? new Tensor(x.rt, linearBackwardBias(x.rt, dy.buffer, s), b.shape, `d${b.name}`) : null,
      ],
    });
  }
  return y;
}

/** Inverted dropout with a counter-based mask: backward recomputes it from (seed, offset). */
export function dropout(x: Tensor, p: number, seed: number, offset: number, tape: Tape | null, label = 'dropout'): Tensor {
  const y = new Tensor(x.rt, dropoutForward(x.rt, x.buffer, x.size, p, seed, offset), x.shape, label);
  if (tape?.wants([x])) {
    tape.record({
      op: `dropout '${label}'`,
      inputs: [x],
      output: y,
      saved: [],
      backward: (dy) => [new Tensor(x.rt, dropoutBackward(x.rt, dy.buffer, x.size, p, seed, offset), x.shape, `d${label}`)],
    });
  }
  return y;
}

/** A view of `x` with another shape; gradients flow back reshaped. */
export function reshape(x: Tensor, shape: readonly number[], tape: Tape | null): Tensor {
  const y = x.reshape(shape);
  if (tape?.wants([x])) {
    tape.record({ op: 'reshape', inputs: [x], output: y, saved: [], backward: (dy) => [dy.reshape(x.shape)] });
  }
  return y;
}

/** log_softmax over classes, without a gradient (for predictions). */
export function logSoftmax(logits: Tensor): Tensor {
  const [n, classes] = logits.shape as [number, number];
  return new Tensor(logits.rt, logSoftmaxForward(logits.rt, logits.buffer, { n, classes }), logits.shape, 'logp');
}

/**
 * log_softmax then mean NLL loss against `targets` (u32 class indices, one per row), optionally
 * with label smoothing ε (torch's cross-entropy `label_smoothing`). Returns the log-probabilities
 * (no gradient through them) and the scalar loss, whose backward is the fused (softmax − q)/n,
 * q the (smoothed) one-hot target.
 */
export function logSoftmaxNllLoss(logits: Tensor, targets: GPUBuffer, tape: Tape | null, smoothing = 0): { logp: Tensor; loss: Tensor } {
  if (logits.shape.length !== 2) throw new Error(`logSoftmaxNllLoss: expected [n, classes], got ${formatShape(logits.shape)}`);
  const [n, classes] = logits.shape as [number, number];
  const s = { n, classes };
  const rt = logits.rt;
  const logp = logSoftmax(logits);
  const loss = new Tensor(rt, nllLossForward(rt, logp.buffer, targets, s, smoothing), [1], 'loss');
  if (tape?.wants([logits])) {
    const lps = logp.retain();
    tape.record({
      op: 'logSoftmaxNllLoss',
      inputs: [logits],
      output: loss,
      saved: [lps],
      backward: (_dLoss, rootScale) => {
        if (rootScale === null) throw new Error('logSoftmaxNllLoss: its loss must be the tensor backward() starts from');
        return [new Tensor(rt, logSoftmaxNllBackward(rt, lps.buffer, targets, s, rootScale, smoothing), logits.shape, 'dlogits')];
      },
    });
  }
  return { logp, loss };
}
