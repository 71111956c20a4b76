/**
 * The science results of the README, from one command on a dataset folder with train/val/test
 * splits (the LC25000 dev set: /work/shared/data/lc25000-lung-dev; no image is committed):
 *
 *   npx tsx tools/science.ts --data DIR [--out runs/science] [--epochs N] [--level2-epochs N] [--seed S] [--only NAME,...]
 *
 * 1. Colour-only baselines, fitted on the train split, scored on the test split: nearest centroid
 *    on each image's mean RGB, on mean+std RGB, and 5-NN on mean+std (features z-scored with the
 *    training set's mean and std).
 * 2. A colour-normalised copy of the test split (OUT/colour-normalised/test/<CLASS>/*.png, lossless):
 *    each image's per-channel RGB mean and std set to the training images' average mean and std.
 *    The colour-only baselines fall to chance there; a model that learned tissue should not.
 * 3. The ablation, each a full `lungpath train --preset tile` run in OUT/<name>/ (same seed, data
 *    and budget; only the named change differs), scored on the raw and the colour-normalised test
 *    split: image- and patch-level accuracy and macro AUC. A run folder that already holds
 *    level2.safetensors is evaluated, not retrained (delete it to retrain). The last row, `tile`,
 *    is the preset exactly as `lungpath train --preset tile` runs it (no flag); `--only tile` runs
 *    that row alone, with the baselines, when the ablation does not fit the time; `tile-none` is the
 *    preset without its per-image colour normalisation (with it, the colour-normalised copy reaches
 *    the network as nearly the same pixels as the raw test image, so both columns measure texture).
 *    `--seed S` trains every run with that seed (default 0): the batch order alone moves the
 *    image-level figures by several points, so compare settings over seeds.
 * Writes OUT/science.md (the tables) and OUT/science.json. Choices are made on val, never on test.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { averageChannelStats } from '../src/nn/colour_normalise.ts';
import { parseTrainArgs, train } from '../src/train/commands/train.ts';
import { readDataset, type Dataset } from '../src/train/dataset.ts';
import { RunFolder } from '../src/train/run_folder.ts';
import { COLOUR_BASELINES, colourBaseline, colourStats } from './colour_baselines.ts';
import { colourNormalise, evaluateCopy } from './colour_normalised_copy.ts';

/**
 * The ablation: today's behaviour, then one change at a time (flags on top of --preset tile). The
 * first four rows keep the original's colour augmentation, which they were measured with (the
 * preset has trained without it since).
 */
export const VARIANTS: { name: string; label: string; flags: string[] }[] = [
  { name: 'original', label: "today's code (windows of 8 images, momentum BatchNorm statistics)", flags: ['--pool-images', '0', '--bn-recalibrate', '0', '--stain-augment', '0', '--colour-normalise', 'none', '--colour-augment', 'on'] },
  { name: 'pool', label: '+ near-iid image pool', flags: ['--bn-recalibrate', '0', '--stain-augment', '0', '--colour-normalise', 'none', '--colour-augment', 'on'] },
  { name: 'pool-bn', label: '+ recalibrated BatchNorm statistics', flags: ['--stain-augment', '0', '--colour-normalise', 'none', '--colour-augment', 'on'] },
  { name: 'pool-bn-hed', label: '+ HED stain augmentation (σ 0.05)', flags: ['--stain-augment', '0.05', '--colour-normalise', 'none', '--colour-augment', 'on'] },
  { name: 'tile-none', label: 'the `tile` preset without per-image colour normalisation (`--colour-normalise none`)', flags: ['--colour-normalise', 'none'] },
  { name: 'tile', label: "the `tile` preset's defaults (no flag)", flags: [] },
];

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { data: { type: 'string' }, out: { type: 'string' }, epochs: { type: 'string' }, 'level2-epochs': { type: 'string' }, seed: { type: 'string' }, only: { type: 'string' } } });
  if (!values.data) throw new Error('usage: npx tsx tools/science.ts --data DIR [--out runs/science] [--epochs N] [--level2-epochs N] [--seed S] [--only NAME,...]');
  const data = resolve(values.data);
  const out = resolve(values.out ?? 'runs/science');
  mkdirSync(out, { recursive: true });
  const dataset = readDataset(data, { seed: 0 });
  const classes = dataset.classes.length;
  const { train: trainImages, test } = dataset.splits;
  const started = Date.now();

  // 1–2: colour statistics, baselines, the colour-normalised test split.
  const trainStats = await Promise.all(trainImages.map(async (i) => ({ stats: await colourStats(i.path), label: i.label })));
  const testStats = await Promise.all(test.map(async (i) => ({ stats: await colourStats(i.path), label: i.label })));
  const target = averageChannelStats(trainStats.map((t) => t.stats));
  const normalisedDir = join(out, 'colour-normalised', 'test');
  const normalisedImages = await colourNormalise(test, target, normalisedDir);
  const normalisedStats = await Promise.all(normalisedImages.map(async (i) => ({ stats: await colourStats(i.path), label: i.label })));
  const normalised: Dataset = { ...dataset, root: join(out, 'colour-normalised'), splits: { train: [], val: [], test: normalisedImages } };
  const baselines = COLOUR_BASELINES.map((b) => ({ name: b.name, raw: colourBaseline(trainStats, testStats, b.features, classes, b.k), normalised: colourBaseline(trainStats, normalisedStats, b.features, classes, b.k) }));

  // 3: the ablation.
  const only = values.only ? new Set(values.only.split(',')) : null;
  const budget = [...(values.epochs ? ['--epochs', values.epochs] : []), ...(values['level2-epochs'] ? ['--level2-epochs', values['level2-epochs']] : []), ...(values.seed ? ['--seed', values.seed] : [])];
  const rt = await createNodeRuntime();
  const rows: Record<string, unknown>[] = [];
  try {
    for (const v of VARIANTS) {
      if (only && !only.has(v.name)) continue;
      const runDir = join(out, v.name);
      const args = ['--data', data, '--out', runDir, '--preset', 'tile', '--quiet', ...budget, ...v.flags];
      let seconds: number | null = null;
      if (!existsSync(join(runDir, 'level2.safetensors'))) {
        const settings = parseTrainArgs(args);
        if (!settings) throw new Error('help printed');
        const t0 = Date.now();
        console.log(`${v.name}: lungpath train ${args.join(' ')}`);
        await train(settings, [rt]);
        seconds = (Date.now() - t0) / 1000;
      } else {
        console.log(`${v.name}: ${runDir} already trained; evaluating it`);
      }
      const raw = await evaluateCopy(rt, runDir, join(out, 'eval', v.name, 'raw'), dataset);
      const norm = await evaluateCopy(rt, runDir, join(out, 'eval', v.name, 'colour-normalised'), normalised);
      const metrics = new RunFolder(runDir).readMetrics();
      const l1 = metrics.filter((m) => m.level === 1 && m.kind === 'epoch').at(-1);
      const l2 = metrics.filter((m) => m.level === 2 && m.kind === 'epoch');
      rows.push({
        name: v.name,
        label: v.label,
        command: `lungpath train ${args.join(' ')}`,
        seconds,
        level1TrainAccuracy: l1?.trainAccuracy,
        level1ValAccuracy: l1?.valAccuracy,
        level2BestValAccuracy: Math.max(...l2.map((m) => m.valAccuracy as number)),
        test: { accuracy: raw.accuracy, patchAccuracy: raw.patchAccuracy, macroAuc: raw.macroAuc },
        colourNormalised: { accuracy: norm.accuracy, patchAccuracy: norm.patchAccuracy, macroAuc: norm.macroAuc },
      });
      console.log(`${v.name}: test ${pct(raw.accuracy)} (patches ${pct(raw.patchAccuracy)}, AUC ${raw.macroAuc.toFixed(3)}); colour-normalised ${pct(norm.accuracy)}`);
    }
  } finally {
    rt.destroy();
  }

  const md = [
    `Data: ${data} (${trainImages.length} train / ${dataset.splits.val.length} val / ${test.length} test images, classes ${dataset.classes.join(', ')}).`,
    '',
    '| colour-only baseline (fit on train) | test accuracy | colour-normalised test |',
    '|---|---:|---:|',
    ...baselines.map((b) => `| ${b.name} | ${pct(b.raw)} | ${pct(b.normalised)} |`),
    '',
    '| `--preset tile` run | Level-1 val patches (eval mode) | Level-2 best val images | test images | test patches | test macro AUC | colour-normalised test images | colour-normalised patches | colour-normalised AUC |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const t = r.test as { accuracy: number; patchAccuracy: number; macroAuc: number };
      const n = r.colourNormalised as typeof t;
      return `| ${r.label as string} | ${pct(r.level1ValAccuracy as number)} | ${pct(r.level2BestValAccuracy as number)} | ${pct(t.accuracy)} | ${pct(t.patchAccuracy)} | ${t.macroAuc.toFixed(3)} | ${pct(n.accuracy)} | ${pct(n.patchAccuracy)} | ${n.macroAuc.toFixed(3)} |`;
    }),
    '',
    `Budget: ${budget.length ? budget.join(' ') : "the tile preset's defaults"}; total ${((Date.now() - started) / 60000).toFixed(1)} min for this invocation.`,
  ].join('\n');
  writeFileSync(join(out, 'science.md'), `${md}\n`);
  writeFileSync(join(out, 'science.json'), `${JSON.stringify({ data, target, baselines, runs: rows }, null, 2)}\n`);
  console.log(md);
}

await main();
