/**
 * Cross-validation by group: judges a training setting on every image of a dataset instead of one
 * small test split. The images of all splits are pooled and dealt into folds by group (a source
 * tile, slide or patient, read from a CSV; src/train/group_folds.ts), so no tissue is both trained
 * on and scored; each fold is a full `lungpath train` run on its own train/val/test folders (links
 * to the images), and the test predictions of all folds are pooled: accuracy with a 95% Wilson
 * interval, confusion, macro AUC, and the colour-only baselines fitted and scored on the same folds.
 * Each fold's model and the baselines are also scored on a colour-normalised copy of its test images
 * (each image's per-channel RGB mean and std set to the fold's training average; colour_normalised_copy.ts),
 * where colour alone is at chance: what a model keeps there it learned from the tissue. With --tta,
 * each fold's model is also scored with 8-way flip/rotation test-time augmentation (majority vote,
 * as `lungpath evaluate --tta`) on its test images, in OUT/fold-k/tta/.
 *
 *   npx tsx tools/cross-validate.ts --data DIR [--groups CSV] [--file-column file] [--group-column group]
 *     [--folds 5] [--val-fraction 0.15] [--held-out first|all] [--split-seed 0] [--only-folds 0,2]
 *     [--by-column COL] [--tta] [--out runs/cv] [-- lungpath train flags, e.g. --preset tile --seed 1]
 *
 * --groups defaults to DIR/manifest.csv; its --file-column holds each image's path relative to DIR.
 * A fold whose run already holds report/report.json is read, not retrained; one with checkpoints
 * is resumed. `--only-folds` trains some folds (run two invocations side by side on different
 * folds, then one without it to summarise all). `--by-column COL` adds the pooled accuracy of the
 * test images for each value of that CSV column (a site, scanner or stain batch; for the LC25000
 * dev set `split`, the fixed split each image came from). Writes OUT/cv.md and OUT/cv.json.
 *
 * The LC25000 dev set (groups of rotated and flipped copies of one source tile; score one image per
 * held-out group):
 *
 *   npx tsx tools/cross-validate.ts --data /work/shared/data/lc25000-lung-dev --group-column lc25000_clean_group --out runs/cv -- --preset tile
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeRuntime } from '../src/kernels/node.ts';
import type { Runtime } from '../src/kernels/runtime.ts';
import { averageChannelStats } from '../src/nn/colour_normalise.ts';
import { parseTrainArgs, train } from '../src/train/commands/train.ts';
import { readDataset, type Dataset } from '../src/train/dataset.ts';
import type { EvaluationReport } from '../src/train/evaluate.ts';
import { groupKFold, type GroupedImage, type GroupFold } from '../src/train/group_folds.ts';
import { useRunKernels } from '../src/train/kernels.ts';
import { parseCsv } from '../src/slide/labels.ts';
import { confusionMatrix, macroAuc, oneVsRestRoc, wilsonInterval } from '../src/train/metrics.ts';
import { RunFolder } from '../src/train/run_folder.ts';
import { COLOUR_BASELINES, colourBaselinePredictions, colourStats, type ColourStats } from './colour_baselines.ts';
import { colourNormalise, evaluateCopy } from './colour_normalised_copy.ts';

const USAGE = 'usage: npx tsx tools/cross-validate.ts --data DIR [--groups CSV] [--file-column file] [--group-column group] [--folds 5] [--val-fraction 0.15] [--held-out first|all] [--split-seed 0] [--only-folds 0,2] [--by-column COL] [--tta] [--out runs/cv] [-- lungpath train flags]';

/** Rows of a CSV with a header line, as records by column name. */
function readCsvRecords(path: string): Record<string, string>[] {
  const [header = [], ...rows] = parseCsv(readFileSync(path, 'utf8')).filter((r) => r.length > 1 || r[0] !== '');
  return rows.map((fields, i) => {
    if (fields.length !== header.length) throw new Error(`${path}: row ${i + 2} has ${fields.length} fields, the header ${header.length}`);
    return Object.fromEntries(header.map((h, j) => [h, fields[j] as string]));
  });
}

/** Where linkFold links `image` of `split` under the fold's data folder `dir`. */
const linkPath = (dir: string, split: string, classes: readonly string[], image: GroupedImage) => join(dir, split, classes[image.label] as string, basename(image.key));

/** Links a fold's images into OUT/data/{train,val,test}/<CLASS>/ (a fresh folder each time). */
function linkFold(fold: GroupFold, classes: readonly string[], dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  for (const [split, images] of Object.entries(fold)) {
    for (const image of images as GroupedImage[]) {
      const link = linkPath(dir, split, classes, image);
      mkdirSync(dirname(link), { recursive: true });
      if (existsSync(link)) throw new Error(`${image.key}: another image of class ${classes[image.label]} has the file name ${basename(image.key)}; the fold folders need distinct names per class`);
      symlinkSync(image.key, link);
    }
  }
}

/**
 * A report of fold `foldDir`'s model kept in DIR/report.json (DIR under the fold's folder) and read on
 * later calls while it is newer than the fold run's own report (a fold trained again makes it
 * stale); otherwise `score` makes it again: `evaluateCopy` in DIR/run, with the fold's kernel table.
 */
async function keptFoldReport(rt: Runtime, foldDir: string, dir: string, score: (runDir: string, copyDir: string) => Promise<EvaluationReport>): Promise<EvaluationReport> {
  const reportPath = join(dir, 'report.json');
  if (existsSync(reportPath) && statSync(reportPath).mtimeMs >= statSync(join(foldDir, 'run', 'report', 'report.json')).mtimeMs) {
    return JSON.parse(readFileSync(reportPath, 'utf8')) as EvaluationReport;
  }
  const runDir = join(foldDir, 'run');
  useRunKernels(rt, new RunFolder(runDir), (m) => console.warn(`warning: ${m}`));
  const report = await score(runDir, join(dir, 'run'));
  writeFileSync(reportPath, `${JSON.stringify(report)}\n`);
  return report;
}

/**
 * Fold k's model scored on the colour-normalised copy of its test images (written under
 * OUT/fold-k/colour-normalised/, its report kept there), and the copy's colour statistics for the
 * baselines.
 */
async function scoreNormalisedCopy(rt: Runtime, foldDir: string, trainStats: readonly ColourStats[]): Promise<{ report: EvaluationReport; stats: ColourStats[] }> {
  const dir = join(foldDir, 'colour-normalised');
  const report = await keptFoldReport(rt, foldDir, dir, async (runDir, copyDir) => {
    const foldData: Dataset = readDataset(join(foldDir, 'data'), { seed: 0 });
    rmSync(dir, { recursive: true, force: true });
    const images = await colourNormalise(foldData.splits.test, averageChannelStats(trainStats), join(dir, 'data', 'test'));
    return evaluateCopy(rt, runDir, copyDir, { ...foldData, root: join(dir, 'data'), splits: { train: [], val: [], test: images } });
  });
  const stats: ColourStats[] = [];
  for (const p of report.predictions) stats.push(await colourStats(p.file));
  return { report, stats };
}

/** Fold k's model scored with 8-way test-time augmentation on its test images, in OUT/fold-k/tta/ (its report kept there). */
function scoreWithTta(rt: Runtime, foldDir: string): Promise<EvaluationReport> {
  return keptFoldReport(rt, foldDir, join(foldDir, 'tta'), (runDir, copyDir) => evaluateCopy(rt, runDir, copyDir, readDataset(join(foldDir, 'data'), { seed: 0 }), true));
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      groups: { type: 'string' },
      'file-column': { type: 'string', default: 'file' },
      'group-column': { type: 'string', default: 'group' },
      folds: { type: 'string', default: '5' },
      'val-fraction': { type: 'string', default: '0.15' },
      'held-out': { type: 'string', default: 'first' },
      'split-seed': { type: 'string', default: '0' },
      'only-folds': { type: 'string' },
      'by-column': { type: 'string' },
      tta: { type: 'boolean' },
      out: { type: 'string', default: 'runs/cv' },
    },
  });
  if (!values.data) throw new Error(USAGE);
  const heldOut = values['held-out'];
  if (heldOut !== 'first' && heldOut !== 'all') throw new Error(`--held-out must be first or all (got ${heldOut})`);
  const data = resolve(values.data);
  const out = resolve(values.out);
  const groupsPath = resolve(values.groups ?? join(data, 'manifest.csv'));
  const trainFlags = positionals;
  const nFolds = Number(values.folds);

  const dataset = readDataset(data, { seed: 0 });
  const all = [...dataset.splits.train, ...dataset.splits.val, ...dataset.splits.test];
  const rows = readCsvRecords(groupsPath);
  for (const column of [values['file-column'], values['group-column'], ...(values['by-column'] ? [values['by-column']] : [])]) {
    if (rows.length && !(column in rows[0]!)) throw new Error(`${groupsPath}: no column "${column}" (columns: ${Object.keys(rows[0]!).join(', ')})`);
  }
  const rowOf = new Map(rows.map((r) => [resolve(data, r[values['file-column']] as string), r]));
  const groupOf = new Map([...rowOf].map(([path, r]) => [path, r[values['group-column']] as string]));
  const missing = all.filter((i) => !groupOf.has(i.path));
  if (missing.length) throw new Error(`${groupsPath}: ${missing.length} of ${all.length} images have no row (first: ${relative(data, missing[0]!.path)})`);
  const images: GroupedImage[] = all.map((i) => ({ key: i.path, group: groupOf.get(i.path) as string, label: i.label }));
  const splitSeed = Number(values['split-seed']);
  if (!Number.isInteger(splitSeed) || splitSeed < 0) throw new Error(`--split-seed must be a non-negative integer (got ${values['split-seed']})`);
  const only = values['only-folds'] ? new Set(values['only-folds'].split(',').map(Number)) : null;
  for (const k of only ?? []) if (!Number.isInteger(k) || k < 0 || k >= nFolds) throw new Error(`--only-folds: ${values['only-folds']} names a fold outside 0–${nFolds - 1}`);
  const folds = groupKFold(images, { folds: nFolds, valFraction: Number(values['val-fraction']), seed: splitSeed, heldOut });
  mkdirSync(out, { recursive: true });

  // Train (or resume, or read) each fold, then score the colour-normalised copies of those done.
  const rt = await createNodeRuntime();
  const stats = new Map<string, ColourStats>();
  const normalised = new Map<number, Awaited<ReturnType<typeof scoreNormalisedCopy>>>();
  const withTta = new Map<number, EvaluationReport>();
  let done: { k: number; fold: GroupFold }[] = [];
  try {
    for (const [k, fold] of folds.entries()) {
      if (only && !only.has(k)) continue;
      const runDir = join(out, `fold-${k}`, 'run');
      if (existsSync(join(runDir, 'report', 'report.json'))) continue;
      const dataDir = join(out, `fold-${k}`, 'data');
      linkFold(fold, dataset.classes, dataDir);
      const resume = existsSync(join(runDir, 'checkpoints'));
      const args = ['--data', dataDir, '--out', runDir, '--quiet', ...trainFlags, ...(resume ? ['--resume'] : [])];
      const settings = parseTrainArgs(args);
      if (!settings) throw new Error('help printed');
      console.log(`fold ${k} (${fold.train.length} train / ${fold.val.length} val / ${fold.test.length} test images): lungpath train ${args.join(' ')}`);
      const t0 = Date.now();
      const secondsFile = join(out, `fold-${k}`, 'seconds.txt');
      rmSync(secondsFile, { force: true }); // a resumed fold's time is not a whole run's
      await train(settings, [rt]);
      if (!resume) writeFileSync(secondsFile, `${((Date.now() - t0) / 1000).toFixed(0)}\n`);
    }
    done = folds.flatMap((fold, k) => (existsSync(join(out, `fold-${k}`, 'run', 'report', 'report.json')) ? [{ k, fold }] : []));
    if (done.length > 0) for (const i of images) stats.set(i.key, await colourStats(i.key));
    for (const { k, fold } of done) {
      const dataDir = join(out, `fold-${k}`, 'data');
      if (!existsSync(dataDir)) linkFold(fold, dataset.classes, dataDir);
      normalised.set(k, await scoreNormalisedCopy(rt, join(out, `fold-${k}`), fold.train.map((i) => stats.get(i.key)!)));
      if (values.tta) withTta.set(k, await scoreWithTta(rt, join(out, `fold-${k}`)));
    }
  } finally {
    rt.destroy();
  }

  // Pool the folds that have a report.
  if (done.length === 0) return;
  const labelled = (list: GroupedImage[]) => list.map((i) => ({ stats: stats.get(i.key)!, label: i.label }));
  const labels: number[] = [];
  const predicted: number[] = [];
  const probabilities: number[][] = [];
  const baselineCorrect = COLOUR_BASELINES.map(() => 0);
  /** Per baseline: test images only the model classifies correctly, and only the baseline. */
  const disagreements = COLOUR_BASELINES.map(() => ({ onlyModel: 0, onlyBaseline: 0 }));
  const byValue = new Map<string, { images: number; correct: number }>();
  const normLabels: number[] = [];
  const normProbabilities: number[][] = [];
  const normBaselineCorrect = COLOUR_BASELINES.map(() => 0);
  const ttaLabels: number[] = [];
  const ttaProbabilities: number[][] = [];
  const ttaChanged = { onlyWith: 0, onlyWithout: 0 };
  const perFold = done.map(({ k, fold }) => {
    const report = JSON.parse(readFileSync(join(out, `fold-${k}`, 'run', 'report', 'report.json'), 'utf8')) as EvaluationReport;
    if (report.classes.join() !== dataset.classes.join()) throw new Error(`fold ${k}: report classes ${report.classes.join(', ')} differ from the dataset's ${dataset.classes.join(', ')}`);
    if (report.predictions.length !== fold.test.length) throw new Error(`fold ${k}: report has ${report.predictions.length} predictions, the fold ${fold.test.length} test images (delete OUT/fold-${k}/run/report to rescore)`);
    const keyOfLink = new Map(fold.test.map((i) => [linkPath(join(out, `fold-${k}`, 'data'), 'test', dataset.classes, i), i.key]));
    const modelRight = new Map<string, boolean>();
    for (const p of report.predictions) {
      const key = keyOfLink.get(p.file);
      if (key === undefined) throw new Error(`fold ${k}: report names ${p.file}, not one of the fold's test images`);
      modelRight.set(key, p.predicted === p.label);
      if (values['by-column']) {
        const value = rowOf.get(key)![values['by-column']] as string;
        const tally = byValue.get(value) ?? { images: 0, correct: 0 };
        tally.images++;
        if (p.predicted === p.label) tally.correct++;
        byValue.set(value, tally);
      }
      labels.push(report.classes.indexOf(p.label));
      predicted.push(report.classes.indexOf(p.predicted));
      probabilities.push(p.probabilities);
    }
    const baselines = COLOUR_BASELINES.map((b, j) => {
      const guesses = colourBaselinePredictions(labelled(fold.train), labelled(fold.test), b.features, dataset.classes.length, b.k);
      const correct = guesses.filter((g, i) => g === fold.test[i]!.label).length;
      baselineCorrect[j]! += correct;
      fold.test.forEach((image, i) => {
        const [model, baseline] = [modelRight.get(image.key), guesses[i] === image.label];
        if (model && !baseline) disagreements[j]!.onlyModel++;
        if (baseline && !model) disagreements[j]!.onlyBaseline++;
      });
      return correct / fold.test.length;
    });
    const norm = normalised.get(k)!;
    const normTest = norm.report.predictions.map((p, i) => ({ stats: norm.stats[i]!, label: dataset.classes.indexOf(p.label) }));
    for (const p of norm.report.predictions) {
      normLabels.push(dataset.classes.indexOf(p.label));
      normProbabilities.push(p.probabilities);
    }
    COLOUR_BASELINES.forEach((b, j) => {
      const guesses = colourBaselinePredictions(labelled(fold.train), normTest, b.features, dataset.classes.length, b.k);
      normBaselineCorrect[j]! += guesses.filter((g, i) => g === normTest[i]!.label).length;
    });
    const normCorrect = norm.report.predictions.filter((p) => p.predicted === p.label).length;
    const tta = withTta.get(k);
    for (const p of tta?.predictions ?? []) {
      const right = modelRight.get(keyOfLink.get(p.file) ?? '');
      if (right === undefined) throw new Error(`fold ${k}: OUT/fold-${k}/tta/report.json names ${p.file}, not one of the fold's test images`);
      if (p.predicted === p.label && !right) ttaChanged.onlyWith++;
      if (p.predicted !== p.label && right) ttaChanged.onlyWithout++;
      ttaLabels.push(dataset.classes.indexOf(p.label));
      ttaProbabilities.push(p.probabilities);
    }
    const ttaCorrect = tta ? tta.predictions.filter((p) => p.predicted === p.label).length : null;
    const metrics = new RunFolder(join(out, `fold-${k}`, 'run')).readMetrics();
    const l1 = metrics.filter((m) => m.level === 1 && m.kind === 'epoch').at(-1);
    const l2 = metrics.filter((m) => m.level === 2 && m.kind === 'epoch').map((m) => m.valAccuracy as number);
    const seconds = existsSync(join(out, `fold-${k}`, 'seconds.txt')) ? Number(readFileSync(join(out, `fold-${k}`, 'seconds.txt'), 'utf8')) : null;
    return { fold: k, images: { train: fold.train.length, val: fold.val.length, test: fold.test.length }, accuracy: report.accuracy, correct: [...modelRight.values()].filter(Boolean).length, patches: report.patches, patchAccuracy: report.patchAccuracy, macroAuc: report.macroAuc, level1ValAccuracy: l1?.valAccuracy as number, level2BestValAccuracy: Math.max(...l2), baselines, normalised: { correct: normCorrect, accuracy: normCorrect / norm.report.predictions.length, patchAccuracy: norm.report.patchAccuracy }, ttaCorrect, seconds };
  });
  const n = labels.length;
  const correct = labels.filter((l, i) => l === predicted[i]).length;
  const [lo, hi] = wilsonInterval(correct, n);
  const patches = perFold.reduce((a, f) => a + f.patches, 0);
  const patchAccuracy = perFold.reduce((a, f) => a + f.patchAccuracy * f.patches, 0) / patches;
  const pooledAuc = macroAuc(oneVsRestRoc(probabilities, labels, dataset.classes.length));
  const confusion = confusionMatrix(labels, predicted, dataset.classes.length);
  const baselines = COLOUR_BASELINES.map((b, j) => ({ name: b.name, correct: baselineCorrect[j]!, accuracy: baselineCorrect[j]! / n, ...disagreements[j]! }));
  const normCorrect = perFold.reduce((a, f) => a + f.normalised.correct, 0);
  const [normLo, normHi] = wilsonInterval(normCorrect, n);
  const normAuc = macroAuc(oneVsRestRoc(normProbabilities, normLabels, dataset.classes.length));
  const normBaselines = COLOUR_BASELINES.map((b, j) => ({ name: b.name, correct: normBaselineCorrect[j]!, accuracy: normBaselineCorrect[j]! / n }));
  const ttaCorrect = perFold.reduce((a, f) => a + (f.ttaCorrect ?? 0), 0);
  const ttaSummary = values.tta
    ? { correct: ttaCorrect, accuracy: ttaCorrect / n, wilson95: wilsonInterval(ttaCorrect, n), macroAuc: macroAuc(oneVsRestRoc(ttaProbabilities, ttaLabels, dataset.classes.length)), perFold: perFold.map((f) => f.ttaCorrect), ...ttaChanged }
    : null;
  const byColumn = [...byValue].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([value, t]) => ({ value, ...t, accuracy: t.correct / t.images, wilson95: wilsonInterval(t.correct, t.images) }));

  const md = [
    `Data: ${data}, ${images.length} images in ${new Set(images.map((i) => i.group)).size} groups (${groupsPath}, column ${values['group-column']}); ${nFolds} folds by group (split seed ${values['split-seed']}, validation ${values['val-fraction']} of each class's other groups, held-out images: ${heldOut}); folds scored: ${done.map((d) => d.k).join(', ')}.`,
    `Training: lungpath train ${trainFlags.join(' ') || '(defaults)'}`,
    '',
    '| fold | train / val / test images | Level-1 val patches | Level-2 best val images | test images | test patches | test macro AUC | colour baselines (centroid RGB / centroid mean+std / 5-NN) | colour-normalised test images | training time |',
    '|---:|---|---:|---:|---:|---:|---:|---|---:|---:|',
    ...perFold.map((f) => `| ${f.fold} | ${f.images.train} / ${f.images.val} / ${f.images.test} | ${pct(f.level1ValAccuracy)} | ${pct(f.level2BestValAccuracy)} | ${pct(f.accuracy)} (${f.correct}/${f.images.test}) | ${pct(f.patchAccuracy)} | ${f.macroAuc.toFixed(3)} | ${f.baselines.map(pct).join(' / ')} | ${pct(f.normalised.accuracy)} (${f.normalised.correct}/${f.images.test}) | ${f.seconds === null ? '—' : `${(f.seconds / 60).toFixed(1)} min`} |`),
    '',
    `**Pooled over ${n} test images: ${pct(correct / n)} (${correct}/${n}; 95% Wilson interval ${pct(lo)}–${pct(hi)}), macro AUC ${pooledAuc.toFixed(3)}; ${pct(patchAccuracy)} of ${patches} test patches.**`,
    `Colour-only baselines on the same folds (in brackets: images only the model gets right / only the baseline): ${baselines.map((b) => `${b.name} ${pct(b.accuracy)} (${b.onlyModel} / ${b.onlyBaseline})`).join('; ')}.`,
    `Colour-normalised copies of the same test images (each image's RGB mean and std set to its fold's training average): the model ${pct(normCorrect / n)} (${normCorrect}/${n}; ${pct(normLo)}–${pct(normHi)}), macro AUC ${normAuc.toFixed(3)}; the baselines ${normBaselines.map((b) => `${b.name} ${pct(b.accuracy)}`).join('; ')}.`,
    ...(ttaSummary ? [`With 8-way flip/rotation test-time augmentation (majority vote, as lungpath evaluate --tta): ${pct(ttaSummary.accuracy)} (${ttaSummary.correct}/${n}; ${pct(ttaSummary.wilson95[0])}–${pct(ttaSummary.wilson95[1])}), macro AUC ${ttaSummary.macroAuc.toFixed(3)}; per fold ${perFold.map((f) => `${f.ttaCorrect}/${f.images.test}`).join(', ')}; images right only with it ${ttaSummary.onlyWith}, only without ${ttaSummary.onlyWithout}.`] : []),
    `Confusion (rows true ${dataset.classes.join(', ')}; columns predicted): ${confusion.map((r) => `[${r.join(', ')}]`).join(' ')}.`,
    ...(values['by-column'] ? [`By ${values['by-column']}: ${byColumn.map((b) => `${b.value} ${pct(b.accuracy)} (${b.correct}/${b.images}; ${pct(b.wilson95[0])}–${pct(b.wilson95[1])})`).join('; ')}.`] : []),
  ].join('\n');
  writeFileSync(join(out, 'cv.md'), `${md}\n`);
  writeFileSync(join(out, 'cv.json'), `${JSON.stringify({ data, groups: groupsPath, folds: nFolds, trainFlags, pooled: { images: n, correct, accuracy: correct / n, wilson95: [lo, hi], macroAuc: pooledAuc, confusion, patches, patchAccuracy }, baselines, colourNormalised: { correct: normCorrect, accuracy: normCorrect / n, wilson95: [normLo, normHi], macroAuc: normAuc, baselines: normBaselines }, tta: ttaSummary, byColumn: values['by-column'] ? { column: values['by-column'], values: byColumn } : null, perFold }, null, 2)}\n`);
  console.log(md);
}

await main();
