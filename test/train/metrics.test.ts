import { describe, expect, it } from 'vitest';
import { accuracy, argmax, confusionMatrix, macroAuc, oneVsRestRoc, perClassReport, rocCurve, wilsonInterval } from '../../src/train/metrics.ts';

describe('metrics', () => {
  it('confusion matrix, accuracy and per-class precision/recall/F1 (values from sklearn)', () => {
    const y = [0, 0, 1, 1, 2, 2, 2];
    const p = [0, 1, 1, 1, 2, 0, 2];
    const m = confusionMatrix(y, p, 3);
    expect(m).toEqual([[1, 1, 0], [0, 2, 0], [1, 0, 2]]);
    expect(accuracy(y, p)).toBeCloseTo(5 / 7, 12);
    const r = perClassReport(m);
    // sklearn.metrics.precision_recall_fscore_support(y, p): precision [0.5, 0.667, 1], recall [0.5, 1, 0.667]
    expect(r.map((c) => c.precision)).toEqual([0.5, 2 / 3, 1]);
    expect(r.map((c) => c.recall)).toEqual([0.5, 1, 2 / 3]);
    expect(r[1]?.f1).toBeCloseTo(0.8, 12);
    expect(r.map((c) => c.support)).toEqual([2, 2, 3]);
  });

  it('ROC and AUC match sklearn.metrics.roc_auc_score, ties included', () => {
    // sklearn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
    expect(rocCurve([0.1, 0.4, 0.35, 0.8], [false, false, true, true]).auc).toBeCloseTo(0.75, 12);
    // ties: roc_auc_score([0,1,0,1], [0.5,0.5,0.2,0.9]) == 0.875
    const tied = rocCurve([0.5, 0.5, 0.2, 0.9], [false, true, false, true]);
    expect(tied.auc).toBeCloseTo(0.875, 12);
    expect(tied.fpr).toEqual([0, 0, 0.5, 1]);
    expect(tied.tpr).toEqual([0, 0.5, 1, 1]);
    expect(Number.isNaN(rocCurve([0.2, 0.3], [true, true]).auc)).toBe(true);
  });

  it('one-vs-rest curves and macro AUC', () => {
    const probs = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.15, 0.25]];
    const curves = oneVsRestRoc(probs, [0, 1, 2, 1], 3);
    expect(curves.map((c) => c.auc)).toEqual([1, 0.75, 1]);
    expect(macroAuc(curves)).toBeCloseTo(2.75 / 3, 12);
    expect(argmax([0.1, 0.5, 0.5])).toBe(1);
  });

  it('Wilson intervals match their closed forms', () => {
    // 0/n: [0, z²/(n + z²)] = [0, 3.8415/13.8415]; 50/100: ½ ± (z/(1 + z²/n))·√(1/400 + z²/40000) = ½ ± 0.0962.
    const [lo0, hi0] = wilsonInterval(0, 10);
    expect(lo0).toBe(0);
    expect(hi0).toBeCloseTo(0.2775, 4);
    const [lo, hi] = wilsonInterval(50, 100);
    expect(lo).toBeCloseTo(0.4038, 4);
    expect(hi).toBeCloseTo(0.5962, 4);
    const [lo10, hi10] = wilsonInterval(10, 10);
    expect(lo10).toBeCloseTo(1 - hi0, 12);
    expect(hi10).toBeCloseTo(1, 12);
  });
});
