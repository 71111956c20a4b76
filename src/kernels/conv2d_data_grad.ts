/**
 * conv2d data gradient (dx = ∂L/∂x from dy) on WebGPU: the general gather-form implicit GEMM and
 * the fast paths, side by side, and the choice per shape and adapter. The maths is conv2d_ref.ts
 * (conv2dBackwardDataRef). The fast paths reuse forward kernels on rearranged weights:
 * 3×3 s1 p1 is a 3×3 s1 p1 conv of dy with Wᵀ (in↔out) flipped; 1×1 is the GEMM dx = Wᵀ·dy;
 * 2×2 s2 has its own kernels (each input pixel receives from exactly one output pixel), '2x2s2_sg'
 * sharing dy across lanes by subgroupShuffle.
 */
import { assertSubgroupsOf8, conv1x1Narrow, directConv, directKernels, overBatchChunks, subgroupKernels, subgroupLanes, subgroupSegments } from './conv2d_direct.ts';
import { chooseConv2dVariant, CONV2D_FORWARD_VARIANTS, conv2dVariantApplies } from './conv2d_forward.ts';
import { conv2dBackwardData3x3Px } from './conv2d_3x3_px.ts';
import { conv2dBackwardDataGemmRb } from './conv2d_gemm_rb.ts';
import type { Conv2dShape } from './conv2d_shape.ts';
import { conv2dOutputSize, validateConv2dShape } from './conv2d_shape.ts';
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

/** The same names as the forward variants; each valid for the shapes `conv2dVariantApplies` accepts. */
export const CONV2D_BACKWARD_DATA_VARIANTS = CONV2D_FORWARD_VARIANTS;
export type Conv2dBackwardDataVariant = (typeof CONV2D_BACKWARD_DATA_VARIANTS)[number];

const gemmKernel = defineKernel({ name: 'conv2d_dx_gemm', shader: 'conv2d_dx_gemm', bindings: ['read', 'read', 'write'], uniforms: true });

/** The heuristic data-gradient kernel for a shape on this adapter (see chooseConv2dVariant). */
export function chooseConv2dBackwardDataVariant(rt: Runtime, s: Conv2dShape): Conv2dBackwardDataVariant {
  return chooseConv2dVariant(rt, s, s.cOut, s.cIn, 'dx');
}

/**
 * dx = ∂L/∂x of y = conv2d(x, w) given dy [n, cOut, ho, wo]. Returns a new buffer [n, cIn, h, w]
 * (the caller releases it). Batches larger than one binding run in chunks.
 */
export function conv2dBackwardData(
  rt: Runtime,
  dy: GPUBuffer,
  w: GPUBuffer,
  s: Conv2dShape,
  options: { variant?: Conv2dBackwardDataVariant } = {},
): GPUBuffer {
  validateConv2dShape(s);
  const variant = options.variant ?? rt.kernels.choose('conv2d.dx', s, () => chooseConv2dBackwardDataVariant(rt, s));
  if (!conv2dVariantApplies(variant, s)) throw new RangeError(`conv2dBackwardData: variant '${variant}' cannot run a ${s.kh}×${s.kw} stride ${s.stride} pad ${s.pad} conv`);
  const { ho, wo } = conv2dOutputSize(s);
  const io = { src: dy, srcWhat: 'conv2d output gradient dy', dstWhat: 'conv2d input gradient dx' };
  const geometry = { n: s.n, srcC: s.cOut, srcH: ho, srcW: wo, dstC: s.cIn, dstH: s.h, dstW: s.w };
  switch (variant) {
    case 'gemm':
      return backwardDataGemm(rt, dy, w, s);
    case 'gemm_rb128':
    case 'gemm_rb64':
    case 'gemm_rb_n32':
      return conv2dBackwardDataGemmRb(rt, dy, w, s, variant);
    case '3x3_px16':
      return conv2dBackwardData3x3Px(rt, dy, w, s, variant);
    case '1x1_narrow':
      return conv1x1Narrow(rt, dy, w, null, { n: s.n, cIn: s.cOut, cOut: s.cIn, plane: s.h * s.w, wso: 1, wsi: s.cIn }, io);
    case '3x3':
    case '2x2s2':
    case '1x1': {
      const pack = { w, cOut: s.cOut, cIn: s.cIn, taps: s.kh * s.kw, transpose: true, flip: variant === '3x3' };
      const g =
        variant === '3x3'
          ? { ...geometry, rows: s.h, segs: Math.ceil(s.w / 8) }
          : variant === '2x2s2'
            ? { ...geometry, rows: s.h, segs: Math.ceil(s.w / 8) }
            : { ...geometry, rows: 1, segs: Math.ceil((s.h * s.w) / 8) };
      const kernel = variant === '3x3' ? directKernels.fwd3x3 : variant === '2x2s2' ? directKernels.dx2x2s2 : directKernels.fwd1x1;
      return directConv(rt, kernel, pack, null, g, io);
    }
    case '2x2s2_sg': {
      assertSubgroupsOf8(rt, 'conv2dBackwardData', variant);
      const pack = { w, cOut: s.cOut, cIn: s.cIn, taps: 4, transpose: true, flip: false };
      const segments = subgroupSegments(s.cIn);
      const kernel = subgroupKernels.dx2x2s2[segments][wo % 4 === 0 ? 4 : 1];
      return directConv(rt, kernel, pack, null, { ...geometry, rows: s.h, segs: Math.ceil(s.w / 8) }, io, subgroupLanes(segments));
    }
    default:
      return variant satisfies never;
  }
}

function backwardDataGemm(rt: Runtime, dy: GPUBuffer, w: GPUBuffer, s: Conv2dShape): GPUBuffer {
  const { ho, wo } = conv2dOutputSize(s);
  const dyFloats = s.cOut * ho * wo;
  const dxFloats = s.cIn * s.h * s.w;
  const k = s.cOut * s.kh * s.kw;
  rt.assertBindable('conv2d weight w', s.cIn * k * 4);
  const input = { buffer: dy, itemFloats: dyFloats, what: 'conv2d output gradient dy' };
  return overBatchChunks(rt, s.n, input, { itemFloats: dxFloats, what: 'conv2d input gradient dx' }, (dyb, dxb, chunk) => {
    const m = chunk.count * s.h * s.w;
    const [gx, gy] = flatWorkgroups(Math.ceil(m / 64), rt.maxWorkgroupsPerDimension);
    rt.dispatch(gemmKernel, {
      bindings: [dyb.binding, w, dxb.binding],
      uniforms: new Uniforms().u32(s.cIn, s.h, s.w, s.cOut, ho, wo, s.kh, s.kw, s.stride, s.pad, dyb.base, dxb.base, m, k, 0, 0),
      workgroups: [gx, gy, Math.ceil(s.cIn / 64)],
    });
  });
}
