/**
 * tools/cv-ensemble.ts and tools/ensemble_predictions.ts on hand-made cross-validation folders:
 * members are scored as their reports say, the ensemble is the soft vote of the mean probability
 * (hand-computed here), cross-validations on other folds are refused, and the sign test's p-values
 * are the exact binomial ones.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCvPredictions, scoreEnsemble, scoreMember, signTestP, subsets } from '../../tools/ensemble_predictions.ts';

const root = mkdtempSync(join(tmpdir(), 'lungpath-cv-ensemble-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const CLASSES = ['ADC', 'NORM', 'SC'];

/** A cross-validation folder whose fold k holds `folds[k]`: [file, label, probabilities] per test image. */
function fakeCv(name: string, folds: [string, string, number[]][][], report = 'run/report/report.json'): string {
  const dir = join(root, name);
  folds.forEach((images, k) => {
    const path = join(dir, `fold-${k}`, report);
    mkdirSync(join(path, '..'), { recursive: true });
    const predictions = images.map(([file, label, probabilities]) => ({ file: `/somewhere/${name}/fold-${k}/data/test/${label}/${file}`, label, predicted: CLASSES[probabilities.indexOf(Math.max(...probabilities))], probabilities }));
    writeFileSync(path, JSON.stringify({ classes: CLASSES, predictions }));
  });
  return dir;
}

// Three images in fold 0, two in fold 1. Member a gets a1 and s2 wrong, member b gets a2 wrong;
// the mean of the two gets only a2 wrong (0.45 ADC against 0.55 SC): right only with it a1 and s2,
// only with a alone a2.
const a = fakeCv('a', [
  [['a1.jpeg', 'ADC', [0.4, 0, 0.6]], ['n1.jpeg', 'NORM', [0.1, 0.8, 0.1]], ['s1.jpeg', 'SC', [0.2, 0, 0.8]]],
  [['a2.jpeg', 'ADC', [0.6, 0, 0.4]], ['s2.jpeg', 'SC', [0.7, 0, 0.3]]],
]);
const b = fakeCv('b', [
  [['s1.jpeg', 'SC', [0.1, 0, 0.9]], ['a1.jpeg', 'ADC', [0.9, 0, 0.1]], ['n1.jpeg', 'NORM', [0.3, 0.6, 0.1]]],
  [['s2.jpeg', 'SC', [0.1, 0, 0.9]], ['a2.jpeg', 'ADC', [0.3, 0, 0.7]]],
]);

describe('cross-validation ensembles', () => {
  it('scores each member as its reports say, pooled over folds', () => {
    const s = scoreMember(readCvPredictions(a));
    expect([s.correct, s.images, s.perFold]).toEqual([3, 5, [2, 1]]);
    expect(scoreMember(readCvPredictions(b)).correct).toBe(4);
  });

  it('averages the probabilities image by image, whatever order the reports list them in', () => {
    const s = scoreEnsemble([readCvPredictions(a), readCvPredictions(b)]);
    // a1: (0.65, 0, 0.35) ADC right; n1 right; s1 right; a2: (0.45, 0, 0.55) wrong; s2: (0.4, 0, 0.6) right.
    expect([s.correct, s.perFold]).toEqual([4, [3, 1]]);
    expect(s.confusion).toEqual([
      [1, 0, 1],
      [0, 1, 0],
      [0, 0, 2],
    ]);
    expect(s.wilson95[0]).toBeLessThan(0.8);
    expect(s.wilson95[1]).toBeGreaterThan(0.8);
  });

  it('refuses cross-validations on other folds, naming both folders', () => {
    const other = fakeCv('other', [[['a1.jpeg', 'ADC', [1, 0, 0]], ['n1.jpeg', 'NORM', [0, 1, 0]]], [['s1.jpeg', 'SC', [0, 0, 1]], ['a2.jpeg', 'ADC', [1, 0, 0]], ['s2.jpeg', 'SC', [0, 0, 1]]]]);
    expect(() => scoreEnsemble([readCvPredictions(a), readCvPredictions(other)])).toThrow(/other and .*a were not scored on the same folds/);
  });

  it('names a fold that has no report', () => {
    mkdirSync(join(root, 'unscored', 'fold-0'), { recursive: true });
    expect(() => readCvPredictions(join(root, 'unscored'))).toThrow(/fold-0.*missing \(fold 0 has not been scored/);
  });

  it('gives the exact two-sided sign test', () => {
    expect(signTestP(0, 0)).toBe(1);
    expect(signTestP(5, 0)).toBeCloseTo(2 / 32, 12);
    expect(signTestP(16, 9)).toBeCloseTo(signTestP(9, 16), 12);
    // P(X ≤ 9) for X ~ Binomial(25, 1/2) is 0.114761..., doubled.
    expect(signTestP(16, 9)).toBeCloseTo(0.229523, 5);
    expect(signTestP(3, 3)).toBe(1);
  });

  it('lists every subset once', () => {
    expect(subsets([1, 2, 3, 4], 2)).toEqual([
      [1, 2],
      [1, 3],
      [1, 4],
      [2, 3],
      [2, 4],
      [3, 4],
    ]);
    expect(subsets([1, 2], 3)).toEqual([]);
  });

  it('runs from the command line and writes the figures it prints', () => {
    const json = join(root, 'ensemble.json');
    const out = execFileSync('npx', ['tsx', 'tools/cv-ensemble.ts', a, b, '--json', json], { encoding: 'utf8' });
    expect(out).toMatch(/Ensemble of all 2 \(mean probability\): 80\.0% \(4\/5;/);
    expect(out).toMatch(/Wrong in every member: 0 images/);
    expect(out).toMatch(/right only with the ensemble 2, only without 1 \(exact two-sided sign test p = 1\.000\)/);
    const written = JSON.parse(readFileSync(json, 'utf8'));
    expect(written.ensemble.correct).toBe(4);
    expect(written.everyMemberWrong).toBe(0);
    expect(written.members.map((m: { correct: number }) => m.correct)).toEqual([3, 4]);
  });
});
