/**
 * Level 2's flip/rotation augmentation (--level2-augment): which cached variant each training image
 * reads in an epoch, and the split view that routes reads to it.
 */
import { describe, expect, it } from 'vitest';
import { variantView, type FeatureSplit } from '../../src/train/features.ts';
import { variantChoice } from '../../src/train/level2.ts';

/** A fake split whose item i holds [variant, i]. */
function fakeSplit(variant: number, count: number): FeatureSplit {
  return { count, labels: Array.from({ length: count }, (_, i) => i % 3), itemSize: 2, read: (i) => Float32Array.of(variant, i), close: () => {} };
}

describe('Level-2 feature variants', () => {
  it('draws each image a variant in [0, 8) from (seed, epoch): the same on a rerun, another on the next epoch', () => {
    const a = variantChoice(771, 8, 0, 3);
    expect(variantChoice(771, 8, 0, 3)).toEqual(a);
    expect(variantChoice(771, 8, 0, 4)).not.toEqual(a);
    expect(variantChoice(771, 8, 1, 3)).not.toEqual(a);
    const counts = new Array(8).fill(0);
    for (const v of a) counts[v]++;
    expect(Math.max(...a)).toBeLessThan(8);
    // Uniform: each variant about 771/8 ≈ 96 times (binomial sd ≈ 9).
    for (const c of counts) expect(Math.abs(c - 771 / 8)).toBeLessThan(40);
  });

  it('uses the image as it is (variant 0) when there is one variant', () => {
    expect([...variantChoice(50, 1, 7, 2)]).toEqual(new Array(50).fill(0));
  });

  it('reads each item from its chosen variant, with the first variant\'s labels and sizes', () => {
    const variants = [0, 1, 2].map((v) => fakeSplit(v, 4));
    const view = variantView(variants, Uint8Array.of(2, 0, 1, 2));
    expect([0, 1, 2, 3].map((i) => [...view.read(i)])).toEqual([[2, 0], [0, 1], [1, 2], [2, 3]]);
    expect([view.count, view.itemSize, view.labels]).toEqual([4, 2, variants[0]?.labels]);
    expect(() => variantView(variants, new Uint8Array(3))).toThrow(/3 choices for 4 items/);
  });
});
