/**
 * Patch plans (CPU only): every patch once per epoch in both orders, the original's window order
 * unchanged, the pool order a pure function of (seed, epoch), and the iid metrics that show the
 * difference: a window order keeps long runs of batches on a few images, a pool does not.
 */
import { describe, expect, it } from 'vitest';
import { jitterShift, planMetrics, poolImagesFor, poolPlan, windowPlan } from '../../src/train/patch_plan.ts';

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

  it('jitter: uniform draws in [−J, J] from their own stream, leaving the other draws unchanged', () => {
    const o = { seed: 3, epoch: 1, augment: true };
    const base = poolPlan(50, 9, 20, o);
    const jittered = poolPlan(50, 9, 20, { ...o, jitter: 12, hedStrength: 0.05 });
    expect(Array.from(jittered.image)).toEqual(Array.from(base.image));
    expect(Array.from(jittered.variant!)).toEqual(Array.from(base.variant!));
    expect(Array.from(jittered.factors!)).toEqual(Array.from(base.factors!));
    expect(Array.from(jittered.hed!)).toEqual(Array.from(poolPlan(50, 9, 20, { ...o, hedStrength: 0.05 }).hed!));
    const d = Array.from(jittered.jitter!);
    expect(d).toHaveLength(2 * 50 * 9);
    expect(d.every((v) => Number.isInteger(v) && v >= -12 && v <= 12)).toBe(true);
    const counts = new Map<number, number>();
    for (const v of d) counts.set(v, (counts.get(v) ?? 0) + 1);
    expect(counts.size).toBe(25); // every value drawn; 900 draws, 36 per value expected
    expect(Math.max(...counts.values())).toBeLessThan(70);
    expect(Array.from(poolPlan(50, 9, 20, { ...o, jitter: 12 }).jitter!)).toEqual(d);
    expect(Array.from(poolPlan(50, 9, 20, { ...o, epoch: 2, jitter: 12 }).jitter!)).not.toEqual(d);
    expect(windowPlan(50, 9, 8, { ...o, jitter: 12 }).jitter).toHaveLength(900);
    expect(poolPlan(50, 9, 20, { ...o, augment: false, jitter: 12 }).jitter).toBeUndefined();
    expect(() => poolPlan(5, 9, 2, { ...o, jitter: 1.5 })).toThrow(/jitter must be a whole number of pixels/);
  });

  it('jitterShift moves a patch by the draw, clamped inside the image', () => {
    // 112² image, 64² patches at stride 24: a 3×3 grid, origins 0, 24, 48.
    const grid = { perRow: 3, stride: 24, size: 64, width: 112, height: 112 };
    expect(jitterShift(4, 5, -7, grid)).toEqual({ x: 5, y: -7 });
    expect(jitterShift(0, -5, 12, grid)).toEqual({ x: 0, y: 12 });
    expect(jitterShift(8, 3, -12, grid)).toEqual({ x: 0, y: -12 });
    expect(jitterShift(2, 30, 0, grid)).toEqual({ x: 0, y: 0 });
    expect(jitterShift(6, -30, 30, grid)).toEqual({ x: 0, y: 0 });
    expect(jitterShift(6, 30, -30, grid)).toEqual({ x: 30, y: -30 });
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
