/**
 * The lanes-over-pixels 3×3 s1 p1 convolution for CPU-like adapters (wgsl/conv2d_3x3_px.wgsl):
 * forward and data gradient, variant '3x3_px16' (16 output channels per dispatch tile) of
 * conv2d.forward and conv2d.dx. Weights are packed into 64 KiB uniform blocks as
 * for conv2d_fwd_3x3 (conv2d_direct.ts `directConv`), but every lane of a workgroup reads the same
 * weight at the same time (lanes differ by pixels, not channels), which lavapipe does as one
 * scalar load instead of a gather, and each lane's source loads feed 16 channels instead of 4.
 * Each lane keeps 8 pixels × RN channels of accumulators; the kernel's unrolled per-channel code is
 * generated here (WGSL has no macros, and arrays indexed in loops would not stay in registers).
 * Measured against '3x3' on lavapipe: BENCHMARKS.md, "The seed's wide 3×3 layers".
 */
import { directConv, type DirectLanes } from './conv2d_direct.ts';
import type { Conv2dShape } from './conv2d_shape.ts';
import { defineKernel, type KernelSpec } from './kernel.ts';
import type { Runtime } from './runtime.ts';

export const CONV2D_3X3_PX_VARIANTS = ['3x3_px16'] as const;
export type Conv2d3x3PxVariant = (typeof CONV2D_3X3_PX_VARIANTS)[number];

/** Output channels per tile (8 was measured too, slower at every seed shape: BENCHMARKS.md). */
const CHANNELS: Record<Conv2d3x3PxVariant, number> = { '3x3_px16': 16 };

/** Four vec4 loads per kernel row (W a multiple of 4), columns outside the row zeroed. */
const LOAD_VEC4 = `fn loadTen(row: u32, ox0: u32) -> Ten {
  let q = (row + ox0) / 4u;
  var t: Ten;
  t.a = x[q];
  t.b = select(vec4<f32>(0.0), x[q + 1u], ox0 + 4u < p.w);
  t.l = select(0.0, x[max(q, 1u) - 1u].w, ox0 > 0u);
  t.r = select(0.0, x[q + 2u].x, ox0 + 8u < p.w);
  return t;
}`;

/** Ten f32 loads per kernel row (any W), each column clamped into the row and zeroed outside it. */
const LOAD_F32 = `fn ld(row: u32, c: i32) -> f32 {
  return select(0.0, x[row + u32(clamp(c, 0, i32(p.w) - 1))], c >= 0 && c < i32(p.w));
}
fn loadTen(row: u32, ox0: u32) -> Ten {
  let c = i32(ox0);
  var t: Ten;
  t.l = ld(row, c - 1);
  t.a = vec4(ld(row, c), ld(row, c + 1), ld(row, c + 2), ld(row, c + 3));
  t.b = vec4(ld(row, c + 4), ld(row, c + 5), ld(row, c + 6), ld(row, c + 7));
  t.r = ld(row, c + 8);
  return t;
}`;

/** Stores 8 pixels (two vec4, the second only inside the row) of one channel: y = b + v, or y += v. */
const STORE_VEC4 = `fn store8(o: u32, ox0: u32, lo: vec4<f32>, hi: vec4<f32>, b: f32) {
  var l = lo + b;
  if (p.accumulate == 1u) { l += y[o / 4u]; }
  y[o / 4u] = l;
  if (ox0 + 4u < p.w) {
    var h = hi + b;
    if (p.accumulate == 1u) { h += y[o / 4u + 1u]; }
    y[o / 4u + 1u] = h;
  }
}`;

/** Stores the pixels of the 8 inside the row, one f32 each. */
const STORE_F32 = `fn store8(o: u32, ox0: u32, lo: vec4<f32>, hi: vec4<f32>, b: f32) {
  for (var k = 0u; k < min(8u, p.w - ox0); k++) {
    var v = select(hi[k % 4u], lo[k % 4u], k < 4u) + b;
    if (p.accumulate == 1u) { v += y[o + k]; }
    y[o + k] = v;
  }
}`;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The unrolled accumulator code for `rn` channels: declarations, FMAs per kernel row, copy for the stores. */
function channelCode(rn: number): { ACC_DECL: string; ACC_FMA: string; ACC_COPY: string } {
  const decl = range(rn).map((r) => `var a${r}l = vec4<f32>(0.0); var a${r}h = vec4<f32>(0.0);`);
  // Per vec4 group of 4 channels: the three taps' weights (vec4 over the channels), then per channel
  // the 6 vec4 FMAs of its 8 pixels.
  const fma = range(rn / 4).map((g) => {
    const load = `let w${g}0 = wts[wk + ${g}u]; let w${g}1 = wts[wk + p.groups + ${g}u]; let w${g}2 = wts[wk + 2u * p.groups + ${g}u];`;
    const lines = range(4).map((j) => {
      const r = 4 * g + j;
      const c = 'xyzw'[j];
      return `a${r}l = fma(l2, vec4(w${g}2.${c}), fma(l1, vec4(w${g}1.${c}), fma(l0, vec4(w${g}0.${c}), a${r}l))); a${r}h = fma(h2, vec4(w${g}2.${c}), fma(h1, vec4(w${g}1.${c}), fma(h0, vec4(w${g}0.${c}), a${r}h)));`;
    });
    return [load, ...lines].join('\n    ');
  });
  // The stores go through an array and a loop over channels that the compiler cannot unroll (its
  // bound is a uniform): unrolled, 16 channels × 8 pixels of lane-divergent stores made the kernel
  // take minutes to compile on lavapipe under load.
  const store = [`var acc: array<vec4<f32>, ${2 * rn}>;`, ...range(rn).map((r) => `acc[${2 * r}] = a${r}l; acc[${2 * r + 1}] = a${r}h;`)];
  return { ACC_DECL: decl.join('\n  '), ACC_FMA: fma.join('\n    '), ACC_COPY: store.join('\n  ') };
}

function kernel(variant: Conv2d3x3PxVariant, vec4: boolean): Readonly<KernelSpec> {
  const rn = CHANNELS[variant];
  return defineKernel({
    name: `conv2d_${variant}${vec4 ? '_vec4' : ''}`,
    shader: 'conv2d_3x3_px',
    include: ['conv2d_direct_params'],
    bindings: ['read', 'uniform', 'read', 'write'],
    uniforms: true,
    defines: { RN: rn, XT: vec4 ? 'vec4<f32>' : 'f32', LOAD: vec4 ? LOAD_VEC4 : LOAD_F32, STORE: vec4 ? STORE_VEC4 : STORE_F32, ...channelCode(rn) },
  });
}

const KERNELS = Object.fromEntries(CONV2D_3X3_PX_VARIANTS.map((v) => [v, { 1: kernel(v, false), 4: kernel(v, true) }])) as Record<Conv2d3x3PxVariant, Record<1 | 4, Readonly<KernelSpec>>>;

/** Lanes of the px kernels for packWeights / directConv: RN / 4 vec4 groups per tile, 8 pixel groups per workgroup. */
function pxLanes(variant: Conv2d3x3PxVariant): DirectLanes {
  return { maxGroups: CHANNELS[variant] / 4, pixelGroups: () => 8, ciMultiple: 1 };
}

/** y = conv2d(x, w) + b for a 3×3 s1 p1 shape; a new buffer [n, cOut, h, w]. */
export function conv2dForward3x3Px(rt: Runtime, x: GPUBuffer, w: GPUBuffer, b: GPUBuffer | null, s: Conv2dShape, variant: Conv2d3x3PxVariant): GPUBuffer {
  const pack = { w, cOut: s.cOut, cIn: s.cIn, taps: 9, transpose: false, flip: false };
  const g = { n: s.n, srcC: s.cIn, srcH: s.h, srcW: s.w, dstC: s.cOut, dstH: s.h, dstW: s.w, rows: s.h, segs: Math.ceil(s.w / 8) };
  return directConv(rt, KERNELS[variant][s.w % 4 === 0 ? 4 : 1], pack, b, g, { src: x, srcWhat: 'conv2d input x', dstWhat: 'conv2d output y' }, pxLanes(variant));
}

/** dx of a 3×3 s1 p1 conv from dy (dy convolved with Wᵀ flipped); a new buffer [n, cIn, h, w]. */
export function conv2dBackwardData3x3Px(rt: Runtime, dy: GPUBuffer, w: GPUBuffer, s: Conv2dShape, variant: Conv2d3x3PxVariant): GPUBuffer {
  const pack = { w, cOut: s.cOut, cIn: s.cIn, taps: 9, transpose: true, flip: true };
  const g = { n: s.n, srcC: s.cOut, srcH: s.h, srcW: s.w, dstC: s.cIn, dstH: s.h, dstW: s.w, rows: s.h, segs: Math.ceil(s.w / 8) };
  return directConv(rt, KERNELS[variant][s.w % 4 === 0 ? 4 : 1], pack, null, g, { src: dy, srcWhat: 'conv2d output gradient dy', dstWhat: 'conv2d input gradient dx' }, pxLanes(variant));
}
