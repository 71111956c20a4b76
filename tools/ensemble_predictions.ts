/**
 * Ensembles of finished cross-validations (tools/cross-validate.ts): the test probabilities of
 * several models trained on the same folds, averaged image by image (a soft vote), and scored as
 * cross-validate pools a single model. Used by tools/cv-ensemble.ts; pure apart from reading the
 * fold reports.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { EvaluationReport } from '../src/train/evaluate.ts';
import { argmax, confusionMatrix, macroAuc, oneVsRestRoc, wilsonInterval } from '../src/train/metrics.ts';

/** One test image of a cross-validation: its fold, class and the model's answer. */
export interface FoldPrediction {
  /** `fold/class/file name`: the same image in another cross-validation on the same folds. */
  key: string;
  fold: number;
  label: number;
  /** The class the report predicted (argmax, or the majority vote of a TTA report). */
  predicted: number;
  probabilities: number[];
}

export interface CvPredictions {
  dir: string;
  classes: string[];
  /** In key order, so that two cross-validations on the same folds line up row by row. */
  images: FoldPrediction[];
}

/**
 * Every fold's test predictions of the cross-validation in `dir`, read from DIR/fold-K/`report`
 * (`run/report/report.json` by default; `colour-normalised/report.json` or `tta/report.json` for the
 * copies cross-validate scores).
 */
export function readCvPredictions(dir: string, report = join('run', 'report', 'report.json')): CvPredictions {
  if (!existsSync(dir)) throw new Error(`${dir}: no such cross-validation folder`);
  const folds = readdirSync(dir).filter((d) => /^fold-\d+$/.test(d)).map((d) => Number(d.slice(5))).sort((a, b) => a - b);
  if (folds.length === 0) throw new Error(`${dir}: no fold-K folders (run tools/cross-validate.ts first)`);
  let classes: string[] | null = null;
  const images: FoldPrediction[] = [];
  for (const fold of folds) {
    const path = join(dir, `fold-${fold}`, report);
    if (!existsSync(path)) throw new Error(`${path}: missing (fold ${fold} has not been scored; run tools/cross-validate.ts on ${dir} again)`);
    const r = JSON.parse(readFileSync(path, 'utf8')) as EvaluationReport;
    if (classes === null) classes = r.classes;
    else if (r.classes.join() !== classes.join()) throw new Error(`${path}: classes ${r.classes.join(', ')}, fold ${folds[0]} has ${classes.join(', ')}`);
    for (const p of r.predictions) {
      const label = r.classes.indexOf(p.label);
      images.push({ key: `${fold}/${p.label}/${basename(p.file)}`, fold, label, predicted: r.classes.indexOf(p.predicted), probabilities: p.probabilities });
    }
  }
  images.sort((a, b) => a.fold - b.fold || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { dir, classes: classes as string[], images };
}

/** Refuses members that were not scored on the same folds and test images (another split seed, another dataset). */
export function checkSameFolds(members: readonly CvPredictions[]): void {
  const [first, ...rest] = members;
  if (!first) throw new Error('no cross-validation given');
  for (const m of rest) {
    if (m.classes.join() !== first.classes.join()) throw new Error(`${m.dir}: classes ${m.classes.join(', ')}, ${first.dir} has ${first.classes.join(', ')}`);
    const mismatch = m.images.findIndex((x, i) => x.key !== first.images[i]?.key);
    if (m.images.length !== first.images.length || mismatch >= 0) {
      const at = mismatch >= 0 ? m.images[mismatch]!.key : `image ${Math.min(m.images.length, first.images.length) + 1}`;
      throw new Error(`${m.dir} and ${first.dir} were not scored on the same folds (${m.images.length} and ${first.images.length} test images; first difference at ${at}): use cross-validations with the same data, folds and split seed`);
    }
  }
}

/** Image-by-image mean of the members' probabilities (members already checked by checkSameFolds). */
export function meanProbabilities(members: readonly CvPredictions[]): number[][] {
  const first = members[0] as CvPredictions;
  return first.images.map((image, i) => image.probabilities.map((_, c) => members.reduce((a, m) => a + (m.images[i]!.probabilities[c] as number), 0) / members.length));
}

export interface PooledScore {
  images: number;
  correct: number;
  accuracy: number;
  wilson95: [number, number];
  macroAuc: number;
  confusion: number[][];
  /** Correct images per fold, in fold order. */
  perFold: number[];
  /** Whether each image (in key order) was classified right. */
  right: boolean[];
}

/** Pools predictions over all folds: accuracy with its 95% Wilson interval, macro AUC, confusion. */
export function scorePooled(images: readonly FoldPrediction[], predicted: readonly number[], probabilities: readonly number[][], classes: number): PooledScore {
  const labels = images.map((x) => x.label);
  const right = images.map((x, i) => predicted[i] === x.label);
  const correct = right.filter(Boolean).length;
  const folds = [...new Set(images.map((x) => x.fold))].sort((a, b) => a - b);
  return {
    images: images.length,
    correct,
    accuracy: correct / images.length,
    wilson95: wilsonInterval(correct, images.length),
    macroAuc: macroAuc(oneVsRestRoc(probabilities, labels, classes)),
    confusion: confusionMatrix(labels, predicted, classes),
    perFold: folds.map((f) => images.filter((x, i) => x.fold === f && right[i]).length),
    right,
  };
}

/** A member scored as its reports say (their own `predicted`, so a TTA report keeps its majority vote). */
export const scoreMember = (m: CvPredictions): PooledScore =>
  scorePooled(
    m.images,
    m.images.map((x) => x.predicted),
    m.images.map((x) => x.probabilities),
    m.classes.length,
  );

/** The members' soft vote: the class of largest mean probability. */
export function scoreEnsemble(members: readonly CvPredictions[]): PooledScore {
  checkSameFolds(members);
  const mean = meanProbabilities(members);
  const first = members[0] as CvPredictions;
  return scorePooled(first.images, mean.map(argmax), mean, first.classes.length);
}

/**
 * Exact two-sided sign test of `a` images right only one way against `b` only the other (ties
 * dropped): the probability of a split at least this uneven if either way were equally likely.
 */
export function signTestP(a: number, b: number): number {
  const n = a + b;
  if (n === 0) return 1;
  const k = Math.min(a, b);
  let tail = 0;
  let term = 0.5 ** n; // C(n, 0) / 2^n
  for (let i = 0; i <= k; i++) {
    tail += term;
    term = (term * (n - i)) / (i + 1);
  }
  return Math.min(1, 2 * tail);
}

/** All subsets of `items` with `size` elements, in lexicographic order of positions. */
export function subsets<T>(items: readonly T[], size: number): T[][] {
  if (size === 0) return [[]];
  if (size > items.length) return [];
  const [head, ...tail] = items as [T, ...T[]];
  return [...subsets(tail, size - 1).map((s) => [head, ...s]), ...subsets(tail, size)];
}
