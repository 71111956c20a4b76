/**
 * Element-wise launchers (fill, axpy, scale) and a deterministic sum, with CPU references.
 * Arrays larger than one storage binding are processed in aligned chunks.
 */
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

const WG = 256;
const fillKernel = defineKernel({ name: 'fill', shader: 'elementwise', entryPoint: 'fill', bindings: ['write'], uniforms: true, constants: { WG } });
const axpyKernel = defineKernel({ name: 'axpy', shader: 'elementwise', entryPoint: 'axpy', bindings: ['write', 'read'], uniforms: true, constants: { WG } });
const scaleKernel = defineKernel({ name: 'scale', shader: 'elementwise', entryPoint: 'scale', bindings: ['write', 'read'], uniforms: true, constants: { WG } });
const sumKernel = defineKernel({ name: 'reduce_sum', shader: 'reduce_sum', bindings: ['read', 'write'], uniforms: true, constants: { WG } });

/**
 * Calls `body(start, count)` over [0, n) in chunks whose f32 bytes fit one storage binding;
 * chunk starts are multiples of 64 elements, so their byte offsets are 256-aligned.
 */
export function forEachElementChunk(rt: Runtime, n: number, body: (start: number, count: number) => void): void {
  const chunk = Math.floor(rt.maxBindingBytes / 256) * 64;
  for (let start = 0; start < n; start += chunk) body(start, Math.min(chunk, n - start));
}

/** The f32 elements [start, start + count) of `buffer` as a binding. */
export function elementRange(buffer: GPUBuffer, start: number, count: number) {
  return { buffer, offset: start * 4, size: count * 4 };
}

function elementwise(rt: Runtime, kernel: typeof fillKernel, y: GPUBuffer, x: GPUBuffer | null, n: number, alpha: number): void {
  forEachElementChunk(rt, n, (start, count) => {
    const out = elementRange(y, start, count);
    rt.dispatch(kernel, {
      bindings: x ? [out, elementRange(x, start, count)] : [out],
      uniforms: new Uniforms().u32(count).f32(alpha),
      workgroups: flatWorkgroups(Math.ceil(count / WG), rt.maxWorkgroupsPerDimension),
    });
  });
}

/** y[0..n) = value. */
export function fill(rt: Runtime, y: GPUBuffer, n: number, value: number): void {
  elementwise(rt, fillKernel, y, null, n, value);
}

/** y[i] += alpha·x[i] for i < n — how the tape accumulates gradients. */
export function axpy(rt: Runtime, y: GPUBuffer, x: GPUBuffer, n: number, alpha = 1): void {
  elementwise(rt, axpyKernel, y, x, n, alpha);
}

/** y[i] = alpha·x[i] for i < n. */
export function scale(rt: Runtime, y: GPUBuffer, x: GPUBuffer, n: number, alpha: number): void {
  elementwise(rt, scaleKernel, y, x, n, alpha);
}

/**
 * Sum of x[0..n) into a new 1-element buffer (caller releases it). Deterministic: a fixed tree
 * per workgroup, then rounds of partials. The input must fit one binding.
 */
export function sum(rt: Runtime, x: GPUBuffer, n: number): GPUBuffer {
  rt.assertBindable('sum input', n * 4);
  const seg = WG * 16;
  let input = x;
  let length = n;
  let owned: GPUBuffer | null = null;
  do {
    const groups = Math.max(1, Math.ceil(length / seg));
    const out = rt.alloc(groups * 4, 'sum partials');
    rt.dispatch(sumKernel, {
      bindings: [input, out],
      uniforms: new Uniforms().u32(length, seg),
      workgroups: flatWorkgroups(groups, rt.maxWorkgroupsPerDimension),
    });
    if (owned) rt.release(owned);
    owned = out;
    input = out;
    length = groups;
  } while (length > 1);
  return input;
}

// ---- CPU references ---------------------------------------------------------------------------

export function axpyRef(y: Float32Array, x: Float32Array, alpha = 1): Float32Array {
  return y.map((v, i) => Math.fround(alpha * (x[i] ?? 0) + v));
}

export function scaleRef(x: Float32Array, alpha: number): Float32Array {
  return x.map((v) => alpha * v);
}

/** Sum in float64. */
export function sumRef(x: Float32Array): number {
  let acc = 0;
  for (const v of x) acc += v;
  return acc;
}
