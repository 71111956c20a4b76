/**
 * conv2d backward-weight (dW) and backward-bias (db) on WebGPU, NCHW activations, OIHW weights.
 *
 *   dW[o,c,ky,kx] = Σ_n Σ_i Σ_j dy[n,o,i,j] · x[n,c,i·s+ky−p, j·s+kx−p]   (zero outside x)
 *   db[o]         = Σ_n Σ_i Σ_j dy[n,o,i,j]
 *
 * dW is a GEMM dyᵀ·im2col(x) whose reduction runs over every pixel of the batch. Each kernel
 * (wgsl/conv2d_dw_*.wgsl; grid and partial sums described in conv2d_dw_common.wgsl) splits that
 * reduction over streams of pixel tasks, each writing its own partial dW;
 * wgsl/conv2d_dw_reduce.wgsl adds the partials in a fixed order, batch chunk after batch chunk.
 * No atomics: the same inputs give the same bits. Two families have their own launchers, in the
 * same split-K form: the register-blocked GEMMs (conv2d_gemm_rb.ts) and '3x3_sg16', the 3×3 kernel
 * for CPU adapters with subgroups (conv2d_dw_3x3_sg.ts).
 * CPU references: conv2dBackwardWeightRef / conv2dBackwardBiasRef in conv2d_ref.ts.
 */
import { conv2dOutputSize, validateConv2dShape, type Conv2dShape } from './conv2d_shape.ts';
import { conv2dBackwardWeightGemmRb, isGemmRbVariant, type GemmRbVariant } from './conv2d_gemm_rb.ts';
import { hasSubgroupsOf8 } from './conv2d_direct.ts';
import { isCpuAdapter } from './conv2d_forward.ts';
import { conv2dBackwardWeight3x3Sg, dw3x3SgSupports, isDw3x3SgVariant, type Conv2dDw3x3SgVariant } from './conv2d_dw_3x3_sg.ts';
import { defineKernel, flatWorkgroups, Uniforms, type KernelSpec } from './kernel.ts';
import { BindingLimitError, type Binding, type Runtime } from './runtime.ts';

/** The dW kernels, fastest first where several apply; `general` handles every shape. */
export const CONV2D_WEIGHT_GRAD_VARIANTS = ['3x3s1p1', '2x2s2', '1x1', 'general', 'gemm_rb128', 'gemm_rb64', 'gemm_rb_n32', '3x3_sg16'] as const;
export type Conv2dWeightGradVariant = (typeof CONV2D_WEIGHT_GRAD_VARIANTS)[number];

export interface Conv2dWeightGradOptions {
  /** Force a kernel (tests, bench); it must support the shape. Default: `rt.kernels`, else chooseConv2dWeightGradVariant. */
  variant?: Conv2dWeightGradVariant;
}

const include = ['conv2d_dw_common'];
const dwBindings = ['read', 'read', 'write'] as const;
const dwKernel = (name: string, shader: string, defines?: Record<string, number>) =>
  defineKernel({ name, shader, include, bindings: dwBindings, uniforms: true, defines });

// Output × input channels per invocation (the kernels' {{CO}}, {{CI}}); picked on lavapipe.
const TILE_2X2 = { CO: 8, CI: 2 };
const TILE_1X1 = { CO: 4, CI: 8 };
const TILE_1X1_NARROW = { CO: 1, CI: 8 };
const TILE_GENERAL = { CO: 8 };
const kernel3x3 = dwKernel('conv2d_dw_3x3s1p1', 'conv2d_dw_3x3');
const kernel2x2 = dwKernel('conv2d_dw_2x2s2', 'conv2d_dw_2x2s2', TILE_2X2);
const kernel1x1 = dwKernel('conv2d_dw_1x1', 'conv2d_dw_1x1', TILE_1X1);
const kernel1x1Narrow = dwKernel('conv2d_dw_1x1_narrow', 'conv2d_dw_1x1', TILE_1X1_NARROW);
const kernelGeneral = dwKernel('conv2d_dw_general', 'conv2d_dw_general', TILE_GENERAL);
const reduceKernel = defineKernel({ name: 'conv2d_dw_reduce', shader: 'conv2d_dw_reduce', bindings: ['read', 'write'], uniforms: true });
const dbKernel = defineKernel({ name: 'conv2d_db', shader: 'conv2d_db', bindings: ['read', 'write'], uniforms: true });

const REDUCE_WG = 64;
const DB_PIXELS_PER_SLICE = 4096;
const PARTIAL_BYTES_CAP = 64 << 20;

/** How one variant covers a shape: its kernel, the weight blocks of its grid, its pixel tasks. */
interface VariantRule {
  supports(s: Conv2dShape): boolean;
  kernel(s: Conv2dShape): Readonly<KernelSpec>;
  /** Weight blocks, 8 per workgroup (its rows). */
  pairs(s: Conv2dShape): number;
  /** Output rows per task, or 0 when a task is one pixel of every image (1×1 kernel). */
  rowBlock: number;
}

const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
const is = (s: Conv2dShape, k: number, stride: number, pad: number) => s.kh === k && s.kw === k && s.stride === stride && s.pad === pad;
const tile1x1 = (s: Conv2dShape) => (s.cOut < TILE_1X1.CO ? TILE_1X1_NARROW : TILE_1X1);

/** The register-blocked split-K GEMMs (conv2d_gemm_rb.ts) and the subgroup 3×3 kernel (conv2d_dw_3x3_sg.ts) have their own launchers. */
type DirectDwVariant = Exclude<Conv2dWeightGradVariant, GemmRbVariant | Conv2dDw3x3SgVariant>;
const isDirect = (v: Conv2dWeightGradVariant): v is DirectDwVariant => !isGemmRbVariant(v) && !isDw3x3SgVariant(v);
const RULES: { [K in DirectDwVariant]: VariantRule } = {
  '3x3s1p1': { supports: (s) => is(s, 3, 1, 1), kernel: () => kernel3x3, pairs: (s) => s.cIn * ceilDiv(s.cOut, 8), rowBlock: 16 },
  '2x2s2': {
    supports: (s) => is(s, 2, 2, 0),
    kernel: () => kernel2x2,
    pairs: (s) => ceilDiv(s.cIn, TILE_2X2.CI) * ceilDiv(s.cOut, TILE_2X2.CO),
    rowBlock: 16,
  },
  '1x1': {
    supports: (s) => is(s, 1, 1, 0),
    kernel: (s) => (tile1x1(s) === TILE_1X1 ? kernel1x1 : kernel1x1Narrow),
    pairs: (s) => ceilDiv(s.cIn, tile1x1(s).CI) * ceilDiv(s.cOut, tile1x1(s).CO),
    rowBlock: 0,
  },
  general: {
    supports: () => true,
    kernel: () => kernelGeneral,
    pairs: (s) => s.cIn * ceilDiv(s.cOut, TILE_GENERAL.CO) * ceilDiv(s.kh * s.kw, 4),
    rowBlock: 16,
  },
};

/** Whether `variant` computes dW for shape `s`. */
export function conv2dWeightGradSupports(variant: Conv2dWeightGradVariant, s: Conv2dShape): boolean {
  if (isDw3x3SgVariant(variant)) return dw3x3SgSupports(s);
  return isGemmRbVariant(variant) || RULES[variant].supports(s);
}

/**
 * The heuristic dW kernel for `s`, used unless `rt.kernels` (kernel_choices.ts, filled by autotune.ts
 * or a file) names another. The specialised kernels won on lavapipe (bench/conv2d_weight_grad.ts);
 * on CPU adapters with subgroups the wide 3×3 layers take '3x3_sg16'; autotune measures the others.
 */
export function chooseConv2dWeightGradVariant(rt: Runtime, s: Conv2dShape): Conv2dWeightGradVariant {
  // lavapipe, '3x3_sg16' against '3x3s1p1' (bench/conv2d_3x3_ab.ts OPS=dw): see BENCHMARKS.md. Only
  // where measured: ≥ 16 channels in and out, ≥ 64², rows read as vec4.
  if (dw3x3SgSupports(s) && Math.min(s.cIn, s.cOut) >= 16 && s.w >= 64 && s.w % 4 === 0 && isCpuAdapter(rt) && hasSubgroupsOf8(rt)) return '3x3_sg16';
  return CONV2D_WEIGHT_GRAD_VARIANTS.find((v) => isDirect(v) && RULES[v].supports(s)) ?? 'general';
}

/** Workgroups wanted in flight: a CPU driver needs a few per core, a GPU thousands. */
function targetWorkgroups(rt: Runtime): number {
  return isCpuAdapter(rt) ? 128 : 4096;
}

/** One tensor split along the batch: its buffer and the f32 elements of one batch item. */
interface BatchTensor {
  name: string;
  buffer: GPUBuffer;
  itemElements: number;
}

/** A run of batch items [start, start + count) and, per tensor, its binding and element base. */
export interface BatchChunk {
  start: number;
  count: number;
  bindings: Binding[];
  bases: number[];
}

/**
 * Splits a batch of `n` items into chunks whose byte range in every tensor fits one storage
 * binding. Bindings start at the 256-byte boundary at or below the chunk's first element; the
 * kernel adds `bases[i]` (< 64 elements). Throws a BindingLimitError when one item does not fit.
 */
export function batchChunks(rt: Runtime, n: number, tensors: readonly BatchTensor[]): BatchChunk[] {
  const maxElements = Math.floor(rt.maxBindingBytes / 4);
  for (const t of tensors) rt.assertBindable(`${t.name} (one batch item)`, t.itemElements * 4);
  const chunks: BatchChunk[] = [];
  for (let start = 0; start < n; ) {
    const firsts = tensors.map((t) => start * t.itemElements);
    const bases = firsts.map((first) => first % 64);
    const fit = Math.min(n - start, ...tensors.map((t, i) => Math.floor((maxElements - (bases[i] as number)) / t.itemElements)));
    if (fit < 1) {
      const t = tensors.find((u, i) => ((bases[i] as number) + u.itemElements) > maxElements) as BatchTensor;
      throw new BindingLimitError(`${t.name} (one batch item at a 256-byte aligned offset)`, (t.itemElements + 63) * 4, rt.maxBindingBytes);
    }
    const bindings = tensors.map((t, i) => {
      const base = bases[i] as number;
      return { buffer: t.buffer, offset: ((firsts[i] as number) - base) * 4, size: (base + fit * t.itemElements) * 4 };
    });
    chunks.push({ start, count: fit, bindings, bases });
    start += fit;
  }
  return chunks;
}

/** Adds `streams` partials of `count` values into `out` (or overwrites it when !accumulate). */
function reducePartials(rt: Runtime, partial: GPUBuffer, out: GPUBuffer, count: number, streams: number, accumulate: boolean): void {
  rt.dispatch(reduceKernel, {
    bindings: [{ buffer: partial, size: streams * count * 4 }, { buffer: out, size: count * 4 }],
    uniforms: new Uniforms().u32(count, streams, accumulate ? 1 : 0, 0),
    workgroups: flatWorkgroups(ceilDiv(count, REDUCE_WG), rt.maxWorkgroupsPerDimension),
  });
}

/**
 * dW = ∂L/∂W of a convolution, given its input `x` [n, cIn, h, w] and `dy` [n, cOut, ho, wo].
 * Returns a new buffer [cOut, cIn, kh, kw] (the caller releases it). Batches too large for one
 * binding are processed in chunks whose partial sums are added in a fixed order.
 */
export function conv2dBackwardWeight(rt: Runtime, x: GPUBuffer, dy: GPUBuffer, s: Conv2dShape, options: Conv2dWeightGradOptions = {}): GPUBuffer {
  validateConv2dShape(s);
  const variant = options.variant ?? rt.kernels.choose('conv2d.dw', s, () => chooseConv2dWeightGradVariant(rt, s));
  if (isGemmRbVariant(variant)) return conv2dBackwardWeightGemmRb(rt, x, dy, s, variant);
  if (isDw3x3SgVariant(variant)) return conv2dBackwardWeight3x3Sg(rt, x, dy, s, variant);
  const rule = RULES[variant];
  if (!rule.supports(s)) throw new Error(`conv2dBackwardWeight: variant '${variant}' does not support ${s.kh}×${s.kw} stride ${s.stride} pad ${s.pad}`);
  const { ho, wo } = conv2dOutputSize(s);
  const weights = s.cOut * s.cIn * s.kh * s.kw;
  rt.assertBindable('conv2d dW', weights * 4);
  rt.assertBindable('conv2d dW partial sums (8 streams)', 8 * weights * 4);
  const chunks = batchChunks(rt, s.n, [
    { name: 'conv2d dW input x', buffer: x, itemElements: s.cIn * s.h * s.w },
    { name: 'conv2d dW dy', buffer: dy, itemElements: s.cOut * ho * wo },
  ]);
  const blocksPerImage = rule.rowBlock ? ceilDiv(ho, rule.rowBlock) : 1;
  const tasksOf = (count: number) => (rule.rowBlock ? count * blocksPerImage * wo : ho * wo);
  const pairs = rule.pairs(s);
  const pairBlocks = ceilDiv(pairs, 8);
  const groups = Math.max(1, Math.min(
    ceilDiv(targetWorkgroups(rt), pairBlocks),
    ceilDiv(tasksOf((chunks[0] as BatchChunk).count), 8),
    Math.floor(Math.min(rt.maxBindingBytes, PARTIAL_BYTES_CAP) / (8 * weights * 4)),
    rt.maxWorkgroupsPerDimension,
  ));
  const streams = 8 * groups;
  const perGroup = (count: number) => ceilDiv(tasksOf(count), streams);
  const [gx, gy] = flatWorkgroups(pairBlocks, rt.maxWorkgroupsPerDimension);
  const kernel = rule.kernel(s);
  const partial = rt.alloc(streams * weights * 4, 'conv2d dW partials');
  const dW = rt.alloc(weights * 4, 'conv2d dW');
  chunks.forEach((chunk, index) => {
    const uniforms = new Uniforms()
      .u32(chunk.count, s.cIn, s.h, s.w, s.cOut, ho, wo, s.stride, s.pad, s.kh, s.kw)
      .u32(chunk.bases[0] as number, chunk.bases[1] as number, rule.rowBlock, blocksPerImage, tasksOf(chunk.count))
      .u32(streams, weights, pairs, perGroup(chunk.count));
    rt.dispatch(kernel, {
      bindings: [...chunk.bindings, { buffer: partial, size: streams * weights * 4 }],
      uniforms,
      workgroups: [gx, gy, groups],
    });
    reducePartials(rt, partial, dW, weights, streams, index > 0);
  });
  rt.release(partial);
  return dW;
}

/**
 * db = ∂L/∂b: the sum of `dy` [n, cOut, ho, wo] over batch and pixels, per output channel.
 * Returns a new buffer [cOut] (the caller releases it). Deterministic two-stage sum.
 */
export function conv2dBackwardBias(rt: Runtime, dy: GPUBuffer, s: Conv2dShape): GPUBuffer {
  validateConv2dShape(s);
  const { ho, wo } = conv2dOutputSize(s);
  const hw = ho * wo;
  const chunks = batchChunks(rt, s.n, [{ name: 'conv2d db dy', buffer: dy, itemElements: s.cOut * hw }]);
  const slices = ceilDiv(hw, DB_PIXELS_PER_SLICE);
  const partial = rt.alloc(slices * s.cOut * 4, 'conv2d db partials');
  const db = rt.alloc(s.cOut * 4, 'conv2d db');
  chunks.forEach((chunk, index) => {
    rt.dispatch(dbKernel, {
      bindings: [chunk.bindings[0] as Binding, { buffer: partial, size: slices * s.cOut * 4 }],
      uniforms: new Uniforms().u32(chunk.count, s.cOut, hw, chunk.bases[0] as number, DB_PIXELS_PER_SLICE),
      workgroups: [s.cOut, slices],
    });
    reducePartials(rt, partial, db, s.cOut, slices, index > 0);
  });
  rt.release(partial);
  return db;
}
