/**
 * HED stain augmentation on the GPU (wgsl/augment_hed.wgsl; Tellez et al. 2019, "Quantifying the
 * effects of data augmentation and stain color normalization in convolutional neural networks for
 * computational pathology"): each patch's colours are deconvolved into haematoxylin, eosin and DAB
 * concentrations with Ruifrok & Johnston's matrix, each stain is scaled by α and shifted by β
 * (per patch), and the result is converted back to RGB. Real slides differ from one another in
 * exactly these stain amounts, so the network learns to look past them. `augmentHedRef` is the
 * float64 reference; `drawHed` draws one patch's α, β for a strength σ: α uniform in [1 − σ, 1 + σ],
 * β uniform in [−σ, σ] (Tellez's "HED-light" is σ = 0.05, "HED-strong" σ = 0.2).
 */
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import type { Runtime } from './runtime.ts';

const WG = 256;
const hedKernel = defineKernel({
  name: 'augment_hed',
  shader: 'augment_hed',
  entryPoint: 'hed_apply',
  bindings: ['read', 'read', 'read', 'write'],
  uniforms: true,
  constants: { WG },
});

/** Ruifrok & Johnston's stain vectors (rows: haematoxylin, eosin, DAB), as scikit-image's rgb_from_hed. */
export const RGB_FROM_HED: readonly (readonly [number, number, number])[] = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
];

function inverse3(a: readonly (readonly number[])[]): number[][] {
  const [[a0, a1, a2], [b0, b1, b2], [c0, c1, c2]] = a as [[number, number, number], [number, number, number], [number, number, number]];
  const det = a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0);
  return [
    [(b1 * c2 - b2 * c1) / det, (a2 * c1 - a1 * c2) / det, (a1 * b2 - a2 * b1) / det],
    [(b2 * c0 - b0 * c2) / det, (a0 * c2 - a2 * c0) / det, (a2 * b0 - a0 * b2) / det],
    [(b0 * c1 - b1 * c0) / det, (a1 * c0 - a0 * c1) / det, (a0 * b1 - a1 * b0) / det],
  ];
}

/** rgb_from_hed then hed_from_rgb, row-major, as f32 (the values both kernel and reference use). */
export const HED_MATRICES = Float32Array.from([...RGB_FROM_HED.flat(), ...inverse3(RGB_FROM_HED).flat()]);

/** The smallest colour value deconvolved: one 8-bit step (keeps −ln finite on black pixels). */
const MIN_VALUE = 1 / 255;

function checkArgs(count: number, size: number, params: ArrayLike<number>, patchValues?: number): void {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`augmentHed: count must be a non-negative integer, got ${count}`);
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`augmentHed: size must be a positive integer, got ${size}`);
  if (params.length !== 6 * count) throw new RangeError(`augmentHed: ${params.length} parameters for ${count} patches (6 per patch: αH, αE, αD, βH, βE, βD)`);
  if (patchValues !== undefined && patchValues < count * 3 * size * size) {
    throw new RangeError(`augmentHed: ${patchValues} values hold fewer than ${count} patches [3, ${size}, ${size}]`);
  }
}

/** Draws one patch's [αH, αE, αD, βH, βE, βD] for strength σ from uniforms in [0, 1) (`next`). */
export function drawHed(next: () => number, strength: number): number[] {
  const alpha = [0, 1, 2].map(() => 1 + strength * (2 * next() - 1));
  const beta = [0, 1, 2].map(() => strength * (2 * next() - 1));
  return [...alpha, ...beta];
}

/**
 * HED-augments `count` patches [count, 3, size, size] (f32 in [0, 1]) with per-patch parameters
 * (6·count values, see drawHed). Returns a new buffer; `patches` is untouched.
 */
export function augmentHed(rt: Runtime, patches: GPUBuffer, count: number, size: number, params: Float32Array): GPUBuffer {
  checkArgs(count, size, params, patches.size / 4);
  const pix = size * size;
  const patchBytes = 12 * pix;
  const slack = patchBytes % 256 === 0 ? 0 : 252;
  rt.assertBindable(`HED augment patch [3, ${size}, ${size}]`, patchBytes + slack);
  const out = rt.alloc(Math.max(1, count) * patchBytes, `HED-augmented patches [${count}, 3, ${size}, ${size}]`);
  if (count === 0) return out;
  const paramBuffer = rt.upload(params, 'HED augment parameters');
  const matrices = rt.upload(HED_MATRICES, 'HED matrices');
  const perChunk = Math.floor((rt.maxBindingBytes - slack) / patchBytes);
  for (let start = 0; start < count; start += perChunk) {
    const n = Math.min(perChunk, count - start);
    const byteStart = start * patchBytes;
    const offset = Math.floor(byteStart / 256) * 256;
    const range = (buffer: GPUBuffer) => ({ buffer, offset, size: byteStart - offset + n * patchBytes });
    rt.dispatch(hedKernel, {
      bindings: [range(patches), paramBuffer, matrices, range(out)],
      uniforms: new Uniforms().u32(n, pix, (byteStart - offset) / 4, start),
      workgroups: flatWorkgroups(Math.ceil((n * pix) / WG), rt.maxWorkgroupsPerDimension),
    });
  }
  rt.release(paramBuffer);
  rt.release(matrices);
  return out;
}

/** The same augmentation in float64 (with the f32 matrices the kernel uses): the reference for augmentHed. */
export function augmentHedRef(patches: ArrayLike<number>, count: number, size: number, params: ArrayLike<number>): Float64Array {
  checkArgs(count, size, params, patches.length);
  const pix = size * size;
  const m = HED_MATRICES;
  const out = new Float64Array(count * 3 * pix);
  for (let k = 0; k < count; k++) {
    const base = k * 3 * pix;
    for (let i = 0; i < pix; i++) {
      const od = [0, 1, 2].map((ch) => -Math.log(Math.max(patches[base + ch * pix + i] as number, MIN_VALUE)));
      const s = [0, 1, 2].map((j) => (od[0] as number) * (m[9 + j] as number) + (od[1] as number) * (m[12 + j] as number) + (od[2] as number) * (m[15 + j] as number));
      const t = s.map((v, j) => (params[6 * k + j] as number) * v + (params[6 * k + 3 + j] as number));
      for (let ch = 0; ch < 3; ch++) {
        const od2 = (t[0] as number) * (m[ch] as number) + (t[1] as number) * (m[3 + ch] as number) + (t[2] as number) * (m[6 + ch] as number);
        out[base + ch * pix + i] = Math.min(1, Math.max(0, Math.exp(-od2)));
      }
    }
  }
  return out;
}
