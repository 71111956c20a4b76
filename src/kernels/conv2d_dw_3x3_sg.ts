/**
 * The 3×3 s1 p1 weight gradient for CPU-like adapters with subgroups (wgsl/conv2d_dw_3x3_sg.wgsl):
 * variant '3x3_sg16' of conv2d.dw. Lanes over input channels; each lane loads dy for one output
 * channel of every 8 and takes the others' from its neighbours by subgroupBroadcast, so a
 * lane-divergent storage load (a loop over the lanes on lavapipe) feeds 4–8× more FMAs than in
 * conv2d_dw_3x3. The unrolled per-channel code is generated here (WGSL has no macros, and
 * accumulators in arrays indexed in loops would not stay in registers). Split-K over the pixels
 * (streams), partial sums added in a fixed order by conv2d_dw_reduce: deterministic, no atomics.
 * CPU reference: conv2dBackwardWeightRef (conv2d_ref.ts). Measured against '3x3s1p1' on lavapipe:
 * BENCHMARKS.md, "The 3×3 weight gradient".
 */
import { assertSubgroupsOf8, batchChunks, itemsBinding, type BatchChunk } from './conv2d_direct.ts';
import type { Conv2dShape } from './conv2d_shape.ts';
import { defineKernel, flatWorkgroups, Uniforms, type KernelSpec } from './kernel.ts';
import type { Runtime } from './runtime.ts';

export const CONV2D_DW_3X3_SG_VARIANTS = ['3x3_sg16'] as const;
export type Conv2dDw3x3SgVariant = (typeof CONV2D_DW_3X3_SG_VARIANTS)[number];

/** Output channels per workgroup (a multiple of 8: one dy load per 8 channels per lane). */
const CHANNELS: Record<Conv2dDw3x3SgVariant, number> = { '3x3_sg16': 16 };
/** Rows per task: the sliding window reloads 2 rows of x per task. */
const ROWS = 16;
const PARTIAL_BYTES_CAP = 64 << 20;

export function isDw3x3SgVariant(v: string): v is Conv2dDw3x3SgVariant {
  return (CONV2D_DW_3X3_SG_VARIANTS as readonly string[]).includes(v);
}

/** Whether the kernel computes `s`: 3×3, stride 1, pad 1 (any channels, batch and size). */
export function dw3x3SgSupports(s: Conv2dShape): boolean {
  return s.kh === 3 && s.kw === 3 && s.stride === 1 && s.pad === 1;
}

/** vec4 loads (W a multiple of 4: every strip inside the row, every plane 16-byte aligned). */
const LOADS_VEC4 = `fn xRow(plane: u32, r: i32, j0: u32) -> Six {
  var v: Six;
  if (r >= 0 && r < i32(p.h)) {
    let q = (plane + u32(r) * p.w + j0) / 4u;
    v.a = x[q];
    if (j0 > 0u) { v.l = x[q - 1u].w; }
    if (j0 + 4u < p.w) { v.r = x[q + 1u].x; }
  }
  return v;
}
fn dyRow(plane: u32, i: u32, j0: u32) -> vec4<f32> {
  return dy[(plane + i * p.w + j0) / 4u];
}`;

/** f32 loads (any W): columns clamped into the row, zero outside it (dy too, past the last column). */
const LOADS_F32 = `fn xAt(row: u32, c: i32) -> f32 {
  return select(0.0, x[row + u32(clamp(c, 0, i32(p.w) - 1))], c >= 0 && c < i32(p.w));
}
fn xRow(plane: u32, r: i32, j0: u32) -> Six {
  var v: Six;
  if (r >= 0 && r < i32(p.h)) {
    let row = plane + u32(r) * p.w;
    let c = i32(j0);
    v.l = xAt(row, c - 1);
    v.a = vec4(xAt(row, c), xAt(row, c + 1), xAt(row, c + 2), xAt(row, c + 3));
    v.r = xAt(row, c + 4);
  }
  return v;
}
fn dyAt(row: u32, c: u32) -> f32 {
  return select(0.0, dy[row + min(c, p.w - 1u)], c < p.w);
}
fn dyRow(plane: u32, i: u32, j0: u32) -> vec4<f32> {
  let row = plane + i * p.w;
  return vec4(dyAt(row, j0), dyAt(row, j0 + 1u), dyAt(row, j0 + 2u), dyAt(row, j0 + 3u));
}`;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const TAPS = range(9).map((t) => `s${Math.floor(t / 3)}${t % 3}`);

/** The unrolled code for `co` output channels: accumulators, dy planes and loads, FMAs, the copy for the stores. */
function channelCode(co: number) {
  const loads = co / 8;
  const decl = range(co).map((k) => range(9).map((t) => `var a${k}_${t} = 0.0;`).join(' '));
  const planes = range(loads).map((m) => `let d${m} = dyn + min(co0 + ${8 * m}u + lane, p.c_out - 1u) * hw;`);
  const dyLoad = range(loads).map((m) => `let g${m} = dyRow(d${m}, i, j0);`);
  // Per output channel: its dy (4 pixels) from the lane that loaded it, then 9 taps × 4 pixels.
  const fma = range(co).map((k) => {
    const get = `let b${k} = subgroupBroadcast(g${k >> 3}, ${k & 7}u);`;
    const taps = TAPS.map((s, t) => `a${k}_${t} = fma(b${k}.w, ${s}.w, fma(b${k}.z, ${s}.z, fma(b${k}.y, ${s}.y, fma(b${k}.x, ${s}.x, a${k}_${t}))));`);
    return [get, ...taps].join('\n      ');
  });
  const copy = [`var acc: array<f32, ${9 * co}>;`, ...range(co).map((k) => range(9).map((t) => `acc[${9 * k + t}] = a${k}_${t};`).join(' '))];
  return { ACC_DECL: decl.join('\n  '), DY_PLANES: planes.join('\n    '), DY_LOAD: dyLoad.join('\n      '), ACC_FMA: fma.join('\n      '), ACC_COPY: copy.join('\n  ') };
}

function kernel(variant: Conv2dDw3x3SgVariant, vec4: boolean): Readonly<KernelSpec> {
  const co = CHANNELS[variant];
  return defineKernel({
    name: `conv2d_dw_${variant}${vec4 ? '_vec4' : ''}`,
    shader: 'conv2d_dw_3x3_sg',
    bindings: ['read', 'read', 'write'],
    uniforms: true,
    defines: { CO: co, ROWS, XT: vec4 ? 'vec4<f32>' : 'f32', LOADS: vec4 ? LOADS_VEC4 : LOADS_F32, ...channelCode(co) },
  });
}

const KERNELS = Object.fromEntries(CONV2D_DW_3X3_SG_VARIANTS.map((v) => [v, { 1: kernel(v, false), 4: kernel(v, true) }])) as Record<Conv2dDw3x3SgVariant, Record<1 | 4, Readonly<KernelSpec>>>;
const reduceKernel = defineKernel({ name: 'conv2d_dw_reduce', shader: 'conv2d_dw_reduce', bindings: ['read', 'write'], uniforms: true });

/** Workgroups wanted in flight: a CPU driver needs a few per core, a GPU thousands. */
function targetWorkgroups(rt: Runtime): number {
  return /llvmpipe|lavapipe|swiftshader/i.test(`${rt.adapter.description} ${rt.adapter.device}`) || rt.adapter.isFallbackAdapter ? 128 : 4096;
}

/**
 * dW of a 3×3 s1 p1 conv from its input `x` [n, cIn, h, w] and `dy` [n, cOut, h, w] with `variant`;
 * a new buffer [cOut, cIn, 3, 3] (the caller releases it). Needs subgroups of at least 8 lanes.
 * Batches too large for one binding run in chunks, added in order.
 */
export function conv2dBackwardWeight3x3Sg(rt: Runtime, x: GPUBuffer, dy: GPUBuffer, s: Conv2dShape, variant: Conv2dDw3x3SgVariant): GPUBuffer {
  assertSubgroupsOf8(rt, 'conv2dBackwardWeight', variant);
  if (!dw3x3SgSupports(s)) throw new Error(`conv2dBackwardWeight: variant '${variant}' does not support ${s.kh}×${s.kw} stride ${s.stride} pad ${s.pad}`);
  const co = CHANNELS[variant];
  const hw = s.h * s.w;
  const weights = s.cOut * s.cIn * 9;
  rt.assertBindable('conv2d dW', weights * 4);
  const xFloats = s.cIn * hw;
  const dyFloats = s.cOut * hw;
  const chunks = batchChunks(rt, s.n, [
    { what: 'conv2d dW input x', itemFloats: xFloats },
    { what: 'conv2d dW dy', itemFloats: dyFloats },
  ]);
  const ciBlocks = Math.ceil(s.cIn / 8);
  const coBlocks = Math.ceil(s.cOut / co);
  const strips = Math.ceil(s.w / 4);
  const rowBlocks = Math.ceil(s.h / ROWS);
  const tasksOf = (chunk: BatchChunk) => chunk.count * rowBlocks * strips;
  // Streams: a function of the shape and the adapter class alone, so the sums' order is too.
  const streams = Math.max(1, Math.min(
    Math.ceil(targetWorkgroups(rt) / (ciBlocks * coBlocks)),
    tasksOf(chunks[0] as BatchChunk),
    Math.floor(Math.min(rt.maxBindingBytes, PARTIAL_BYTES_CAP) / (weights * 4)),
    rt.maxWorkgroupsPerDimension,
  ));
  const [gx, gy] = flatWorkgroups(ciBlocks * coBlocks, rt.maxWorkgroupsPerDimension);
  const k = KERNELS[variant][s.w % 4 === 0 ? 4 : 1];
  const partial = rt.alloc(streams * weights * 4, 'conv2d dW partials');
  const dW = rt.alloc(weights * 4, 'conv2d dW');
  chunks.forEach((chunk, index) => {
    const xb = itemsBinding(x, xFloats, chunk);
    const dyb = itemsBinding(dy, dyFloats, chunk);
    const tasks = tasksOf(chunk);
    const perStream = Math.ceil(tasks / streams);
    const used = Math.ceil(tasks / perStream);
    rt.dispatch(k, {
      bindings: [xb.binding, dyb.binding, { buffer: partial, size: used * weights * 4 }],
      uniforms: new Uniforms().u32(chunk.count, s.cIn, s.h, s.w, s.cOut, xb.base, dyb.base, strips, rowBlocks, tasks, perStream, weights, ciBlocks, coBlocks),
      workgroups: [gx, gy, used],
    });
    rt.dispatch(reduceKernel, {
      bindings: [{ buffer: partial, size: used * weights * 4 }, { buffer: dW, size: weights * 4 }],
      uniforms: new Uniforms().u32(weights, used, index > 0 ? 1 : 0, 0),
      workgroups: flatWorkgroups(Math.ceil(weights / 64), rt.maxWorkgroupsPerDimension),
    });
  });
  rt.release(partial);
  return dW;
}
