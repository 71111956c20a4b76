/**
 * Patch plans (CPU only): every patch once per epoch in both orders, the original's window order
 * unchanged, the pool order a pure function of (seed, epoch), and the iid metrics that show the
 * difference: a window order keeps long runs of batches on a few images, a pool does not.
 */
import { describe, expect, it } from 'vitest';
import { planMetrics, poolImagesFor, poolPlan, windowPlan } from '../../src/train/patch_plan.ts';

function coverage(plan: { image: Int32Array; patch: Int32Array }, images: number, perImage: number): number {
  return new Set(Array.from(plan.image, (i, t) => i * perImage + (plan.patch[t] as number))).size - images * perImage;
}

describe('patch plans', () => {
  it('cover every patch exactly once, in both orders', () => {
    for (const plan of [windowPlan(37, 25, 8, { seed: 1, epoch: 2, augment: true }), poolPlan(37, 25, 10, { seed: 1, epoch: 2, augment: true }), poolPlan(37, 25, 100, { seed: 1, epoch: 2, augment: false })]) {
      expect(plan.image.length).toBe(37 * 25);
      expect(coverage(plan, 37, 25)).toBe(0);
    }
  });

  it('the pool order is a pure function of (seed, epoch)', () => {
    const a = poolPlan(50, 36, 20, { seed: 3, epoch: 1, augment: true });
    const b = poolPlan(50, 36, 20, { seed: 3, epoch: 1, augment: true });
    const c = poolPlan(50, 36, 20, { seed: 3, epoch: 2, augment: true });
    expect(Array.from(b.image)).toEqual(Array.from(a.image));
    expect(Array.from(b.factors!)).toEqual(Array.from(a.factors!));
    expect(Array.from(c.image)).not.toEqual(Array.from(a.image));
  });

  it('a pool is near iid where windows are not (771 images of 36 patches, batch 16: the LC25000 dev set)', () => {
    const o = { seed: 0, epoch: 0, augment: false };
    const windows = planMetrics(windowPlan(771, 36, 8, o), 16);
    const pool = planMetrics(poolPlan(771, 36, poolImagesFor(1 << 30, 224), o), 16);
    // Windows: 50 batches hold 800 patches from about 3 windows of 8 images, so one image has > 3% of them.
    expect(windows.maxImageShare).toBeGreaterThan(0.03);
    // Pool of all images: one image's 36 patches spread over the epoch; 50 batches see at most a few of them.
    expect(pool.maxImageShare).toBeLessThan(0.012);
    expect(pool.meanDistinctImages).toBeGreaterThan(15.5);
    expect(windows.meanDistinctImages).toBeLessThan(pool.meanDistinctImages);
  });

  it('sizes the pool from a memory budget', () => {
    expect(poolImagesFor(1 << 30, 256)).toBe(5461);
    expect(poolImagesFor(1 << 30, 2560)).toBe(54);
    expect(poolImagesFor(1, 2560)).toBe(1);
  });
});
