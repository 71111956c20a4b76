/**
 * Colour augmentation on the GPU (wgsl/augment_colour.wgsl): per patch, PIL ImageEnhance Color,
 * then Contrast, then Brightness, as the original code's PatchLevelData (factors uniform in
 * [1, 2]), each step clamped to [0, 1]. The Contrast step blends with the mean grayscale of the
 * patch, a deterministic reduction. `augmentColourRef` is the float64 reference (the spec).
 * (Moved here from src/train/augment.ts, which keeps what draws the factors.)
 */
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

const WG = 256;
const meanKernel = defineKernel({
  name: 'augment_colour_mean',
  shader: 'augment_colour',
  entryPoint: 'colour_mean',
  bindings: ['read', 'read', 'write'],
  uniforms: true,
  constants: { WG },
});
const applyKernel = defineKernel({
  name: 'augment_colour_apply',
  shader: 'augment_colour',
  entryPoint: 'colour_apply',
  bindings: ['read', 'read', 'write', 'write'],
  uniforms: true,
  constants: { WG },
});

function checkArgs(count: number, size: number, factors: ArrayLike<number>, patchValues?: number): void {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`augmentColour: count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`augmentColour: size must be a positive integer, got ${size}`);
  if (factors.length !== 3 * count) throw new RangeError(`augmentColour: ${factors.length} factors for ${count} patches (3 per patch: colour, contrast, brightness)`);
  if (patchValues !== undefined && patchValues < count * 3 * size * size) {
    throw new RangeError(`augmentColour: ${patchValues} values hold fewer than ${count} patches [3, ${size}, ${size}]`);
  }
}

/**
 * Colour-augments `count` patches [count, 3, size, size] (f32 in [0, 1]) with per-patch factors
 * `[colour, contrast, brightness]` (3·count values). Returns a new buffer; `patches` is untouched.
 */
export function augmentColour(rt: Runtime, patches: GPUBuffer, count: number, size: number, factors: Float32Array): GPUBuffer {
  checkArgs(count, size, factors, patches.size / 4);
  const pix = size * size;
  const patchBytes = 12 * pix;
  const slack = patchBytes % 256 === 0 ? 0 : 252;
  rt.assertBindable(`augment patch [3, ${size}, ${size}]`, patchBytes + slack);
  const out = rt.alloc(Math.max(1, count) * patchBytes, `augmented patches [${count}, 3, ${size}, ${size}]`);
  if (count === 0) return out;
  const factorBuffer = rt.upload(factors, 'augment factors');
  const means = rt.alloc(count * 4, 'augment patch means');
  const perChunk = Math.floor((rt.maxBindingBytes - slack) / patchBytes);
  for (let start = 0; start < count; start += perChunk) {
    const n = Math.min(perChunk, count - start);
    const byteStart = start * patchBytes;
    const offset = Math.floor(byteStart / 256) * 256;
    const range = (buffer: GPUBuffer) => ({ buffer, offset, size: byteStart - offset + n * patchBytes });
    const uniforms = new Uniforms().u32(n, pix, (byteStart - offset) / 4, start);
    rt.dispatch(meanKernel, {
      bindings: [range(patches), factorBuffer, means],
      uniforms,
      workgroups: flatWorkgroups(n, rt.maxWorkgroupsPerDimension),
    });
    rt.dispatch(applyKernel, {
      bindings: [range(patches), factorBuffer, means, range(out)],
      uniforms,
      workgroups: flatWorkgroups(Math.ceil((n * pix) / WG), rt.maxWorkgroupsPerDimension),
    });
  }
  rt.release(factorBuffer);
  rt.release(means);
  return out;
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** The same augmentation in float64: the reference for augmentColour. */
export function augmentColourRef(patches: ArrayLike<number>, count: number, size: number, factors: ArrayLike<number>): Float64Array {
  checkArgs(count, size, factors, patches.length);
  const pix = size * size;
  const out = new Float64Array(count * 3 * pix);
  const c1 = new Float64Array(3 * pix);
  for (let k = 0; k < count; k++) {
    const [colour, contrast, brightness] = [factors[3 * k], factors[3 * k + 1], factors[3 * k + 2]] as [number, number, number];
    const base = k * 3 * pix;
    let graySum = 0;
    for (let i = 0; i < pix; i++) {
      const [r, g, b] = [patches[base + i], patches[base + pix + i], patches[base + 2 * pix + i]] as [number, number, number];
      const l = 0.299 * r + 0.587 * g + 0.114 * b;
      const [r1, g1, b1] = [clamp01(l + colour * (r - l)), clamp01(l + colour * (g - l)), clamp01(l + colour * (b - l))];
      c1[i] = r1;
      c1[pix + i] = g1;
      c1[2 * pix + i] = b1;
      graySum += 0.299 * r1 + 0.587 * g1 + 0.114 * b1;
    }
    const mean = graySum / pix;
    for (let j = 0; j < 3 * pix; j++) {
      out[base + j] = clamp01(brightness * clamp01(mean + contrast * ((c1[j] as number) - mean)));
    }
  }
  return out;
}
