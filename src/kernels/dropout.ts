/**
 * Inverted dropout (PyTorch `nn.Dropout` in training mode) on the GPU, with CPU references: each
 * element is zeroed with probability p and kept values are scaled by 1/(1 − p). The mask is never
 * stored: the keep decision of element i is a pure integer function of (seed, offset + i) —
 * a counter-based RNG (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011) built
 * on the `lowbias32` integer mix (C. Wellons, "Prospecting for hash functions", 2018) — so the
 * backward recomputes it and dropoutMaskRef reproduces it bit for bit. See wgsl/dropout.wgsl.
 */
import { Uniforms, defineKernel } from './kernel.ts';
import type { Runtime } from './runtime.ts';
import { VEC4_BLOCK, vec4ElementPass } from './vec4_pass.ts';

const kernel = defineKernel({ name: 'dropout', shader: 'dropout', bindings: ['write', 'read'], uniforms: true, constants: VEC4_BLOCK });

function checkArgs(p: number, seed: number, offset: number): void {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p = ${p} is not in [0, 1)`);
  for (const [what, v] of [['seed', seed], ['offset', offset]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`dropout: ${what} = ${v} is not a u32`);
  }
}

/** The 24-bit threshold: element kept when (hash >> 8) ≥ round(p·2²⁴). */
function threshold(p: number): number {
  return Math.round(p * 2 ** 24);
}

function lowbias32(v: number): number {
  let h = v >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

function pass(rt: Runtime, input: GPUBuffer, n: number, p: number, seed: number, offset: number, label: string): GPUBuffer {
  checkArgs(p, seed, offset);
  const out = rt.alloc(n * 4, label);
  const scale = 1 / (1 - p);
  vec4ElementPass(rt, kernel, out, [input], n, (start, count) =>
    new Uniforms().u32(Math.ceil(count / 4), threshold(p), seed, (offset + start) >>> 0).f32(scale),
  );
  return out;
}

/** y = x·mask/(1 − p) over n floats into a new buffer; the mask comes from (seed, offset + i). */
export function dropoutForward(rt: Runtime, x: GPUBuffer, n: number, p: number, seed: number, offset = 0): GPUBuffer {
  return pass(rt, x, n, p, seed, offset, 'dropout y');
}

/** dx = dy·mask/(1 − p) with the SAME mask as the forward of (seed, offset); a new buffer. */
export function dropoutBackward(rt: Runtime, dy: GPUBuffer, n: number, p: number, seed: number, offset = 0): GPUBuffer {
  return pass(rt, dy, n, p, seed, offset, 'dropout dx');
}

// ---- CPU references ---------------------------------------------------------------------------

/** The keep mask (1 = kept) of elements [0, n), bit-identical to the GPU's. */
export function dropoutMaskRef(n: number, p: number, seed: number, offset = 0): Uint8Array {
  checkArgs(p, seed, offset);
  const t = threshold(p);
  const key = lowbias32(seed ^ 0x9e3779b9);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const h = lowbias32(((lowbias32(((offset + i) >>> 0) ^ key) + seed) >>> 0));
    mask[i] = h >>> 8 >= t ? 1 : 0;
  }
  return mask;
}

export function dropoutForwardRef(x: ArrayLike<number>, n: number, p: number, seed: number, offset = 0): Float64Array {
  const mask = dropoutMaskRef(n, p, seed, offset);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = mask[i] ? (x[i] as number) / (1 - p) : 0;
  return y;
}

export function dropoutBackwardRef(dy: ArrayLike<number>, n: number, p: number, seed: number, offset = 0): Float64Array {
  return dropoutForwardRef(dy, n, p, seed, offset);
}
