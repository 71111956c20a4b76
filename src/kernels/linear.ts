/**
 * Linear layer y = x·Wᵀ + b (PyTorch nn.Linear, weights [out, in]) and its three gradients, as
 * one strided GEMM in two versions — shared-memory tiles (wgsl/linear_gemm.wgsl) and barrier-free
 * lanes over columns (wgsl/linear_gemm_cols.wgsl) — plus a fixed-order split-K / bias-gradient
 * pass (wgsl/linear_reduce.wgsl). `rt.kernels` picks the version per op and shape, else
 * `chooseLinearVariant` (the heuristic). Maths: dx = dy·W, dW = dyᵀ·x, db = Σ_n dy (the matrix calculus
 * of y = x·Wᵀ + b). Long reductions (4096 → 4) are split over k into slices summed in a fixed order.
 * Every tensor must fit one storage binding; the launchers refuse larger ones by name.
 */
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';
import { elementRange } from './elementwise.ts';
import type { LinearShape } from './linear_shape.ts';

export type { LinearShape } from './linear_shape.ts';

/** GEMM versions: `tiled` (shared-memory tiles, 2×2 outputs per lane), `cols` (lanes over columns, 8 rows per lane). */
export const LINEAR_GEMM_VARIANTS = ['tiled', 'cols'] as const;
export type LinearGemmVariant = (typeof LINEAR_GEMM_VARIANTS)[number];

const TM = 16;
const TN = 16;
const TK = 32;
const THREADS = (TM / 2) * (TN / 2);
const COLS_WG = 64;
const COLS_RM = 8;
/** Output tile (rows × columns) and k granularity of each version. */
const TILES: Record<LinearGemmVariant, { rows: number; cols: number; k: number }> = {
  tiled: { rows: TM, cols: TN, k: TK },
  cols: { rows: COLS_RM, cols: COLS_WG, k: 8 },
};
const REDUCE_WG = 64;
/** Split the reduction until about this many workgroups run, each over at least MIN_SPLIT_TILES k-tiles. */
const TARGET_WORKGROUPS = 32;
const MIN_SPLIT_TILES = 4;

const gemmKernel = defineKernel({
  name: 'linear_gemm',
  shader: 'linear_gemm',
  bindings: ['read', 'read', 'read', 'write'],
  uniforms: true,
  constants: { TM, TN, TK, THREADS },
});
const gemmColsKernel = defineKernel({
  name: 'linear_gemm_cols',
  shader: 'linear_gemm_cols',
  bindings: ['read', 'read', 'read', 'write'],
  uniforms: true,
  constants: { WG: COLS_WG },
});
const sumSplitsKernel = defineKernel({
  name: 'linear_sum_splits',
  shader: 'linear_reduce',
  entryPoint: 'sum_splits',
  bindings: ['read', 'read', 'write'],
  uniforms: true,
  constants: { WG: REDUCE_WG },
});
const biasGradKernel = defineKernel({
  name: 'linear_bias_grad',
  shader: 'linear_reduce',
  entryPoint: 'bias_grad',
  bindings: ['read', 'read', 'write'],
  uniforms: true,
  constants: { WG: REDUCE_WG },
});

interface Gemm {
  m: number;
  n: number;
  k: number;
  a: GPUBuffer;
  aStrides: [number, number];
  b: GPUBuffer;
  bStrides: [number, number];
  /** Elements of a and b bound (their sizes as tensors; the buffers may be larger). */
  aSize: number;
  bSize: number;
  bias: GPUBuffer | null;
  label: string;
}

/**
 * The version used for a product: `cols` when B's columns are contiguous (dx, dW) or there are
 * enough columns to fill its 64 lanes; `tiled` for narrow forwards such as 4096 → 4. Measured on
 * lavapipe with bench/dense.ts (n=16: 256→128 fwd+bwd 1.4 ms all-cols vs 4.3 ms all-tiled;
 * 4096→4 forward tiled beats cols).
 */
function chooseVariant(n: number, bStrides: [number, number]): LinearGemmVariant {
  return bStrides[1] === 1 || n >= COLS_WG / 2 ? 'cols' : 'tiled';
}

/** The heuristic version of one of the three products of a linear layer of shape `s` (see chooseVariant). */
export function chooseLinearVariant(product: 'forward' | 'dx' | 'dw', s: LinearShape): LinearGemmVariant {
  if (product === 'forward') return chooseVariant(s.outFeatures, [1, s.inFeatures]);
  return chooseVariant(s.inFeatures, [s.inFeatures, 1]);
}

/** Number of k-slices for an M×N×K product: enough workgroups to keep the device busy. */
export function linearSplits(
  rt: Pick<Runtime, 'maxBindingBytes' | 'maxWorkgroupsPerDimension'>,
  m: number,
  n: number,
  k: number,
  variant: LinearGemmVariant = 'tiled',
): { splits: number; kSplit: number } {
  const tile = TILES[variant];
  const tiles = Math.ceil(m / tile.rows) * Math.ceil(n / tile.cols);
  const kTiles = Math.ceil(k / tile.k);
  const fit = Math.max(1, Math.floor(rt.maxBindingBytes / (m * n * 4)));
  let splits = Math.min(Math.ceil(TARGET_WORKGROUPS / tiles), Math.floor(kTiles / MIN_SPLIT_TILES), fit, rt.maxWorkgroupsPerDimension);
  splits = Math.max(1, splits);
  const kSplit = Math.ceil(kTiles / splits) * tile.k;
  return { splits: Math.ceil(k / kSplit), kSplit };
}

function gemm(rt: Runtime, g: Gemm, variant: LinearGemmVariant): GPUBuffer {
  const { splits, kSplit } = linearSplits(rt, g.m, g.n, g.k, variant);
  const tile = TILES[variant];
  const grid = [Math.ceil(g.n / tile.cols), Math.ceil(g.m / tile.rows), splits] as const;
  if (grid[1] > rt.maxWorkgroupsPerDimension || grid[0] > rt.maxWorkgroupsPerDimension) {
    throw new RangeError(`${g.label}: a ${g.m}×${g.n} output needs more than ${rt.maxWorkgroupsPerDimension} tiles per dimension`);
  }
  const out = rt.alloc(g.m * g.n * 4, g.label);
  const partial = splits > 1 ? rt.alloc(splits * g.m * g.n * 4, `${g.label} split-k partials`) : out;
  const hasBias = g.bias !== null && splits === 1;
  const a = elementRange(g.a, 0, g.aSize);
  const bias = g.bias ? elementRange(g.bias, 0, g.n) : a;
  rt.dispatch(variant === 'tiled' ? gemmKernel : gemmColsKernel, {
    bindings: [a, elementRange(g.b, 0, g.bSize), bias, elementRange(partial, 0, splits * g.m * g.n)],
    uniforms: new Uniforms().u32(g.m, g.n, g.k, kSplit, ...g.aStrides, ...g.bStrides, hasBias ? 1 : 0),
    workgroups: grid,
  });
  if (splits > 1) {
    rt.dispatch(sumSplitsKernel, {
      bindings: [elementRange(partial, 0, splits * g.m * g.n), bias, elementRange(out, 0, g.m * g.n)],
      uniforms: new Uniforms().u32(g.m, g.n, splits, g.bias ? 1 : 0),
      workgroups: flatWorkgroups(Math.ceil((g.m * g.n) / REDUCE_WG), rt.maxWorkgroupsPerDimension),
    });
    rt.release(partial);
  }
  return out;
}

function checkShape(rt: Runtime, s: LinearShape, tensors: Record<string, number>): void {
  for (const [key, value] of Object.entries(s)) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`linear: ${key} must be a positive integer, got ${value}`);
  }
  for (const [what, elements] of Object.entries(tensors)) rt.assertBindable(what, elements * 4);
}

/** y[n, out] = x[n, in]·W[out, in]ᵀ + b[out] (b may be null). Returns a new buffer. `variant` forces a GEMM version (tests, bench). */
export function linearForward(rt: Runtime, x: GPUBuffer, w: GPUBuffer, b: GPUBuffer | null, s: LinearShape, variant?: LinearGemmVariant): GPUBuffer {
  const { n, inFeatures: fin, outFeatures: fout } = s;
  checkShape(rt, s, { 'linear input x': n * fin, 'linear weight W': fout * fin, 'linear output y': n * fout });
  const v = variant ?? rt.kernels.choose('linear.forward', s, () => chooseLinearVariant('forward', s));
  return gemm(rt, { m: n, n: fout, k: fin, a: x, aStrides: [fin, 1], aSize: n * fin, b: w, bStrides: [1, fin], bSize: fout * fin, bias: b, label: 'linear y' }, v);
}

/** dx[n, in] = dy[n, out]·W[out, in]. Returns a new buffer. */
export function linearBackwardData(rt: Runtime, dy: GPUBuffer, w: GPUBuffer, s: LinearShape, variant?: LinearGemmVariant): GPUBuffer {
  const { n, inFeatures: fin, outFeatures: fout } = s;
  checkShape(rt, s, { 'linear gradient dy': n * fout, 'linear weight W': fout * fin, 'linear gradient dx': n * fin });
  const v = variant ?? rt.kernels.choose('linear.dx', s, () => chooseLinearVariant('dx', s));
  return gemm(rt, { m: n, n: fin, k: fout, a: dy, aStrides: [fout, 1], aSize: n * fout, b: w, bStrides: [fin, 1], bSize: fout * fin, bias: null, label: 'linear dx' }, v);
}

/** dW[out, in] = dy[n, out]ᵀ·x[n, in]. Returns a new buffer. */
export function linearBackwardWeight(rt: Runtime, x: GPUBuffer, dy: GPUBuffer, s: LinearShape, variant?: LinearGemmVariant): GPUBuffer {
  const { n, inFeatures: fin, outFeatures: fout } = s;
  checkShape(rt, s, { 'linear input x': n * fin, 'linear gradient dy': n * fout, 'linear gradient dW': fout * fin });
  const v = variant ?? rt.kernels.choose('linear.dw', s, () => chooseLinearVariant('dw', s));
  return gemm(rt, { m: fout, n: fin, k: n, a: dy, aStrides: [1, fout], aSize: n * fout, b: x, bStrides: [fin, 1], bSize: n * fin, bias: null, label: 'linear dW' }, v);
}

/** db[out] = Σ_n dy[n, out], rows added in order. Returns a new buffer. */
export function linearBackwardBias(rt: Runtime, dy: GPUBuffer, s: LinearShape): GPUBuffer {
  checkShape(rt, s, { 'linear gradient dy': s.n * s.outFeatures });
  const db = rt.alloc(s.outFeatures * 4, 'linear db');
  rt.dispatch(biasGradKernel, {
    bindings: [elementRange(dy, 0, s.n * s.outFeatures), elementRange(dy, 0, s.n * s.outFeatures), elementRange(db, 0, s.outFeatures)],
    uniforms: new Uniforms().u32(s.n, s.outFeatures, 1, 0),
    workgroups: flatWorkgroups(Math.ceil(s.outFeatures / REDUCE_WG), rt.maxWorkgroupsPerDimension),
  });
  return db;
}

// ---- CPU references (float64) ------------------------------------------------------------------

/** y = x·Wᵀ + b in float64. */
export function linearForwardRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, s: LinearShape): Float64Array {
  const y = new Float64Array(s.n * s.outFeatures);
  for (let i = 0; i < s.n; i++) {
    for (let o = 0; o < s.outFeatures; o++) {
      let acc = b ? (b[o] as number) : 0;
      for (let k = 0; k < s.inFeatures; k++) acc += (x[i * s.inFeatures + k] as number) * (w[o * s.inFeatures + k] as number);
      y[i * s.outFeatures + o] = acc;
    }
  }
  return y;
}

/** dx = dy·W in float64. */
export function linearBackwardDataRef(dy: ArrayLike<number>, w: ArrayLike<number>, s: LinearShape): Float64Array {
  const dx = new Float64Array(s.n * s.inFeatures);
  for (let i = 0; i < s.n; i++) {
    for (let k = 0; k < s.inFeatures; k++) {
      let acc = 0;
      for (let o = 0; o < s.outFeatures; o++) acc += (dy[i * s.outFeatures + o] as number) * (w[o * s.inFeatures + k] as number);
      dx[i * s.inFeatures + k] = acc;
    }
  }
  return dx;
}

/** dW = dyᵀ·x in float64. */
export function linearBackwardWeightRef(x: ArrayLike<number>, dy: ArrayLike<number>, s: LinearShape): Float64Array {
  const dw = new Float64Array(s.outFeatures * s.inFeatures);
  for (let o = 0; o < s.outFeatures; o++) {
    for (let k = 0; k < s.inFeatures; k++) {
      let acc = 0;
      for (let i = 0; i < s.n; i++) acc += (dy[i * s.outFeatures + o] as number) * (x[i * s.inFeatures + k] as number);
      dw[o * s.inFeatures + k] = acc;
    }
  }
  return dw;
}

/** db = Σ_n dy in float64. */
export function linearBackwardBiasRef(dy: ArrayLike<number>, s: LinearShape): Float64Array {
  const db = new Float64Array(s.outFeatures);
  for (let i = 0; i < s.n; i++) {
    for (let o = 0; o < s.outFeatures; o++) db[o] = (db[o] as number) + (dy[i * s.outFeatures + o] as number);
  }
  return db;
}
