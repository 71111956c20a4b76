/**
 * ReLU forward and backward on the GPU, with CPU references. y = max(x, 0); the backward uses the
 * saved OUTPUT: dx = dy where y > 0, else 0 (PyTorch's threshold_backward on the result).
 * Kernels in wgsl/relu.wgsl work on vec4s; arrays larger than one binding go in element chunks.
 */
import { forEachElementChunk } from './elementwise.ts';
import { defineKernel, flatWorkgroups, Uniforms, type KernelSpec } from './kernel.ts';
import type { Binding, Runtime } from './runtime.ts';

/** Lanes per workgroup and vec4s per lane: a workgroup walks a block of WG·PER_LANE vec4s. */
export const VEC4_BLOCK = { WG: 64, PER_LANE: 16 } as const;
const forwardKernel = defineKernel({ name: 'relu_forward', shader: 'relu', entryPoint: 'forward', bindings: ['write', 'read'], uniforms: true, constants: VEC4_BLOCK });
const backwardKernel = defineKernel({ name: 'relu_backward', shader: 'relu', entryPoint: 'backward', bindings: ['write', 'read', 'read'], uniforms: true, constants: VEC4_BLOCK });

/**
 * Floats [start, start + count) of `buffer` bound as whole vec4s (count rounded up to 4). Pooled
 * buffers are sized in multiples of 16 bytes, so the rounded range stays inside the buffer.
 */
export function vec4ElementRange(buffer: GPUBuffer, start: number, count: number): Binding {
  const size = Math.ceil(count / 4) * 16;
  if (start * 4 + size > buffer.size) {
    throw new RangeError(`'${buffer.label}' holds ${buffer.size} bytes; floats [${start}, ${start + count}) bound as vec4s need ${start * 4 + size}`);
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
  uniforms: (start: number, count: number) => ArrayBuffer,
): void {
  forEachElementChunk(rt, n, (start, count) => {
    rt.dispatch(kernel, {
      bindings: [out, ...inputs].map((buffer) => vec4ElementRange(buffer, start, count)),
      uniforms: uniforms(start, count),
      workgroups: flatWorkgroups(Math.ceil(count / 4 / (VEC4_BLOCK.WG * VEC4_BLOCK.PER_LANE)), rt.maxWorkgroupsPerDimension),
    });
  });
}

const countOnly = (_start: number, count: number) => new Uniforms().u32(Math.ceil(count / 4)).bytes();

/** y = max(x, 0) over n floats, into a new buffer. */
export function reluForward(rt: Runtime, x: GPUBuffer, n: number): GPUBuffer {
  const y = rt.alloc(n * 4, 'relu y');
  vec4ElementPass(rt, forwardKernel, y, [x], n, countOnly);
  return y;
}

/** dx = dy where the forward OUTPUT y > 0, else 0; a new buffer. */
export function reluBackward(rt: Runtime, dy: GPUBuffer, y: GPUBuffer, n: number): GPUBuffer {
  const dx = rt.alloc(n * 4, 'relu dx');
  vec4ElementPass(rt, backwardKernel, dx, [dy, y], n, countOnly);
  return dx;
}

// ---- CPU references ---------------------------------------------------------------------------

export function reluForwardRef(x: ArrayLike<number>, n = x.length): Float64Array {
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = x[i] as number;
    y[i] = v < 0 ? 0 : v;
  }
  return y;
}

export function reluBackwardRef(dy: ArrayLike<number>, y: ArrayLike<number>, n = dy.length): Float64Array {
  const dx = new Float64Array(n);
  for (let i = 0; i < n; i++) dx[i] = (y[i] as number) > 0 ? (dy[i] as number) : 0;
  return dx;
}
