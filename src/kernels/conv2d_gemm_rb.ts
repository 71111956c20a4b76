/**
 * The register-blocked implicit-GEMM convolution (wgsl/conv2d_gemm_rb.wgsl) for discrete GPUs:
 * forward, data gradient and weight gradient (split-K over N·Ho·Wo, partial sums added in a fixed
 * order by conv2d_dw_reduce — no atomics), each in three tile shapes, all as autotune candidates
 * (variants 'gemm_rb128', 'gemm_rb64', 'gemm_rb_n32' of conv2d.forward, conv2d.dx and conv2d.dw).
 * Every shape is accepted; which tile wins is the autotuner's to measure on the adapter.
 *
 * Tiles: 128 × 128 with 8 × 8 accumulators per invocation (llama.cpp's conv2d_mm shape: 16 KiB of
 * workgroup memory, 256 invocations), 64 × 64 with 4 × 4 (layers with few output tiles), and
 * 128 × 32 with 8 × 2 (few output channels, e.g. the first layers' 16 and 32).
 */
import { batchChunks, itemsBinding, overBatchChunks } from './conv2d_direct.ts';
import type { Conv2dShape } from './conv2d_shape.ts';
import { conv2dOutputSize } from './conv2d_shape.ts';
import { defineKernel, flatWorkgroups, Uniforms, type KernelSpec } from './kernel.ts';
import type { Runtime } from './runtime.ts';

export const GEMM_RB_VARIANTS = ['gemm_rb128', 'gemm_rb64', 'gemm_rb_n32'] as const;
export type GemmRbVariant = (typeof GEMM_RB_VARIANTS)[number];

const TILES: Record<GemmRbVariant, { TM: number; TN: number; RM: number; RN: number }> = {
  gemm_rb128: { TM: 128, TN: 128, RM: 8, RN: 8 },
  gemm_rb64: { TM: 64, TN: 64, RM: 4, RN: 4 },
  gemm_rb_n32: { TM: 128, TN: 32, RM: 8, RN: 2 },
};

type Mode = 0 | 1 | 2;
const kernelFor = (mode: Mode, variant: GemmRbVariant) =>
  defineKernel({
    name: `conv2d_${['fwd', 'dx', 'dw'][mode]}_${variant}`,
    shader: 'conv2d_gemm_rb',
    bindings: ['read', 'read', 'read', 'write'],
    uniforms: true,
    defines: { MODE: mode, ...TILES[variant] },
  });
const KERNELS = Object.fromEntries(([0, 1, 2] as Mode[]).map((mode) => [mode, Object.fromEntries(GEMM_RB_VARIANTS.map((v) => [v, kernelFor(mode, v)]))])) as Record<Mode, Record<GemmRbVariant, Readonly<KernelSpec>>>;

const reduceKernel = defineKernel({ name: 'conv2d_dw_reduce', shader: 'conv2d_dw_reduce', bindings: ['read', 'write'], uniforms: true });

export function isGemmRbVariant(v: string): v is GemmRbVariant {
  return (GEMM_RB_VARIANTS as readonly string[]).includes(v);
}

function params(s: Conv2dShape, ho: number, wo: number, srcBase: number, dstBase: number, rows: number, cols: number, red: number, hasBias: boolean, perSplit = 0): Uniforms {
  return new Uniforms()
    .u32(s.cIn, s.h, s.w, s.cOut, ho, wo, s.kh, s.kw, s.stride, s.pad, srcBase, dstBase, rows, cols, red, hasBias ? 1 : 0)
    .u32(perSplit, 0, 0, 0);
}

/** y = conv2d(x, w) + b with tile `variant`; a new buffer [n, cOut, ho, wo]. */
export function conv2dForwardGemmRb(rt: Runtime, x: GPUBuffer, w: GPUBuffer, b: GPUBuffer | null, s: Conv2dShape, variant: GemmRbVariant): GPUBuffer {
  const { ho, wo } = conv2dOutputSize(s);
  const tile = TILES[variant];
  const xFloats = s.cIn * s.h * s.w;
  const yFloats = s.cOut * ho * wo;
  const k = s.cIn * s.kh * s.kw;
  rt.assertBindable('conv2d weight w', s.cOut * k * 4);
  const input = { buffer: x, itemFloats: xFloats, what: 'conv2d input x' };
  return overBatchChunks(rt, s.n, input, { itemFloats: yFloats, what: 'conv2d output y' }, (xb, yb, chunk) => {
    const m = chunk.count * ho * wo;
    const [gx, gy] = flatWorkgroups(Math.ceil(m / tile.TM), rt.maxWorkgroupsPerDimension);
    rt.dispatch(KERNELS[0][variant], {
      bindings: [xb.binding, w, b ?? w, yb.binding],
      uniforms: params(s, ho, wo, xb.base, yb.base, m, s.cOut, k, b !== null),
      workgroups: [gx, gy, Math.ceil(s.cOut / tile.TN)],
    });
  });
}

/** dx of y = conv2d(x, w) from dy, gather form, tile `variant`; a new buffer [n, cIn, h, w]. */
export function conv2dBackwardDataGemmRb(rt: Runtime, dy: GPUBuffer, w: GPUBuffer, s: Conv2dShape, variant: GemmRbVariant): GPUBuffer {
  const { ho, wo } = conv2dOutputSize(s);
  const tile = TILES[variant];
  const dyFloats = s.cOut * ho * wo;
  const dxFloats = s.cIn * s.h * s.w;
  const k = s.cOut * s.kh * s.kw;
  rt.assertBindable('conv2d weight w', s.cIn * k * 4);
  const input = { buffer: dy, itemFloats: dyFloats, what: 'conv2d output gradient dy' };
  return overBatchChunks(rt, s.n, input, { itemFloats: dxFloats, what: 'conv2d input gradient dx' }, (dyb, dxb, chunk) => {
    const m = chunk.count * s.h * s.w;
    const [gx, gy] = flatWorkgroups(Math.ceil(m / tile.TM), rt.maxWorkgroupsPerDimension);
    rt.dispatch(KERNELS[1][variant], {
      bindings: [dyb.binding, w, w, dxb.binding],
      uniforms: params(s, ho, wo, dyb.base, dxb.base, m, s.cIn, k, false),
      workgroups: [gx, gy, Math.ceil(s.cIn / tile.TN)],
    });
  });
}

/** Partial sums kept at most this large; the split count shrinks to fit. */
const PARTIAL_BYTES_CAP = 64 << 20;
/** Workgroups wanted per dispatch (a discrete GPU's SMs several times over). */
const TARGET_WORKGROUPS = 1024;
/** Fewest output pixels one split sums (a split too short spends its time loading tiles). */
const MIN_PIXELS_PER_SPLIT = 512;

/**
 * The splits of N·Ho·Wo for the dW GEMM of `pixels` output pixels with `tiles` output tiles: enough
 * workgroups to fill a GPU, each split a multiple of 16 pixels and at least MIN_PIXELS_PER_SPLIT,
 * the partial sums under PARTIAL_BYTES_CAP. A function of the shape alone (deterministic sums).
 */
export function dwSplits(pixels: number, tiles: number, weights: number): { splits: number; perSplit: number } {
  const byWork = Math.ceil(TARGET_WORKGROUPS / tiles);
  const byLength = Math.max(1, Math.floor(pixels / MIN_PIXELS_PER_SPLIT));
  const byMemory = Math.max(1, Math.floor(PARTIAL_BYTES_CAP / (weights * 4)));
  let splits = Math.max(1, Math.min(byWork, byLength, byMemory, 65535));
  const perSplit = Math.ceil(Math.ceil(pixels / splits) / 16) * 16;
  splits = Math.ceil(pixels / perSplit);
  return { splits, perSplit };
}

/** dW of y = conv2d(x, w) from x and dy, split-K, tile `variant`; a new buffer [cOut, cIn, kh, kw]. */
export function conv2dBackwardWeightGemmRb(rt: Runtime, x: GPUBuffer, dy: GPUBuffer, s: Conv2dShape, variant: GemmRbVariant): GPUBuffer {
  const { ho, wo } = conv2dOutputSize(s);
  const tile = TILES[variant];
  const xFloats = s.cIn * s.h * s.w;
  const dyFloats = s.cOut * ho * wo;
  const k = s.cIn * s.kh * s.kw;
  const weights = s.cOut * k;
  rt.assertBindable('conv2d dW', weights * 4);
  const chunks = batchChunks(rt, s.n, [
    { what: 'conv2d dW input x', itemFloats: xFloats },
    { what: 'conv2d dW dy', itemFloats: dyFloats },
  ]);
  const tiles = Math.ceil(s.cOut / tile.TM) * Math.ceil(k / tile.TN);
  const first = dwSplits((chunks[0] as { count: number }).count * ho * wo, tiles, weights);
  const partial = rt.alloc(first.splits * weights * 4, 'conv2d dW partials');
  const dW = rt.alloc(weights * 4, 'conv2d dW');
  chunks.forEach((chunk, index) => {
    const xb = itemsBinding(x, xFloats, chunk);
    const dyb = itemsBinding(dy, dyFloats, chunk);
    const pixels = chunk.count * ho * wo;
    const { splits, perSplit } = dwSplits(pixels, tiles, weights);
    rt.dispatch(KERNELS[2][variant], {
      bindings: [xb.binding, dyb.binding, dyb.binding, { buffer: partial, size: splits * weights * 4 }],
      uniforms: params(s, ho, wo, xb.base, dyb.base, s.cOut, k, pixels, false, perSplit),
      workgroups: [Math.ceil(s.cOut / tile.TM), Math.ceil(k / tile.TN), splits],
    });
    rt.dispatch(reduceKernel, {
      bindings: [{ buffer: partial, size: splits * weights * 4 }, { buffer: dW, size: weights * 4 }],
      uniforms: new Uniforms().u32(weights, splits, index > 0 ? 1 : 0, 0),
      workgroups: flatWorkgroups(Math.ceil(weights / 64), rt.maxWorkgroupsPerDimension),
    });
  });
  rt.release(partial);
  return dW;
}
