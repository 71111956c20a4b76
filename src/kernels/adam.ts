/**
 * Adam optimiser step (torch.optim.Adam: amsgrad=False, L2 weight decay added to the gradient),
 * updating param, m (exp_avg) and v (exp_avg_sq) in place with wgsl/adam.wgsl. The scalars
 * 1 − β^t, lr/(1 − β1^t) and sqrt(1 − β2^t) are computed here in float64, as PyTorch does in
 * Python. Parameters of any size: the arrays are processed in chunks that fit one binding.
 * Formula: Kingma & Ba 2015, Algorithm 1, in PyTorch's arrangement (eps added after the sqrt).
 */
import { elementRange, forEachElementChunk } from './elementwise.ts';
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

/** Hyper-parameters of one Adam step; `step` counts from 1 (PyTorch's state['step'] after increment). */
export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  step: number;
}

const WG = 256;
const adamKernel = defineKernel({ name: 'adam', shader: 'adam', bindings: ['write', 'read', 'write', 'write'], uniforms: true, constants: { WG } });

interface AdamScalars {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  stepSize: number;
  bc2Sqrt: number;
}

function checkAdamOptions(opts: AdamOptions): void {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, step } = opts;
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`adam: step must be an integer ≥ 1, got ${step}`);
  if (!(lr >= 0)) throw new RangeError(`adam: lr must be ≥ 0, got ${lr}`);
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) throw new RangeError(`adam: betas must lie in [0, 1), got (${beta1}, ${beta2})`);
  if (!(eps >= 0) || !(weightDecay >= 0)) throw new RangeError(`adam: eps and weightDecay must be ≥ 0, got ${eps}, ${weightDecay}`);
}

function adamScalars(opts: AdamOptions): AdamScalars {
  checkAdamOptions(opts);
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, step } = opts;
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  return { beta1, beta2, eps, weightDecay, stepSize: lr / bc1, bc2Sqrt: Math.sqrt(bc2) };
}

/**
 * One Adam step over `n` f32 elements: param, m and v are updated in place (m and v start at
 * zero before step 1). One dispatch per chunk that fits a storage binding.
 */
export function adamStep(rt: Runtime, param: GPUBuffer, grad: GPUBuffer, m: GPUBuffer, v: GPUBuffer, n: number, opts: AdamOptions): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`adam: n must be a non-negative integer, got ${n}`);
  const c = adamScalars(opts);
  const uniforms = (count: number) =>
    new Uniforms().u32(count).f32(c.beta1, 1 - c.beta1, c.beta2, 1 - c.beta2, c.eps, c.weightDecay, c.stepSize, c.bc2Sqrt);
  forEachElementChunk(rt, n, (start, count) => {
    rt.dispatch(adamKernel, {
      bindings: [param, grad, m, v].map((buffer) => elementRange(buffer, start, count)),
      uniforms: uniforms(count),
      workgroups: flatWorkgroups(Math.ceil(count / WG), rt.maxWorkgroupsPerDimension),
    });
  });
}

/**
 * The same step in float64, in place on param, m and v (grad is read only), written independently
 * of the launcher in Kingma & Ba's form m̂/(sqrt(v̂) + eps), equal to PyTorch's arrangement in exact arithmetic.
 */
export function adamStepRef(param: Float64Array, grad: ArrayLike<number>, m: Float64Array, v: Float64Array, n: number, opts: AdamOptions): void {
  checkAdamOptions(opts);
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, step } = opts;
  const biasCorrection1 = 1 - beta1 ** step;
  const biasCorrection2 = 1 - beta2 ** step;
  for (let i = 0; i < n; i++) {
    const g = (grad[i] as number) + weightDecay * (param[i] as number);
    m[i] = beta1 * (m[i] as number) + (1 - beta1) * g;
    v[i] = beta2 * (v[i] as number) + (1 - beta2) * g * g;
    const mHat = (m[i] as number) / biasCorrection1;
    const vHat = (v[i] as number) / biasCorrection2;
    param[i] = (param[i] as number) - (lr * mHat) / (Math.sqrt(vHat) + eps);
  }
}
