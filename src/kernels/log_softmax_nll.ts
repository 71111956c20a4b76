/**
 * Classifier head: row-wise log-softmax (wgsl/log_softmax.wgsl), the mean negative log-likelihood
 * of integer targets, and the fused backward of NLL(log_softmax(z)) (wgsl/log_softmax_nll.wgsl),
 * as PyTorch's `F.nll_loss(F.log_softmax(z, 1), t)` with reduction 'mean'. Maths:
 * log_softmax(z)_j = z_j − m − log Σ_k exp(z_k − m) with m = max z; ∂loss/∂z = (softmax(z) − onehot(t))/n.
 * With label smoothing ε (torch's `CrossEntropyLoss(label_smoothing=ε)`) the target onehot(t) becomes
 * q = (1 − ε)·onehot(t) + ε/classes: loss −Σ_j q_j·logp_j, gradient (softmax(z) − q)/n; ε = 0 runs
 * the very same arithmetic as without it.
 * The mean is a fixed-order sum (elementwise.ts `sum`), so the loss is bitwise repeatable.
 */
import { elementRange, sum } from './elementwise.ts';
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

/** Shape of a batch of class scores: [n, classes]. */
export interface ClassShape {
  n: number;
  classes: number;
}

const WG = 64;
const forwardKernel = defineKernel({ name: 'log_softmax', shader: 'log_softmax', bindings: ['read', 'write'], uniforms: true, constants: { WG } });
const nllRowsKernel = defineKernel({
  name: 'nll_rows',
  shader: 'log_softmax_nll',
  entryPoint: 'nll_rows',
  bindings: ['read', 'read', 'write'],
  uniforms: true,
  constants: { WG },
});
const backwardKernel = defineKernel({
  name: 'log_softmax_nll_backward',
  shader: 'log_softmax_nll',
  entryPoint: 'backward',
  bindings: ['read', 'read', 'write'],
  uniforms: true,
  constants: { WG },
});

function checkShape(rt: Runtime, s: ClassShape, what: string): void {
  for (const [key, value] of Object.entries(s)) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what}: ${key} must be a positive integer, got ${value}`);
  }
  rt.assertBindable(`${what} [${s.n}, ${s.classes}]`, s.n * s.classes * 4);
}

/** Label smoothing must lie in [0, 1): at 1 the target would ignore the label. */
function checkSmoothing(smoothing: number, what: string): void {
  if (!(smoothing >= 0 && smoothing < 1)) throw new RangeError(`${what}: label smoothing must be in [0, 1), got ${smoothing}`);
}

function grid(rt: Runtime, invocations: number): [number, number] {
  return flatWorkgroups(Math.ceil(invocations / WG), rt.maxWorkgroupsPerDimension);
}

/** logp[n, c] = log_softmax(logits) along classes, max-subtracted. Returns a new buffer. */
export function logSoftmaxForward(rt: Runtime, logits: GPUBuffer, s: ClassShape): GPUBuffer {
  checkShape(rt, s, 'log-softmax logits');
  const size = s.n * s.classes;
  const logp = rt.alloc(size * 4, 'log-softmax logp');
  rt.dispatch(forwardKernel, {
    bindings: [elementRange(logits, 0, size), elementRange(logp, 0, size)],
    uniforms: new Uniforms().u32(s.n, s.classes),
    workgroups: grid(rt, s.n),
  });
  return logp;
}

/**
 * One element: mean over rows of −logp[i, targets[i]] (targets u32[n]; a target ≥ classes gives
 * NaN), or with label smoothing ε of −((1 − ε)·logp[i, t_i] + ε·mean_j logp[i, j]).
 */
export function nllLossForward(rt: Runtime, logp: GPUBuffer, targets: GPUBuffer, s: ClassShape, smoothing = 0): GPUBuffer {
  checkShape(rt, s, 'nll log-probabilities');
  checkSmoothing(smoothing, 'nll loss');
  const rows = rt.alloc(s.n * 4, 'nll per-row losses');
  rt.dispatch(nllRowsKernel, {
    bindings: [elementRange(logp, 0, s.n * s.classes), elementRange(targets, 0, s.n), elementRange(rows, 0, s.n)],
    uniforms: new Uniforms().u32(s.n, s.classes).f32(1 / s.n, NaN, smoothing),
    workgroups: grid(rt, s.n),
  });
  const loss = sum(rt, rows, s.n);
  rt.release(rows);
  return loss;
}

/**
 * dz[n, c] = dLoss·(exp(logp) − q)/n with q = onehot(targets), or (1 − ε)·onehot + ε/classes with
 * label smoothing ε: the gradient of the mean loss with respect to the logits z, from the saved
 * log-probabilities. Returns a new buffer.
 */
export function logSoftmaxNllBackward(rt: Runtime, logp: GPUBuffer, targets: GPUBuffer, s: ClassShape, dLoss = 1, smoothing = 0): GPUBuffer {
  checkShape(rt, s, 'log-softmax/nll backward logp');
  checkSmoothing(smoothing, 'log-softmax/nll backward');
  const size = s.n * s.classes;
  const dz = rt.alloc(size * 4, 'log-softmax/nll dz');
  rt.dispatch(backwardKernel, {
    bindings: [elementRange(logp, 0, size), elementRange(targets, 0, s.n), elementRange(dz, 0, size)],
    uniforms: new Uniforms().u32(s.n, s.classes).f32(dLoss / s.n, NaN, smoothing),
    workgroups: grid(rt, size),
  });
  return dz;
}

// ---- CPU references (float64) ------------------------------------------------------------------

/** log_softmax along classes in float64. */
export function logSoftmaxForwardRef(logits: ArrayLike<number>, s: ClassShape): Float64Array {
  const out = new Float64Array(s.n * s.classes);
  for (let i = 0; i < s.n; i++) {
    const row = i * s.classes;
    let m = -Infinity;
    for (let j = 0; j < s.classes; j++) m = Math.max(m, logits[row + j] as number);
    let total = 0;
    for (let j = 0; j < s.classes; j++) total += Math.exp((logits[row + j] as number) - m);
    const logTotal = Math.log(total);
    for (let j = 0; j < s.classes; j++) out[row + j] = (logits[row + j] as number) - m - logTotal;
  }
  return out;
}

function targetOf(targets: ArrayLike<number>, i: number, s: ClassShape): number {
  const t = targets[i] as number;
  return Number.isInteger(t) && t >= 0 && t < s.classes ? t : -1;
}

/** The smoothed target q_j = (1 − ε)·[j = t] + ε/classes. */
function smoothedTarget(j: number, t: number, s: ClassShape, smoothing: number): number {
  return (1 - smoothing) * (j === t ? 1 : 0) + smoothing / s.classes;
}

/** [mean over rows of −Σ_j q_j·logp[i, j]] in float64 (NaN for a target outside [0, classes)). */
export function nllLossForwardRef(logp: ArrayLike<number>, targets: ArrayLike<number>, s: ClassShape, smoothing = 0): Float64Array {
  let total = 0;
  for (let i = 0; i < s.n; i++) {
    const t = targetOf(targets, i, s);
    if (t < 0) total += NaN;
    for (let j = 0; j < s.classes; j++) {
      const q = smoothedTarget(j, t, s, smoothing);
      if (q !== 0) total -= q * (logp[i * s.classes + j] as number); // 0·(−∞) would be NaN
    }
  }
  return Float64Array.of(total / s.n);
}

/** dLoss·(exp(logp) − q)/n in float64, q the (smoothed) target. */
export function logSoftmaxNllBackwardRef(logp: ArrayLike<number>, targets: ArrayLike<number>, s: ClassShape, dLoss = 1, smoothing = 0): Float64Array {
  const dz = new Float64Array(s.n * s.classes);
  for (let i = 0; i < s.n; i++) {
    const t = targetOf(targets, i, s);
    for (let j = 0; j < s.classes; j++) {
      const k = i * s.classes + j;
      dz[k] = t < 0 ? NaN : (dLoss * (Math.exp(logp[k] as number) - smoothedTarget(j, t, s, smoothing))) / s.n;
    }
  }
  return dz;
}
