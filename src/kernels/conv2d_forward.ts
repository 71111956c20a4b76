/**
 * conv2d forward on WebGPU: the general implicit-GEMM kernel and the fast paths for the shapes of
 * the networks (3×3 s1 p1; 2×2 s2 p0 in two versions, the second sharing the input across lanes by
 * subgroupShuffle; 1×1), side by side, and the choice between them per shape and adapter (shared
 * with the data gradient). The kernels' shared machinery is conv2d_direct.ts. The maths is
 * conv2d_ref.ts (the spec, conv2dForwardRef); each wgsl/conv2d_fwd_*.wgsl header states its own
 * index formula.
 */
import type { Conv2dShape } from './conv2d_shape.ts';
import { conv2dOutputSize, validateConv2dShape } from './conv2d_shape.ts';
import { conv2dForward3x3Px } from './conv2d_3x3_px.ts';
import { conv2dForwardGemmRb } from './conv2d_gemm_rb.ts';
import { assertSubgroupsOf8, conv1x1Narrow, directConv, directKernels, hasSubgroupsOf8, overBatchChunks, subgroupKernels, subgroupLanes, subgroupSegments } from './conv2d_direct.ts';
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

/**
 * Kernel versions, each valid for the shapes `conv2dVariantApplies` accepts; `gemm` for all.
 * `2x2s2_sg` also needs the adapter's subgroups (`hasSubgroupsOf8`).
 */
export const CONV2D_FORWARD_VARIANTS = ['gemm', '3x3', '2x2s2', '2x2s2_sg', '1x1', '1x1_narrow', 'gemm_rb128', 'gemm_rb64', 'gemm_rb_n32', '3x3_px16'] as const;
export type Conv2dForwardVariant = (typeof CONV2D_FORWARD_VARIANTS)[number];

const gemmKernel = defineKernel({ name: 'conv2d_fwd_gemm', shader: 'conv2d_fwd_gemm', bindings: ['read', 'read', 'read', 'write'], uniforms: true });

/** True when `variant` (forward or data gradient: the same names) can run shape `s`. */
export function conv2dVariantApplies(variant: Conv2dForwardVariant, s: Conv2dShape): boolean {
  const k = (size: number, stride: number, pad: number) => s.kh === size && s.kw === size && s.stride === stride && s.pad === pad;
  switch (variant) {
    case 'gemm':
    case 'gemm_rb128': // the register-blocked GEMMs (conv2d_gemm_rb.ts): every shape
    case 'gemm_rb64':
    case 'gemm_rb_n32':
      return true;
    case '3x3':
    case '3x3_px16': // lanes over pixels (conv2d_3x3_px.ts)
      return k(3, 1, 1);
    case '2x2s2':
    case '2x2s2_sg':
      return k(2, 2, 0);
    case '1x1':
    case '1x1_narrow':
      return k(1, 1, 0);
    default:
      return variant satisfies never;
  }
}

/** CPU-like adapters (lavapipe, SwiftShader): gathers from uniform memory beat shared-memory tiles there. */
export function isCpuAdapter(rt: Runtime): boolean {
  const a = rt.adapter;
  return a.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(`${a.vendor} ${a.description} ${a.device} ${a.architecture}`);
}

/**
 * The heuristic kernel for a conv of shape `s` on this adapter, forward or data gradient (measured
 * with bench/conv2d_forward.ts): what a launch runs unless `rt.kernels` (kernel_choices.ts, filled by
 * autotune.ts or a file) names another for the shape. `reduceC` / `outC` are the channels summed
 * over and produced: cIn / cOut forward, cOut / cIn for the data gradient.
 */
export function chooseConv2dVariant(rt: Runtime, s: Conv2dShape, reduceC: number, outC: number, op: 'forward' | 'dx' = 'forward'): Conv2dForwardVariant {
  const pointwise = conv2dVariantApplies('1x1', s);
  if (!isCpuAdapter(rt)) return pointwise && outC <= 8 ? '1x1_narrow' : 'gemm';
  // lavapipe, 256→1 at 64² b8: forward '1x1' 7 ms vs narrow 11; data gradient narrow 14 ms vs '1x1' 30.
  if (pointwise) return reduceC <= 8 ? '1x1_narrow' : '1x1';
  // lavapipe, '3x3_px16' against '3x3' (GFLOP per CPU-second, b1, forward): 5.8 vs 2.3 at 256→256
  // 64², 6.8 vs 2.1 at 64→64 128², 3.6 vs 2.4 at 16→16 256², 4.0 vs 2.1 at 16→32 256²; dx 5.8 vs
  // 2.7 at 256→256 64² (bench/conv2d_3x3_ab.ts). Layers narrower than 16 channels or smaller than
  // 64² (the tiny and tile presets') were not measured: they keep '3x3'.
  if (conv2dVariantApplies('3x3', s)) return outC >= 16 && s.w >= 64 ? '3x3_px16' : '3x3';
  // lavapipe, '2x2s2_sg' against '2x2s2' (bench/conv2d_forward.ts, medians): forward 3.4× at 64→64
  // 128² b8, 3× at 32→32 256², 2.4× at 16→16 512², 1.35–2× on the tiny preset's b16 shapes (8→8 64²
  // … 16→16 8²). Data gradient: 1.2× at 64→64 128², 1.1× at 32→32 256², even at 16→16 512², slower
  // (0.6–0.9×) on the tiny shapes.
  if (conv2dVariantApplies('2x2s2', s)) return hasSubgroupsOf8(rt) && (op === 'forward' || outC >= 32) ? '2x2s2_sg' : '2x2s2';
  return 'gemm';
}

/** The heuristic forward kernel for a shape on this adapter. */
export function chooseConv2dForwardVariant(rt: Runtime, s: Conv2dShape): Conv2dForwardVariant {
  return chooseConv2dVariant(rt, s, s.cIn, s.cOut);
}

/**
 * y = conv2d(x, w) + b, NCHW / OIHW float32; b may be null. Returns a new buffer [n, cOut, ho, wo]
 * (the caller releases it). Batches larger than one binding run in chunks; a BindingLimitError
 * names the tensor when a single batch item is too big.
 */
export function conv2dForward(
  rt: Runtime,
  x: GPUBuffer,
  w: GPUBuffer,
  b: GPUBuffer | null,
  s: Conv2dShape,
  options: { variant?: Conv2dForwardVariant } = {},
): GPUBuffer {
  validateConv2dShape(s);
  const variant = options.variant ?? rt.kernels.choose('conv2d.forward', s, () => chooseConv2dForwardVariant(rt, s));
  if (!conv2dVariantApplies(variant, s)) throw new RangeError(`conv2dForward: variant '${variant}' cannot run a ${s.kh}×${s.kw} stride ${s.stride} pad ${s.pad} conv`);
  const { ho, wo } = conv2dOutputSize(s);
  const io = { src: x, srcWhat: 'conv2d input x', dstWhat: 'conv2d output y' };
  switch (variant) {
    case 'gemm':
      return forwardGemm(rt, x, w, b, s);
    case 'gemm_rb128':
    case 'gemm_rb64':
    case 'gemm_rb_n32':
      return conv2dForwardGemmRb(rt, x, w, b, s, variant);
    case '3x3_px16':
      return conv2dForward3x3Px(rt, x, w, b, s, variant);
    case '1x1_narrow':
      return conv1x1Narrow(rt, x, w, b, { n: s.n, cIn: s.cIn, cOut: s.cOut, plane: s.h * s.w, wso: s.cIn, wsi: 1 }, io);
    case '3x3':
    case '2x2s2':
    case '1x1': {
      const kernel = variant === '3x3' ? directKernels.fwd3x3 : variant === '2x2s2' ? directKernels.fwd2x2s2 : directKernels.fwd1x1;
      const pack = { w, cOut: s.cOut, cIn: s.cIn, taps: s.kh * s.kw, transpose: false, flip: false };
      const rows = variant === '1x1' ? 1 : ho;
      const segs = Math.ceil((variant === '1x1' ? ho * wo : wo) / 8);
      return directConv(rt, kernel, pack, b, { n: s.n, srcC: s.cIn, srcH: s.h, srcW: s.w, dstC: s.cOut, dstH: ho, dstW: wo, rows, segs }, io);
    }
    case '2x2s2_sg': {
      assertSubgroupsOf8(rt, 'conv2dForward', variant);
      const segments = subgroupSegments(s.cOut);
      const kernel = subgroupKernels.fwd2x2s2[segments][s.w % 4 === 0 ? 4 : 1];
      const pack = { w, cOut: s.cOut, cIn: s.cIn, taps: 4, transpose: false, flip: false };
      const g = { n: s.n, srcC: s.cIn, srcH: s.h, srcW: s.w, dstC: s.cOut, dstH: ho, dstW: wo, rows: ho, segs: Math.ceil(wo / 8) };
      return directConv(rt, kernel, pack, b, g, io, subgroupLanes(segments));
    }
    default:
      return variant satisfies never;
  }
}

// ---- the general kernel ----------------------------------------------------------------------

function forwardGemm(rt: Runtime, x: GPUBuffer, w: GPUBuffer, b: GPUBuffer | null, s: Conv2dShape): GPUBuffer {
  const { ho, wo } = conv2dOutputSize(s);
  const xFloats = s.cIn * s.h * s.w;
  const yFloats = s.cOut * ho * wo;
  const k = s.cIn * s.kh * s.kw;
  rt.assertBindable('conv2d weight w', s.cOut * k * 4);
  const input = { buffer: x, itemFloats: xFloats, what: 'conv2d input x' };
  return overBatchChunks(rt, s.n, input, { itemFloats: yFloats, what: 'conv2d output y' }, (xb, yb, chunk) => {
    const m = chunk.count * ho * wo;
    const [gx, gy] = flatWorkgroups(Math.ceil(m / 64), rt.maxWorkgroupsPerDimension);
    rt.dispatch(gemmKernel, {
      bindings: [xb.binding, w, b ?? w, yb.binding],
      uniforms: new Uniforms()
        .u32(s.cIn, s.h, s.w, s.cOut, ho, wo, s.kh, s.kw, s.stride, s.pad, xb.base, yb.base, m, k, b ? 1 : 0, 0),
      workgroups: [gx, gy, Math.ceil(s.cOut / 64)],
    });
  });
}
