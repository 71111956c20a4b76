/**
 * Non-finite check of many float32 arrays in one pass: one u32 flag per array (bit 0 = it holds a
 * NaN, bit 1 = it holds ±Inf), written into one small buffer the caller reads back with the loss.
 * Training uses it to check every parameter gradient each step for the cost of one 4-byte word per
 * parameter read back. wgsl/nonfinite_flags.wgsl; integer OR only, so the result is deterministic.
 */
import { elementRange, fill, forEachElementChunk } from './elementwise.ts';
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

const WG = 256;
const SEG = WG * 16;
const flagsKernel = defineKernel({ name: 'nonfinite_flags', shader: 'nonfinite_flags', bindings: ['read', 'write'], uniforms: true, constants: { WG } });

/** Flag bits of one array. */
export const NONFINITE = { NaN: 1, Inf: 2 } as const;

/** An array to check: `n` float32 values at the start of `buffer`. */
export interface FlaggedArray {
  buffer: GPUBuffer;
  n: number;
}

/**
 * A new buffer of `arrays.length` u32 flags, flag k for arrays[k] (caller releases it). Arrays
 * larger than one storage binding are scanned in chunks that OR into the same flag.
 */
export function nonFiniteFlags(rt: Runtime, arrays: readonly FlaggedArray[]): GPUBuffer {
  const flags = rt.alloc(Math.max(1, arrays.length) * 4, 'nonfinite flags');
  fill(rt, flags, Math.max(1, arrays.length), 0);
  arrays.forEach(({ buffer, n }, slot) => {
    forEachElementChunk(rt, n, (start, count) => {
      rt.dispatch(flagsKernel, {
        bindings: [elementRange(buffer, start, count), flags],
        uniforms: new Uniforms().u32(count, SEG, slot),
        workgroups: flatWorkgroups(Math.ceil(count / SEG), rt.maxWorkgroupsPerDimension),
      });
    });
  });
  return flags;
}

/** CPU reference: the same flags from arrays on the CPU. */
export function nonFiniteFlagsRef(arrays: readonly Float32Array[]): Uint32Array {
  return Uint32Array.from(arrays, (a) => {
    let flag = 0;
    for (const v of a) {
      if (Number.isNaN(v)) flag |= NONFINITE.NaN;
      else if (!Number.isFinite(v)) flag |= NONFINITE.Inf;
    }
    return flag;
  });
}
