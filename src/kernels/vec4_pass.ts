/**
 * The generic vec4 element pass: runs an element-wise kernel written over vec4s (workgroup
 * constants VEC4_BLOCK) across an array of any length, in binding-sized chunks. ReLU, dropout and
 * any other one-value-in, one-value-out kernel launch through it.
 */
import { forEachElementChunk } from './elementwise.ts';
import { flatWorkgroups, type KernelSpec, type UniformBlock } from './kernel.ts';
import type { Binding, Runtime } from './runtime.ts';

/** Lanes per workgroup and vec4s per lane: a workgroup walks a block of WG·PER_LANE vec4s. */
export const VEC4_BLOCK = { WG: 64, PER_LANE: 16 } as const;

/**
 * Floats [start, start + count) of `buffer` bound as whole vec4s (count rounded up to 4). Pooled
 * buffers are sized in multiples of 16 bytes, so the rounded range stays inside the buffer.
 */
export function vec4ElementRange(rt: Runtime, buffer: GPUBuffer, start: number, count: number): Binding {
  const size = Math.ceil(count / 4) * 16;
  if (start * 4 + size > rt.sizeOf(buffer)) {
    throw new RangeError(`'${buffer.label}' holds ${rt.sizeOf(buffer)} bytes; floats [${start}, ${start + count}) bound as vec4s need ${start * 4 + size}`);
  }
  return { buffer, offset: start * 4, size };
}

/**
 * Runs a vec4 element kernel (constants VEC4_BLOCK) over [0, n) in binding-sized chunks: `out` and
 * each input bound over the same range; `uniforms(start, count)` gives the chunk's uniform block.
 */
export function vec4ElementPass(
  rt: Runtime,
  kernel: Readonly<KernelSpec>,
  out: GPUBuffer,
  inputs: readonly GPUBuffer[],
  n: number,
  uniforms: (start: number, count: number) => UniformBlock,
): void {
  forEachElementChunk(rt, n, (start, count) => {
    rt.dispatch(kernel, {
      bindings: [out, ...inputs].map((buffer) => vec4ElementRange(rt, buffer, start, count)),
      uniforms: uniforms(start, count),
      workgroups: flatWorkgroups(Math.ceil(count / 4 / (VEC4_BLOCK.WG * VEC4_BLOCK.PER_LANE)), rt.maxWorkgroupsPerDimension),
    });
  });
}
