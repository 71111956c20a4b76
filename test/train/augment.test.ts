/** Colour augmentation on the GPU against its float64 reference; the reference against PIL's formulas. */
import { describe, expect, it } from 'vitest';
import { augmentColour, augmentColourRef, drawAugmentation } from '../../src/train/augment.ts';
import { Rng } from '../../src/nn/random.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

/** Augments on the GPU, compares with the reference, returns the GPU result. */
async function checkAugment(rt: Runtime, count: number, size: number, factors: Float32Array, seed = 1): Promise<Float32Array> {
  const patches = randomArray(count * 3 * size * size, seed, 0, 1);
  const input = rt.upload(patches);
  const out = augmentColour(rt, input, count, size, factors);
  const got = await rt.readF32(out, patches.length);
  expectClose(got, augmentColourRef(patches, count, size, factors), { atol: 2e-6, rtol: 0 }, `augment ${count}×${size}²`);
  expectBitwiseEqual(await rt.readF32(input, patches.length), patches, 'input untouched');
  rt.release(input);
  rt.release(out);
  return got;
}

/** 3·count factors (colour, contrast, brightness per patch) drawn as the loader draws them. */
function drawnFactors(count: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from(Array.from({ length: count }, () => drawAugmentation(rng)).flatMap((a) => [a.colour, a.contrast, a.brightness]));
}

describe('augmentColourRef', () => {
  it('follows PIL ImageEnhance: Color, Contrast around the patch gray mean, Brightness, clamped', () => {
    // A 2×2 patch, pixels as [r, g, b]; stored channel-major [3, 2, 2].
    const pixels = [[0.2, 0.4, 0.6], [0.5, 0.5, 0.5], [0.9, 0.1, 0.3], [0.95, 0.9, 0.2]];
    const patch = [0, 1, 2].flatMap((c) => pixels.map((px) => px[c]!));
    const [colour, contrast, brightness] = [1.5, 1.25, 1.1];
    const clamp = (v: number) => Math.min(1, Math.max(0, v));
    const luma = ([r, g, b]: number[]) => 0.299 * r! + 0.587 * g! + 0.114 * b!;
    const coloured = pixels.map((px) => px.map((v) => clamp(luma(px) + colour * (v - luma(px)))));
    const mean = coloured.reduce((acc, px) => acc + luma(px), 0) / 4;
    const expected = [0, 1, 2].flatMap((c) => coloured.map((px) => clamp(brightness * clamp(mean + contrast * (px[c]! - mean)))));
    expect(Math.max(...coloured.flat())).toBe(1); // the Color step clamps the third pixel's red
    expectClose(augmentColourRef(patch, 1, 2, [colour, contrast, brightness]), expected, { atol: 1e-12, rtol: 0 });
  });

  it('is the identity at factors 1 and clamps to [0, 1]', () => {
    const patches = randomArray(2 * 3 * 25, 4, 0, 1);
    expectClose(augmentColourRef(patches, 2, 5, [1, 1, 1, 1, 1, 1]), patches, { atol: 1e-12, rtol: 0 });
    const strong = augmentColourRef(patches, 2, 5, [2, 2, 2, 2, 2, 2]);
    expect(Math.min(...strong)).toBe(0);
    expect(Math.max(...strong)).toBe(1);
  });

  it('draws a variant in 0..7 and factors in [1, 2)', () => {
    const rng = new Rng(9);
    const draws = Array.from({ length: 400 }, () => drawAugmentation(rng));
    expect(new Set(draws.map((d) => d.variant))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7]));
    for (const d of draws) for (const f of [d.colour, d.contrast, d.brightness]) expect(f >= 1 && f < 2).toBe(true);
  });
});

describe('augmentColour', () => {
  it.each([
    [1, 1],
    [3, 7],
    [5, 17],
    [2, 33],
  ])('%i patches of %i² with drawn factors match the reference', async (count, size) => {
    await checkAugment(await gpu(), count, size, drawnFactors(count, count * 100 + size), size);
  });

  it('is the identity at factors 1', async () => {
    const rt = await gpu();
    const patches = randomArray(3 * 3 * 81, 5, 0, 1);
    const input = rt.upload(patches);
    const out = augmentColour(rt, input, 3, 9, new Float32Array(9).fill(1));
    expectClose(await rt.readF32(out, patches.length), patches, { atol: 1e-6, rtol: 0 });
    rt.release(input);
    rt.release(out);
  });

  it('is bitwise repeatable', async () => {
    const rt = await gpu();
    const factors = drawnFactors(4, 11);
    expectBitwiseEqual(await checkAugment(rt, 4, 19, factors, 3), await checkAugment(rt, 4, 19, factors, 3));
  });

  it('chunks over patches under a lowered binding limit (4 KiB)', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    const before = rt.counters.dispatches;
    await checkAugment(rt, 7, 9, drawnFactors(7, 12), 6);
    expect(rt.counters.dispatches - before).toBe(2 * Math.ceil(7 / Math.floor((4096 - 252) / (12 * 81))));
  });

  it('rejects a wrong number of factors', async () => {
    const rt = await gpu();
    const input = rt.alloc(2 * 3 * 16 * 4);
    expect(() => augmentColour(rt, input, 2, 4, new Float32Array(5))).toThrow(/5 factors for 2 patches/);
    rt.release(input);
  });
});
