/**
 * What a kernel declares (after tfjs-backend-webgpu's program split): its WGSL file and entry
 * point, its storage bindings, whether it takes a uniform block, and its compile-time constants.
 * The Runtime owns everything else — pipelines, bind groups, buffers, submission.
 *
 * Binding convention in every .wgsl file: `@group(0) @binding(0) var<uniform>` holds the shapes
 * and scalars (when `uniforms` is true); storage buffers follow from binding 1 in the declared order.
 */

/**
 * `read` = `var<storage, read>`, `write` = `var<storage, read_write>`, `uniform` = a pooled
 * buffer (or a range of one, at most maxUniformBufferBindingSize) bound as `var<uniform>` — on
 * some drivers (lavapipe) weights read from uniform memory are much faster than from storage.
 */
export type StorageAccess = 'read' | 'write' | 'uniform';

export interface KernelSpec {
  /** Unique, human name used in errors and stats, e.g. `conv2d_3x3_forward`. */
  name: string;
  /** File name in wgsl/ without `.wgsl`. */
  shader: string;
  /** Other wgsl/ files pasted before `shader` (WGSL has no include). */
  include?: readonly string[];
  entryPoint?: string;
  bindings: readonly StorageAccess[];
  uniforms: boolean;
  /** WGSL `override` constants (workgroup sizes, tile sizes). Never shapes: those go in uniforms. */
  constants?: Readonly<Record<string, number>>;
  /** `{{KEY}}` tokens in the source replaced by text, for what overrides cannot express. */
  defines?: Readonly<Record<string, string | number>>;
}

/** Declares a kernel; call once at module level, never in a loop. */
export function defineKernel(spec: KernelSpec): Readonly<KernelSpec> {
  return Object.freeze({ ...spec });
}

/**
 * Builds a uniform block in WGSL layout order: scalars are 4 bytes; call `align(16)` or use
 * `vec4` helpers where the struct needs it. The block is padded to 16 bytes at the end.
 */
export class Uniforms {
  private words: number[] = [];
  private kinds: ('u' | 'i' | 'f')[] = [];

  u32(...values: number[]): this {
    for (const v of values) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`Uniforms.u32: ${v} is not a u32`);
      this.words.push(v);
      this.kinds.push('u');
    }
    return this;
  }

  i32(...values: number[]): this {
    for (const v of values) {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`Uniforms.i32: ${v} is not an i32`);
      this.words.push(v);
      this.kinds.push('i');
    }
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) {
      this.words.push(v);
      this.kinds.push('f');
    }
    return this;
  }

  /** Pads with zero words up to a multiple of `bytes` (4, 8 or 16). */
  align(bytes: 8 | 16): this {
    while ((this.words.length * 4) % bytes !== 0) this.u32(0);
    return this;
  }

  bytes(): ArrayBuffer {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buffer = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buffer);
    let f: Float32Array | null = null;
    for (let k = 0; k < this.words.length; k++) {
      const v = this.words[k] as number;
      if (this.kinds[k] !== 'f') u[k] = v >>> 0; // an i32 is its two's-complement bit pattern
      else (f ??= new Float32Array(buffer))[k] = v;
    }
    return buffer;
  }
}

/**
 * Workgroup counts for `count` workgroups laid out in x then y, so no dimension exceeds `maxPerDim`.
 * The shader recovers the flat index as `wid.x + wid.y * nwg.x` and skips indices ≥ count.
 */
export function flatWorkgroups(count: number, maxPerDim = 65535): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  if (y > maxPerDim) throw new RangeError(`${count} workgroups do not fit a ${maxPerDim}² grid`);
  return [Math.ceil(count / y), y];
}
