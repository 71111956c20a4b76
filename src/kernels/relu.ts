/**
 * ReLU forward and backward on the GPU, with CPU references. y = max(x, 0); the backward uses the
 * saved OUTPUT: dx = dy where y > 0, else 0 (PyTorch's threshold_backward on the result).
 * Kernels in wgsl/relu.wgsl work on vec4s; arrays larger than one binding go in element chunks.
 */
import { defineKernel, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';
import { VEC4_BLOCK, vec4ElementPass } from './vec4_pass.ts';

const forwardKernel = defineKernel({ name: 'relu_forward', shader: 'relu', entryPoint: 'forward', bindings: ['write', 'read'], uniforms: true, constants: VEC4_BLOCK });
const backwardKernel = defineKernel({ name: 'relu_backward', shader: 'relu', entryPoint: 'backward', bindings: ['write', 'read', 'read'], uniforms: true, constants: VEC4_BLOCK });

const countOnly = (_start: number, count: number) => new Uniforms().u32(Math.ceil(count / 4));

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
