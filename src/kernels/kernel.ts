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

/** What `Runtime.dispatch` takes as a uniform block besides an ArrayBuffer: writes itself into the runtime's arena. */
export interface UniformBlock {
  /** Bytes the block occupies, padding included. */
  readonly byteLength: number;
  /** Writes the block, padding included, into `target` from word `wordOffset`. */
  writeTo(target: Uint32Array, wordOffset: number): void;
}

// Floats are stored as their bit patterns, converted through these two views of one word.
const f32Word = new Float32Array(1);
const u32Word = new Uint32Array(f32Word.buffer);

/**
 * Builds a uniform block in WGSL layout order: scalars are 4 bytes; call `align(16)` or use
 * `vec4` helpers where the struct needs it. The block is padded to 16 bytes at the end.
 * Pass it to `rt.dispatch` as it is: the runtime writes it straight into its uniform arena.
 */
export class Uniforms implements UniformBlock {
  /** Each word's bit pattern (an i32 as two's complement, an f32 as its IEEE bits). */
  private words: number[] = [];

  u32(...values: number[]): this {
    for (const v of values) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`Uniforms.u32: ${v} is not a u32`);
      this.words.push(v);
    }
    return this;
  }

  i32(...values: number[]): this {
    for (const v of values) {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw new RangeError(`Uniforms.i32: ${v} is not an i32`);
      this.words.push(v >>> 0);
    }
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) {
      f32Word[0] = v;
      this.words.push(u32Word[0] as number);
    }
    return this;
  }

  /** Pads with zero words up to a multiple of `bytes` (4, 8 or 16). */
  align(bytes: 8 | 16): this {
    while ((this.words.length * 4) % bytes !== 0) this.words.push(0);
    return this;
  }

  get byteLength(): number {
    return Math.max(16, Math.ceil(this.words.length / 4) * 16);
  }

  writeTo(target: Uint32Array, wordOffset: number): void {
    const words = this.words;
    const end = wordOffset + this.byteLength / 4;
    let at = wordOffset;
    for (let k = 0; k < words.length; k++) target[at++] = words[k] as number;
    while (at < end) target[at++] = 0;
  }

  /** The block as a new ArrayBuffer (what `writeTo` writes). */
  bytes(): ArrayBuffer {
    const buffer = new ArrayBuffer(this.byteLength);
    this.writeTo(new Uint32Array(buffer), 0);
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
