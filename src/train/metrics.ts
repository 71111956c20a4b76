/**
 * Classification metrics: accuracy, confusion matrix, per-class precision/recall/F1, and
 * one-vs-rest ROC curves with AUC (ties in scores handled as one step, as scikit-learn's roc_curve).
 */

export interface ClassReport {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** confusion[true][predicted] counts. */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: number): number[][] {
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < labels.length; i++) {
    const row = m[labels[i] as number];
    if (!row) throw new RangeError(`label ${labels[i]} is not a class index below ${classes}`);
    row[predictions[i] as number] = (row[predictions[i] as number] ?? 0) + 1;
  }
  return m;
}

export function accuracy(labels: ArrayLike<number>, predictions: ArrayLike<number>): number {
  if (labels.length === 0) return NaN;
  let right = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] === predictions[i]) right++;
  return right / labels.length;
}

/** Precision, recall, F1 and support per class from a confusion matrix (0 where undefined, as sklearn). */
export function perClassReport(confusion: number[][]): ClassReport[] {
  return confusion.map((row, c) => {
    const tp = row[c] ?? 0;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, r) => a + (r[c] ?? 0), 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { precision, recall, f1, support };
  });
}

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  auc: number;
}

/** ROC of `scores` for positives `isPositive`; AUC by the trapezoid rule. NaN AUC when a side is empty. */
export function rocCurve(scores: ArrayLike<number>, isPositive: ArrayLike<boolean>): RocCurve {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number));
  let positives = 0;
  for (let i = 0; i < isPositive.length; i++) if (isPositive[i]) positives++;
  const negatives = scores.length - positives;
  const fpr = [0];
  const tpr = [0];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    if (isPositive[i]) tp++;
    else fp++;
    const next = order[k + 1];
    if (next === undefined || scores[next] !== scores[i]) {
      fpr.push(negatives ? fp / negatives : NaN);
      tpr.push(positives ? tp / positives : NaN);
    }
  }
  let auc = 0;
  for (let k = 1; k < fpr.length; k++) auc += (((fpr[k] as number) - (fpr[k - 1] as number)) * ((tpr[k] as number) + (tpr[k - 1] as number))) / 2;
  return { fpr, tpr, auc: positives && negatives ? auc : NaN };
}

/** One-vs-rest ROC per class from probabilities [n][classes]. */
export function oneVsRestRoc(probabilities: readonly ArrayLike<number>[], labels: ArrayLike<number>, classes: number): RocCurve[] {
  return Array.from({ length: classes }, (_, c) =>
    rocCurve(
      probabilities.map((p) => p[c] as number),
      Array.from({ length: labels.length }, (_, i) => labels[i] === c),
    ),
  );
}

/** Mean of the defined AUCs. */
export function macroAuc(curves: readonly RocCurve[]): number {
  const defined = curves.map((c) => c.auc).filter((a) => !Number.isNaN(a));
  return defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : NaN;
}

/**
 * 95% Wilson score interval of `k` successes in `n` trials: the accuracy range a test split of `n`
 * images supports (unlike the normal approximation, it stays inside [0, 1] and is not empty at 0
 * or n).
 */
export function wilsonInterval(k: number, n: number): [number, number] {
  const z = 1.959963984540054; // the 97.5% normal quantile
  const p = k / n;
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Index of the largest value (first on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}
