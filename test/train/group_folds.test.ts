import { describe, expect, it } from 'vitest';
import { groupKFold, type GroupedImage } from '../../src/train/group_folds.ts';

/** Three classes with uneven group counts and group sizes 1–3, like the LC25000 dev set in small. */
function images(): GroupedImage[] {
  const out: GroupedImage[] = [];
  const groupsPerClass = [11, 13, 12];
  groupsPerClass.forEach((n, label) => {
    for (let g = 0; g < n; g++) for (let i = 0; i < 1 + ((g * 7 + label) % 3); i++) out.push({ key: `c${label}/g${g}-img${i}.jpeg`, group: `c${label}:${g}`, label });
  });
  return out;
}

const groupsIn = (list: GroupedImage[]) => new Set(list.map((i) => i.group));

describe('groupKFold', () => {
  const all = images();
  const folds = groupKFold(all, { folds: 5, valFraction: 0.2, seed: 3, heldOut: 'first' });

  it('keeps each group in one split of a fold and tests every group exactly once', () => {
    const tested = new Map<string, number>();
    folds.forEach((f, k) => {
      const [train, val, test] = [groupsIn(f.train), groupsIn(f.val), groupsIn(f.test)];
      for (const g of train) expect(val.has(g) || test.has(g), `fold ${k}: group ${g} in train and a held-out split`).toBe(false);
      for (const g of val) expect(test.has(g)).toBe(false);
      expect(train.size + val.size + test.size).toBe(36);
      for (const g of test) tested.set(g, (tested.get(g) ?? 0) + 1);
    });
    expect(tested.size).toBe(36);
    expect([...tested.values()].every((n) => n === 1)).toBe(true);
  });

  it('trains on every image of a training group and holds out the first image of a held-out group', () => {
    for (const f of folds) {
      const trainGroups = groupsIn(f.train);
      expect(f.train.length).toBe(all.filter((i) => trainGroups.has(i.group)).length);
      for (const split of [f.val, f.test]) {
        expect(split.length).toBe(groupsIn(split).size);
        for (const image of split) expect(image.key).toBe(all.filter((i) => i.group === image.group).map((i) => i.key).sort()[0]);
      }
    }
    const withAll = groupKFold(all, { folds: 5, valFraction: 0.2, seed: 3, heldOut: 'all' });
    expect(withAll.map((f) => f.train.length + f.val.length + f.test.length)).toEqual(new Array(5).fill(all.length));
    expect(withAll.map((f) => [...groupsIn(f.test)].sort())).toEqual(folds.map((f) => [...groupsIn(f.test)].sort()));
  });

  it('stratifies by class and balances fold sizes', () => {
    for (let label = 0; label < 3; label++) {
      const perFold = folds.map((f) => f.test.filter((i) => i.label === label).length);
      expect(Math.max(...perFold) - Math.min(...perFold)).toBeLessThanOrEqual(1);
      for (const f of folds) expect(f.val.filter((i) => i.label === label).length).toBeGreaterThanOrEqual(1);
    }
    const sizes = folds.map((f) => f.test.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });

  it('is a function of the seed', () => {
    const keys = (fs: typeof folds) => fs.map((f) => f.test.map((i) => i.key));
    expect(keys(groupKFold([...all].reverse(), { folds: 5, valFraction: 0.2, seed: 3, heldOut: 'first' }))).toEqual(keys(folds));
    expect(keys(groupKFold(all, { folds: 5, valFraction: 0.2, seed: 4, heldOut: 'first' }))).not.toEqual(keys(folds));
  });

  it('names the group that mixes classes and the class with too few groups', () => {
    expect(() => groupKFold([...all, { key: 'x.jpeg', group: 'c0:1', label: 2 }], { folds: 5, valFraction: 0.2, seed: 0, heldOut: 'first' })).toThrow(/group c0:1 mixes classes/);
    expect(() => groupKFold(all, { folds: 12, valFraction: 0.2, seed: 0, heldOut: 'first' })).toThrow(/class 0 has 11 groups, fewer than 12 folds/);
  });
});
