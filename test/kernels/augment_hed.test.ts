/**
 * HED stain augmentation: the GPU kernel against its float64 reference on awkward shapes (odd
 * sizes, a ragged count, black and white pixels, strong parameters), the reference against
 * scikit-image's rgb2hed/hed2rgb maths (the deconvolution round-trips; α = 1, β = 0 is the
 * identity; a larger haematoxylin α darkens a purple pixel more in red than in green), and the
 * parameter draw inside its bounds.
 */
import { describe, expect, it } from 'vitest';
import { augmentHed, augmentHedRef, drawHed, HED_MATRICES, RGB_FROM_HED } from '../../src/kernels/augment_hed.ts';
import { Rng } from '../../src/nn/random.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

function params(count: number, strength: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from(Array.from({ length: count }, () => drawHed(() => rng.next(), strength)).flat());
}

describe('augmentHedRef', () => {
  it('inverts the stain matrix and is the identity for α = 1, β = 0', () => {
    const m = Array.from(HED_MATRICES, Number);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        const dot = [0, 1, 2].reduce((acc, k) => acc + m[3 * i + k]! * m[9 + 3 * k + j]!, 0);
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 5);
      }
    }
    expect(Array.from(HED_MATRICES.subarray(0, 9))).toEqual(Array.from(Float32Array.from(RGB_FROM_HED.flat())));
    const patch = Array.from(randomArray(3 * 25, 4, 0.01, 1));
    const same = augmentHedRef(patch, 1, 5, [1, 1, 1, 0, 0, 0]);
    expectClose(same, Float64Array.from(patch), { atol: 1e-6, rtol: 0 }, 'identity');
  });

  it('more haematoxylin darkens a pixel mostly in red and green (the stain absorbs there)', () => {
    const purple = [0.6, 0.4, 0.8]; // one pixel, channel-major [3, 1, 1]
    const [r, g, b] = augmentHedRef(purple, 1, 1, [1.3, 1, 1, 0, 0, 0]);
    expect(r! < purple[0]! && g! < purple[1]! && b! < purple[2]!).toBe(true);
    expect(purple[0]! - r! + (purple[1]! - g!)).toBeGreaterThan(purple[2]! - b!);
  });

  it('draws α in [1 − σ, 1 + σ] and β in [−σ, σ]', () => {
    const p = params(500, 0.2, 3);
    for (let k = 0; k < 500; k++) {
      for (let j = 0; j < 3; j++) {
        expect(Math.abs(p[6 * k + j]! - 1)).toBeLessThanOrEqual(0.2 + 1e-7);
        expect(Math.abs(p[6 * k + 3 + j]!)).toBeLessThanOrEqual(0.2 + 1e-7);
      }
    }
  });
});

describe('augmentHed (GPU)', () => {
  for (const [count, size, strength] of [
    [1, 1, 0.05],
    [5, 7, 0.2],
    [3, 64, 0.5],
  ] as const) {
    it(`matches the float64 reference: ${count} patches of ${size}², σ = ${strength}`, async () => {
      const rt = await gpu();
      const patches = randomArray(count * 3 * size * size, count + size, 0, 1);
      patches[0] = 0; // black: the 1/255 floor
      patches[patches.length - 1] = 1; // white: zero density
      const p = params(count, strength, 7);
      const input = rt.upload(patches);
      const out = augmentHed(rt, input, count, size, p);
      const got = await rt.readF32(out, patches.length);
      expectClose(got, augmentHedRef(patches, count, size, p), { atol: 3e-6, rtol: 2e-5 }, `HED ${count}×${size}²`);
      expectBitwiseEqual(await rt.readF32(input, patches.length), patches, 'input untouched');
      rt.release(input);
      rt.release(out);
    });
  }

  it('refuses a parameter count that does not match', async () => {
    const rt = await gpu();
    const input = rt.upload(new Float32Array(3 * 4));
    expect(() => augmentHed(rt, input, 1, 2, new Float32Array(5))).toThrow('6 per patch');
    rt.release(input);
  });
});
