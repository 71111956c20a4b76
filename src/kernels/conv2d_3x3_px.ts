/**
 * The lanes-over-pixels 3×3 s1 p1 convolution for CPU-like adapters (wgsl/conv2d_3x3_px.wgsl):
 * forward and data gradient, variants '3x3_px8' and '3x3_px16' (8 or 16 output channels per
 * workgroup) of conv2d.forward and conv2d.dx. Weights are read from a storage buffer at addresses
 * the same in every lane (one scalar load on lavapipe), so there is no weight packing and no pass
 * per 64 KiB uniform block: one dispatch per batch chunk. Each lane keeps 8 pixels × RN channels
 * of accumulators; the kernel's unrolled per-channel code is generated here (WGSL has no macros, and
 * arrays indexed in loops would not stay in registers on lavapipe).
 */
import { overBatchChunks } from './conv2d_direct.ts';
import type { Conv2dShape } from './conv2d_shape.ts';
import { defineKernel, flatWorkgroups, Uniforms, type KernelSpec } from './kernel.ts';
import type { Runtime } from './runtime.ts';

export const CONV2D_3X3_PX_VARIANTS = ['3x3_px4', '3x3_px8', '3x3_px16'] as const;
export type Conv2d3x3PxVariant = (typeof CONV2D_3X3_PX_VARIANTS)[number];

const CHANNELS: Record<Conv2d3x3PxVariant, number> = { '3x3_px4': 4, '3x3_px8': 8, '3x3_px16': 16 };

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

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The unrolled accumulator code for `rn` channels: declarations, FMAs per kernel row, stores. */
function channelCode(rn: number, vec4: boolean): { ACC_DECL: string; ACC_FMA: string; ACC_STORE: string } {
  const decl = range(rn).map((r) => `var a${r}l = vec4<f32>(0.0); var a${r}h = vec4<f32>(0.0);`);
  const fma = range(rn).map((r) => {
    const o = r === 0 ? '' : ` + ${r}u * p.sO`;
    return (
      `{ let w0 = vec4(wt[t0${o}]); let w1 = vec4(wt[t1${o}]); let w2 = vec4(wt[t2${o}]);\n` +
      `        a${r}l = fma(l2, w2, fma(l1, w1, fma(l0, w0, a${r}l))); a${r}h = fma(h2, w2, fma(h1, w1, fma(h0, w0, a${r}h))); }`
    );
  });
  const store = range(rn).map((r) => {
    const head = `if (co0 + ${r}u < p.cOut) {\n    var b = 0.0;\n    if (p.hasBias == 1u) { b = bias[co0 + ${r}u]; }\n    let o = dst0 + ${r}u * plane;\n`;
    const body = vec4
      ? `    y[o / 4u] = a${r}l + b;\n    if (ox0 + 4u < p.w) { y[o / 4u + 1u] = a${r}h + b; }\n`
      : range(8)
          .map((k) => `    if (ox0 + ${k}u < p.w) { y[o + ${k}u] = a${r}${k < 4 ? 'l' : 'h'}[${k % 4}] + b; }\n`)
          .join('');
    return `${head}${body}  }`;
  });
  return { ACC_DECL: decl.join('\n  '), ACC_FMA: fma.join('\n      '), ACC_STORE: store.join('\n  ') };
}

function kernel(variant: Conv2d3x3PxVariant, vec4: boolean): Readonly<KernelSpec> {
  const rn = CHANNELS[variant];
  return defineKernel({
    name: `conv2d_${variant}${vec4 ? '_vec4' : ''}`,
    shader: 'conv2d_3x3_px',
    bindings: ['read', 'read', 'read', 'write'],
    uniforms: true,
    defines: { RN: rn, XT: vec4 ? 'vec4<f32>' : 'f32', LOAD: vec4 ? LOAD_VEC4 : LOAD_F32, ...channelCode(rn, vec4) },
  });
}

const KERNELS = Object.fromEntries(CONV2D_3X3_PX_VARIANTS.map((v) => [v, { 1: kernel(v, false), 4: kernel(v, true) }])) as Record<Conv2d3x3PxVariant, Record<1 | 4, Readonly<KernelSpec>>>;

export function isConv2d3x3PxVariant(v: string): v is Conv2d3x3PxVariant {
  return (CONV2D_3X3_PX_VARIANTS as readonly string[]).includes(v);
}

/** The one source → one result 3×3 s1 p1 conv both directions run: channels, size, weight strides. */
interface PxConv {
  n: number;
  srcC: number;
  dstC: number;
  h: number;
  w: number;
  sO: number;
  sI: number;
  flip: boolean;
}

function run(rt: Runtime, src: GPUBuffer, wts: GPUBuffer, bias: GPUBuffer | null, c: PxConv, variant: Conv2d3x3PxVariant, what: { src: string; dst: string }): GPUBuffer {
  const rn = CHANNELS[variant];
  const plane = c.h * c.w;
  const segs = Math.ceil(c.w / 8);
  const segBlocks = Math.ceil(segs / 8);
  const tiles = Math.ceil(c.dstC / rn);
  const vec4 = c.w % 4 === 0 ? 4 : 1;
  rt.assertBindable('conv2d weight w', c.srcC * c.dstC * 9 * 4);
  const input = { buffer: src, itemFloats: c.srcC * plane, what: what.src };
  return overBatchChunks(rt, c.n, input, { itemFloats: c.dstC * plane, what: what.dst }, (sb, db, chunk) => {
    const [gx, gy] = flatWorkgroups(segBlocks * c.h * tiles * chunk.count, rt.maxWorkgroupsPerDimension);
    rt.dispatch(KERNELS[variant][vec4], {
      bindings: [sb.binding, wts, bias ?? wts, db.binding],
      uniforms: new Uniforms()
        .u32(c.srcC, c.h, c.w, c.dstC, sb.base, db.base, segs, segBlocks)
        .u32(c.sO, c.sI, c.flip ? 1 : 0, bias ? 1 : 0, chunk.count, tiles, 0, 0)
        .bytes(),
      workgroups: [gx, gy, 1],
    });
  });
}

/** y = conv2d(x, w) + b for a 3×3 s1 p1 shape; a new buffer [n, cOut, h, w]. */
export function conv2dForward3x3Px(rt: Runtime, x: GPUBuffer, w: GPUBuffer, b: GPUBuffer | null, s: Conv2dShape, variant: Conv2d3x3PxVariant): GPUBuffer {
  const c = { n: s.n, srcC: s.cIn, dstC: s.cOut, h: s.h, w: s.w, sO: s.cIn * 9, sI: 9, flip: false };
  return run(rt, x, w, b, c, variant, { src: 'conv2d input x', dst: 'conv2d output y' });
}

/** dx of a 3×3 s1 p1 conv from dy (dy convolved with Wᵀ flipped); a new buffer [n, cIn, h, w]. */
export function conv2dBackwardData3x3Px(rt: Runtime, dy: GPUBuffer, w: GPUBuffer, s: Conv2dShape, variant: Conv2d3x3PxVariant): GPUBuffer {
  const c = { n: s.n, srcC: s.cOut, dstC: s.cIn, h: s.h, w: s.w, sO: 9, sI: s.cIn * 9, flip: true };
  return run(rt, dy, w, null, c, variant, { src: 'conv2d output gradient dy', dst: 'conv2d input gradient dx' });
}
