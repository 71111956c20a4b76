/**
 * tools/cross-validate.ts end to end on a micro dataset whose images come in groups of two (as
 * LC25000's rotated copies of one source tile): no group is both trained on and scored in a fold,
 * every group is scored exactly once (its first image), the pooled figures are the folds' own,
 * the colour-normalised copies have the fold's training average as their colour statistics, and a
 * second call reads the finished folds instead of training them again, and --tta scores every
 * fold's model with test-time augmentation without touching its run.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { averageChannelStats } from '../../src/nn/colour_normalise.ts';
import { readDataset } from '../../src/train/dataset.ts';
import { colourStats } from '../../tools/colour_baselines.ts';
import { microSetup, type MicroSetup } from '../helpers/micro_run.ts';

let setup: MicroSetup;
let out: string;
let groupOf: Map<string, string>;
const FOLDS = 2;

function crossValidate(extra: string[] = []): string {
  const args = ['tsx', 'tools/cross-validate.ts', '--data', setup.data, '--groups', join(setup.root, 'groups.csv'), '--folds', String(FOLDS), '--out', out, ...extra, '--', '--preset', setup.preset, '--epochs', '1', '--level2-epochs', '1', '--batch-size', '8', '--kernels', 'heuristic'];
  return execFileSync('npx', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(async () => {
  setup = await microSetup('lungpath-cv-tool-');
  out = join(setup.root, 'cv');
  const dataset = readDataset(setup.data, { seed: 0 });
  const all = [...dataset.splits.train, ...dataset.splits.val, ...dataset.splits.test].sort((a, b) => (a.path < b.path ? -1 : 1));
  // Groups of two images of one class, in path order.
  groupOf = new Map();
  const perClass = new Map<string, number>();
  for (const image of all) {
    const n = perClass.get(image.className) ?? 0;
    perClass.set(image.className, n + 1);
    groupOf.set(basename(image.path), `${image.className}-${Math.floor(n / 2)}`);
  }
  writeFileSync(join(setup.root, 'groups.csv'), `file,group\n${all.map((i) => `${relative(setup.data, i.path)},${groupOf.get(basename(i.path))}`).join('\n')}\n`);
  crossValidate();
}, 600_000);
afterAll(() => rmSync(setup.root, { recursive: true, force: true }));

/** File names under a fold's data/<split>/<CLASS>/. */
const filesOf = (k: number, split: string) => readdirSync(join(out, `fold-${k}`, 'data', split), { recursive: true, withFileTypes: true }).filter((e) => e.isSymbolicLink() || e.isFile()).map((e) => e.name);

describe('tools/cross-validate.ts', () => {
  it('scores every group once, by a fold that did not train on it, and pools the folds\' own figures', () => {
    const summary = JSON.parse(readFileSync(join(out, 'cv.json'), 'utf8'));
    const groups = new Set(groupOf.values());
    const scored: string[] = [];
    let correct = 0;
    for (let k = 0; k < FOLDS; k++) {
      const trained = new Set([...filesOf(k, 'train'), ...filesOf(k, 'val')].map((f) => groupOf.get(f)));
      const tested = filesOf(k, 'test').map((f) => groupOf.get(f) as string);
      expect(tested.filter((g) => trained.has(g)), `fold ${k}: groups both trained on and scored`).toEqual([]);
      scored.push(...tested);
      const report = JSON.parse(readFileSync(join(out, `fold-${k}`, 'run', 'report', 'report.json'), 'utf8'));
      correct += report.predictions.filter((p: { label: string; predicted: string }) => p.label === p.predicted).length;
    }
    expect(scored.sort()).toEqual([...groups].sort());
    expect(summary.pooled).toMatchObject({ images: groups.size, correct });
    expect(summary.baselines.map((b: { name: string }) => b.name)).toHaveLength(3);
    expect(summary.colourNormalised.baselines).toHaveLength(3);
    expect(summary.perFold.map((f: { images: { test: number } }) => f.images.test).reduce((a: number, b: number) => a + b, 0)).toBe(groups.size);
  });

  it('gives each colour-normalised test copy its fold\'s training average as colour statistics', async () => {
    const dataset = readDataset(join(out, 'fold-0', 'data'), { seed: 0 });
    const target = averageChannelStats(await Promise.all(dataset.splits.train.map((i) => colourStats(i.path))));
    const copies = readdirSync(join(out, 'fold-0', 'colour-normalised', 'data', 'test'), { recursive: true }).map(String).filter((f) => f.endsWith('.png'));
    expect(copies).toHaveLength(dataset.splits.test.length);
    const stats = await colourStats(join(out, 'fold-0', 'colour-normalised', 'data', 'test', copies[0] as string));
    for (let c = 0; c < 3; c++) {
      // Rounding to 8 bits and clamping move them a little.
      expect(Math.abs((stats.mean[c] as number) - (target.mean[c] as number)), `channel ${c} mean`).toBeLessThan(2);
      expect(Math.abs((stats.std[c] as number) - (target.std[c] as number)), `channel ${c} std`).toBeLessThan(2);
    }
  });

  it('reads finished folds on a second call instead of training them again', () => {
    const report = join(out, 'fold-0', 'run', 'report', 'report.json');
    const before = statSync(report).mtimeMs;
    const summary = readFileSync(join(out, 'cv.json'), 'utf8');
    const log = crossValidate();
    expect(log).not.toMatch(/^fold \d+ \(.*\): lungpath train/m);
    expect(log).toMatch(/Pooled over 16 test images/);
    expect(statSync(report).mtimeMs).toBe(before);
    expect(readFileSync(join(out, 'cv.json'), 'utf8')).toBe(summary);
  }, 300_000);

  it('--tta scores each fold with 8-way test-time augmentation in a copy and pools those reports', () => {
    const report = join(out, 'fold-0', 'run', 'report', 'report.json');
    const before = readFileSync(report, 'utf8');
    const log = crossValidate(['--tta']);
    expect(log).toMatch(/With 8-way flip\/rotation test-time augmentation/);
    expect(readFileSync(report, 'utf8')).toBe(before);
    const summary = JSON.parse(readFileSync(join(out, 'cv.json'), 'utf8'));
    let correct = 0;
    let onlyWith = 0;
    let onlyWithout = 0;
    for (let k = 0; k < FOLDS; k++) {
      const tta = JSON.parse(readFileSync(join(out, `fold-${k}`, 'tta', 'report.json'), 'utf8'));
      const plain = JSON.parse(readFileSync(join(out, `fold-${k}`, 'run', 'report', 'report.json'), 'utf8'));
      expect(tta.tta).toBe(true);
      expect(tta.predictions.map((p: { file: string }) => p.file)).toEqual(plain.predictions.map((p: { file: string }) => p.file));
      tta.predictions.forEach((p: { label: string; predicted: string }, i: number) => {
        const [withIt, without] = [p.predicted === p.label, plain.predictions[i].predicted === plain.predictions[i].label];
        correct += Number(withIt);
        onlyWith += Number(withIt && !without);
        onlyWithout += Number(without && !withIt);
      });
    }
    expect(summary.tta).toMatchObject({ correct, onlyWith, onlyWithout });
    expect(summary.pooled.correct - onlyWithout + onlyWith).toBe(correct);
  }, 300_000);

  it('scores a fold again when its run has a newer report than the kept TTA and colour-normalised ones', () => {
    const kept = [join(out, 'fold-1', 'tta', 'report.json'), join(out, 'fold-1', 'colour-normalised', 'report.json')];
    const before = kept.map((f) => statSync(f).mtimeMs);
    const later = new Date(Math.max(...before) + 60_000);
    utimesSync(join(out, 'fold-1', 'run', 'report', 'report.json'), later, later); // as if fold 1 had been trained again
    crossValidate(['--tta']);
    kept.forEach((f, i) => expect(statSync(f).mtimeMs, f).toBeGreaterThan(before[i] as number));
    expect(statSync(join(out, 'fold-0', 'tta', 'report.json')).mtimeMs).toBeLessThan(later.getTime());
  }, 300_000);
});
