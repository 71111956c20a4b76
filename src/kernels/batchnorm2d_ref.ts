/**
 * CPU references for BatchNorm2d (the spec the WGSL kernels are tested against): plain loops in
 * float64, PyTorch semantics (torch.nn.BatchNorm2d, `F.batch_norm`). Per channel c over the
 * m = N·H·W values of an NCHW tensor:
 *   training: mean, biased var = Σ(x − mean)²/m (two passes), invStd = 1/√(var + eps),
 *             y = γ·(x − mean)·invStd + β; running_mean ← (1 − momentum)·running_mean + momentum·mean,
 *             running_var ← (1 − momentum)·running_var + momentum·var·m/(m − 1) (unbiased);
 *   eval:     the same y with mean = running_mean, invStd = 1/√(running_var + eps).
 * Backward (Ioffe & Szegedy 2015, §3), x̂ = (x − mean)·invStd: dBeta = Σ dy, dGamma = Σ dy·x̂,
 *   training dx = γ·invStd/m·(m·dy − Σ dy − x̂·Σ dy·x̂); eval dx = γ·invStd·dy.
 * Fused with a following ReLU (`relu: true`): the output is max(y, 0), and the backward, given that
 * output, first masks dy to 0 where it is ≤ 0 (ReLU's gradient on its output, as relu.ts).
 */

/** An NCHW tensor's shape as BatchNorm2d sees it: N samples of C channels of H×W. */
export interface BatchNormShape {
  n: number;
  c: number;
  h: number;
  w: number;
}

export interface BatchNormOptions {
  /** Added to the variance before the square root; PyTorch's default 1e-5. */
  eps?: number;
  /** Running-stat update weight; PyTorch's default 0.1. */
  momentum?: number;
  /** Apply ReLU to the output (BatchNorm2d → ReLU fused). */
  relu?: boolean;
}

export const BATCHNORM_EPS = 1e-5;
export const BATCHNORM_MOMENTUM = 0.1;

/** Throws unless `s` is a shape of positive integers. */
export function checkBatchNormShape(s: BatchNormShape): void {
  for (const key of ['n', 'c', 'h', 'w'] as const) {
    if (!Number.isInteger(s[key]) || s[key] < 1) throw new RangeError(`BatchNorm2d: shape.${key} = ${s[key]} is not a positive integer`);
  }
}

/** Calls `visit(c, i)` for every element index i of channel c, in memory order per channel. */
function forEachInChannel(s: BatchNormShape, c: number, visit: (i: number) => void): void {
  const hw = s.h * s.w;
  for (let n = 0; n < s.n; n++) {
    const start = (n * s.c + c) * hw;
    for (let p = 0; p < hw; p++) visit(start + p);
  }
}

/** y = γ·(x − mean)·invStd + β per channel, then max(y, 0) when `relu`. */
function normalizeRef(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, mean: ArrayLike<number>, invStd: ArrayLike<number>, s: BatchNormShape, relu = false): Float64Array {
  const y = new Float64Array(s.n * s.c * s.h * s.w);
  for (let c = 0; c < s.c; c++) {
    const mu = mean[c] as number;
    const a = (gamma[c] as number) * (invStd[c] as number);
    const b = beta[c] as number;
    forEachInChannel(s, c, (i) => {
      const v = ((x[i] as number) - mu) * a + b;
      y[i] = relu && v < 0 ? 0 : v;
    });
  }
  return y;
}

/** Training-mode forward; returns y, the saved statistics and the UPDATED running stats (inputs untouched). */
export function batchNorm2dForwardTrainRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  s: BatchNormShape,
  opts: BatchNormOptions = {},
): { y: Float64Array; mean: Float64Array; invStd: Float64Array; runningMean: Float64Array; runningVar: Float64Array } {
  checkBatchNormShape(s);
  const eps = opts.eps ?? BATCHNORM_EPS;
  const momentum = opts.momentum ?? BATCHNORM_MOMENTUM;
  const m = s.n * s.h * s.w;
  if (m < 2) throw new RangeError(`BatchNorm2d training needs more than one value per channel (N·H·W = ${m})`);
  const mean = new Float64Array(s.c);
  const invStd = new Float64Array(s.c);
  const newMean = new Float64Array(s.c);
  const newVar = new Float64Array(s.c);
  for (let c = 0; c < s.c; c++) {
    let sum = 0;
    forEachInChannel(s, c, (i) => {
      sum += x[i] as number;
    });
    const mu = sum / m;
    let m2 = 0;
    forEachInChannel(s, c, (i) => {
      m2 += ((x[i] as number) - mu) ** 2;
    });
    mean[c] = mu;
    invStd[c] = 1 / Math.sqrt(m2 / m + eps);
    newMean[c] = (1 - momentum) * (runningMean[c] as number) + momentum * mu;
    newVar[c] = (1 - momentum) * (runningVar[c] as number) + momentum * (m2 / (m - 1));
  }
  return { y: normalizeRef(x, gamma, beta, mean, invStd, s, opts.relu), mean, invStd, runningMean: newMean, runningVar: newVar };
}

/** mean = running_mean, invStd = 1/√(running_var + eps): the statistics eval mode normalises with. */
export function batchNorm2dEvalStatsRef(runningMean: ArrayLike<number>, runningVar: ArrayLike<number>, c: number, eps = BATCHNORM_EPS): { mean: Float64Array; invStd: Float64Array } {
  const mean = new Float64Array(c);
  const invStd = new Float64Array(c);
  for (let k = 0; k < c; k++) {
    mean[k] = runningMean[k] as number;
    invStd[k] = 1 / Math.sqrt((runningVar[k] as number) + eps);
  }
  return { mean, invStd };
}

/** Eval-mode forward with the running statistics. */
export function batchNorm2dForwardEvalRef(
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  runningMean: ArrayLike<number>,
  runningVar: ArrayLike<number>,
  s: BatchNormShape,
  opts: Pick<BatchNormOptions, 'eps' | 'relu'> = {},
): Float64Array {
  checkBatchNormShape(s);
  const { mean, invStd } = batchNorm2dEvalStatsRef(runningMean, runningVar, s.c, opts.eps);
  return normalizeRef(x, gamma, beta, mean, invStd, s, opts.relu);
}

/**
 * dx, dGamma, dBeta given dy and the statistics the forward normalised with; with `reluOutput`
 * (a fused forward's output) dy is the gradient after the ReLU and is masked by reluOutput > 0.
 */
export function batchNorm2dBackwardRef(
  dyIn: ArrayLike<number>,
  x: ArrayLike<number>,
  gamma: ArrayLike<number>,
  mean: ArrayLike<number>,
  invStd: ArrayLike<number>,
  s: BatchNormShape,
  training: boolean,
  reluOutput: ArrayLike<number> | null = null,
): { dx: Float64Array; dGamma: Float64Array; dBeta: Float64Array } {
  checkBatchNormShape(s);
  const dy = reluOutput ? Float64Array.from(dyIn, (g, i) => ((reluOutput[i] as number) > 0 ? g : 0)) : dyIn;
  const m = s.n * s.h * s.w;
  const dx = new Float64Array(s.n * s.c * s.h * s.w);
  const dGamma = new Float64Array(s.c);
  const dBeta = new Float64Array(s.c);
  for (let c = 0; c < s.c; c++) {
    const mu = mean[c] as number;
    const r = invStd[c] as number;
    let sumDy = 0;
    let sumDyXhat = 0;
    forEachInChannel(s, c, (i) => {
      sumDy += dy[i] as number;
      sumDyXhat += (dy[i] as number) * ((x[i] as number) - mu) * r;
    });
    dBeta[c] = sumDy;
    dGamma[c] = sumDyXhat;
    const k = (gamma[c] as number) * r;
    forEachInChannel(s, c, (i) => {
      const g = dy[i] as number;
      dx[i] = training ? (k / m) * (m * g - sumDy - ((x[i] as number) - mu) * r * sumDyXhat) : k * g;
    });
  }
  return { dx, dGamma, dBeta };
}
