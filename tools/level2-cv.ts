/**
 * Level 2 alone, on the folds of a cross-validation (tools/cross-validate.ts): for each fold whose
 * run finished, trains Level 2 again on that run's frozen Level-1 feature maps (its cache/, copied)
 * with several seeds, exactly as `lungpath train` does (trainLevel2, the fold's kernel table), and
 * scores the test images after every epoch. Then compares, pooled over all folds' test images,
 * ways of choosing what Level 2 predicts with: the best validation epoch (what `lungpath train`
 * keeps by default), the lowest validation loss, the last epoch, the mean of the last epochs' probabilities,
 * the parameters averaged over the last epochs (BatchNorm statistics then recomputed from every
 * training map, as torch's swa_utils.update_bn does: `lungpath train --level2-average-last N`),
 * and the mean over seeds of each. Level 2 costs about a second per epoch, so this judges Level-2
 * choices on every image in minutes, where a cross-validation of Level 1 takes most of an hour.
 *
 *   npx tsx tools/level2-cv.ts --cv runs/cv-tile [--seeds 0,1,2,3,4] [--last 10] [--out CV/level2-cv]
 *     [-- the fold runs' lungpath train flags, e.g. --preset tile]
 *
 * `--summarise` rewrites the tables from OUT/epochs.json without training.
 *
 * Sanity check printed per fold: what train keeps (the best validation epoch, or the average with
 * --level2-average-last among the train flags), with the fold run's own seed, must give
 * the run's own test accuracy (report/report.json). Writes OUT/level2-cv.md and OUT/epochs.json
 * (every epoch's test probabilities, to try other rules without retraining).
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { parseTrainArgs } from '../src/train/commands/train.ts';
import { readDataset } from '../src/train/dataset.ts';
import { loadRunNetworks } from '../src/train/evaluate.ts';
import { cachedFeatures, cachedTrainFeatures } from '../src/train/features.ts';
import { useRunKernels } from '../src/train/kernels.ts';
import { evaluateImages, trainLevel2 } from '../src/train/level2.ts';
import { wilsonInterval } from '../src/train/metrics.ts';
import { collectResizeNotes, MODEL_SIZE_HINT } from '../src/train/resize_notes.ts';
import { RunFolder } from '../src/train/run_folder.ts';

interface EpochRecord {
  epoch: number;
  valAccuracy: number;
  valLoss: number;
  /** Test-image probabilities, one row per image. */
  test: number[][];
}
interface HeadRecord {
  fold: number;
  seed: number;
  epochs: EpochRecord[];
  /** Test probabilities of the parameters averaged over the last epochs, BatchNorm statistics recomputed. */
  averaged: number[][];
}
interface FoldRecord {
  fold: number;
  runSeed: number;
  runAccuracy: number;
  labels: number[];
  heads: HeadRecord[];
}

const argmax = (row: readonly number[]) => row.indexOf(Math.max(...row));
const meanRows = (tables: readonly number[][][]) => (tables[0] as number[][]).map((_, i) => (tables[0]![i] as number[]).map((_, c) => tables.reduce((a, t) => a + (t[i]![c] as number), 0) / tables.length));

/** Rules that pick a head's test probabilities from its epochs. */
function rules(last: number): { name: string; pick(h: HeadRecord): number[][] }[] {
  const best = (h: HeadRecord, better: (a: EpochRecord, b: EpochRecord) => boolean) => h.epochs.reduce((b, e) => (better(e, b) ? e : b)).test;
  return [
    { name: 'best validation accuracy (ties: lower loss): what train keeps by default', pick: (h) => best(h, (e, b) => e.valAccuracy > b.valAccuracy || (e.valAccuracy === b.valAccuracy && e.valLoss < b.valLoss)) },
    { name: 'lowest validation loss', pick: (h) => best(h, (e, b) => e.valLoss < b.valLoss) },
    { name: 'last epoch', pick: (h) => h.epochs.at(-1)!.test },
    { name: `mean probabilities of the last ${last} epochs`, pick: (h) => meanRows(h.epochs.slice(-last).map((e) => e.test)) },
    { name: `parameters averaged over the last ${last} epochs, BatchNorm statistics recomputed from the training maps (--level2-average-last ${last})`, pick: (h) => h.averaged },
  ];
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { cv: { type: 'string' }, seeds: { type: 'string', default: '0,1,2,3,4' }, last: { type: 'string', default: '10' }, out: { type: 'string' }, summarise: { type: 'boolean' } } });
  if (!values.cv) throw new Error('usage: npx tsx tools/level2-cv.ts --cv CV_OUT [--seeds 0,1,2,3,4] [--last 10] [--out DIR] [--summarise] [-- train flags]');
  const cv = resolve(values.cv);
  const out = resolve(values.out ?? join(cv, 'level2-cv'));
  const seeds = values.seeds.split(',').map(Number);
  const last = Number(values.last);
  if (!seeds.every((s) => Number.isInteger(s) && s >= 0)) throw new Error(`--seeds must list non-negative integers (got ${values.seeds})`);
  if (!Number.isInteger(last) || last < 1) throw new Error(`--last must be an integer ≥ 1 (got ${values.last})`);
  mkdirSync(out, { recursive: true });
  if (values.summarise) {
    const saved = JSON.parse(readFileSync(join(out, 'epochs.json'), 'utf8')) as FoldRecord[];
    writeSummary(saved, saved[0]!.heads.map((h) => h.seed), last, out, cv, positionals);
    return;
  }
  const folds = readdirSync(cv).filter((d) => /^fold-\d+$/.test(d) && existsSync(join(cv, d, 'run', 'report', 'report.json'))).map((d) => Number(d.slice(5))).sort((a, b) => a - b);
  if (folds.length === 0) throw new Error(`${cv}: no fold-K/run/report/report.json (run tools/cross-validate.ts first)`);
  const records: FoldRecord[] = [];
  const rt = await createNodeRuntime();
  try {
    for (const k of folds) {
      const runDir = join(cv, `fold-${k}`, 'run');
      const dataDir = join(cv, `fold-${k}`, 'data');
      const run = new RunFolder(runDir);
      const config = run.readConfig();
      const runSeed = (JSON.parse(readFileSync(join(runDir, 'train.json'), 'utf8')) as { seed: number }).seed;
      const report = JSON.parse(readFileSync(join(runDir, 'report', 'report.json'), 'utf8')) as { accuracy: number };
      useRunKernels(rt, run, (m) => console.warn(`warning: ${m}`));
      const dataset = readDataset(dataDir, { seed: runSeed });
      const { level1, level2: unused, level1Bytes: bytes } = loadRunNetworks(rt, run, config);
      unused.destroy();
      const cache = join(out, `fold-${k}`, 'cache');
      if (!existsSync(cache)) cpSync(run.cache, cache, { recursive: true });
      // decode.ts notes each resized image; said once per fold, as train and evaluate do.
      const resized = collectResizeNotes((m) => console.warn(`warning: ${m}`));
      const options = { warn: resized.warn, onMismatch: 'resize' as const };
      // With --level2-augment on, the training maps of all 8 flips/rotations, as train caches them.
      const augment = Boolean(parseTrainArgs([...positionals, '--data', dataDir])?.level2.featureVariants);
      const trainVariants = await cachedTrainFeatures(rt, cache, level1, bytes, config, dataset.splits.train, augment, options);
      const split = {
        val: await cachedFeatures(rt, cache, 'val', level1, bytes, config, dataset.splits.val, options),
        test: await cachedFeatures(rt, cache, 'test', level1, bytes, config, dataset.splits.test, options),
      };
      level1.destroy();
      const resizeLine = resized.summary(config.imageSize, MODEL_SIZE_HINT);
      if (resizeLine) console.warn(`warning: fold ${k}: ${resizeLine}`);
      const level1Hash = createHash('sha256').update(bytes).digest('hex');
      const labels = dataset.splits.test.map((i) => i.label);
      const heads: HeadRecord[] = [];
      for (const seed of seeds) {
        const headDir = join(out, `fold-${k}`, `seed-${seed}`);
        rmSync(headDir, { recursive: true, force: true });
        const settings = parseTrainArgs([...positionals, '--data', dataDir, '--out', headDir, '--seed', String(seed), '--quiet']);
        if (!settings) throw new Error('help printed');
        const head = new RunFolder(headDir);
        head.create();
        const epochs: EpochRecord[] = [];
        const t0 = Date.now();
        // With averageLast, trainLevel2 leaves `net` holding the averaged parameters (--level2-average-last).
        const o = { ...settings.level2, resume: false, averageLast: Math.min(last, settings.level2.epochs) };
        const runAveraged = settings.level2.averageLast ?? 0;
        if (runAveraged && runAveraged !== o.averageLast) throw new Error(`the fold runs average Level 2 over ${runAveraged} epochs (--level2-average-last); pass --last ${runAveraged}`);
        const { net } = await trainLevel2([rt], head, config, trainVariants, split.val, level1Hash, o, async (summary, n) => {
          const r = await evaluateImages(rt, n, split.test, config, o.batchSize);
          epochs.push({ epoch: summary.epoch, valAccuracy: summary.valAccuracy, valLoss: summary.valLoss, test: r.logp.map((row) => [...row].map(Math.exp)) });
        });
        const averaged = (await evaluateImages(rt, net, split.test, config, o.batchSize)).logp.map((row) => [...row].map(Math.exp));
        net.destroy();
        rmSync(head.checkpoints, { recursive: true, force: true });
        heads.push({ fold: k, seed, epochs, averaged });
        // What the fold run kept: its own seed must reproduce its report.
        const kept = runAveraged ? averaged : rules(last)[0]!.pick({ fold: k, seed, epochs, averaged });
        const acc = kept.filter((row, i) => argmax(row) === labels[i]).length / labels.length;
        console.log(`fold ${k} seed ${seed}: Level 2 as train keeps it ${(100 * acc).toFixed(1)}% of ${labels.length} test images${seed === runSeed ? ` (the fold run: ${(100 * report.accuracy).toFixed(1)}%)` : ''}, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      }
      [...trainVariants, ...Object.values(split)].forEach((s) => s.close());
      records.push({ fold: k, runSeed, runAccuracy: report.accuracy, labels, heads });
      writeFileSync(join(out, 'epochs.json'), JSON.stringify(records));
    }
  } finally {
    rt.destroy();
  }
  writeSummary(records, seeds, last, out, cv, positionals);
}

/** Pooled accuracy of each rule, per seed and for the mean over seeds. */
function writeSummary(records: FoldRecord[], seeds: number[], last: number, out: string, cv: string, flags: string[]): void {
  const n = records.reduce((a, r) => a + r.labels.length, 0);
  const pooled = (pick: (r: FoldRecord) => number[][]) => records.reduce((a, r) => a + pick(r).filter((row, i) => argmax(row) === r.labels[i]).length, 0);
  const cell = (c: number) => {
    const [lo, hi] = wilsonInterval(c, n);
    return `${((100 * c) / n).toFixed(1)}% (${c}; ${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)})`;
  };
  const lines = [
    `Level 2 retrained on the frozen Level-1 maps of ${cv} (folds ${records.map((r) => r.fold).join(', ')}; ${n} test images pooled); train flags: ${flags.join(' ') || '(defaults)'}.`,
    '',
    `| rule | ${seeds.map((s) => `seed ${s}`).join(' | ')} | mean of the seeds (range) | mean over the ${seeds.length} seeds' probabilities |`,
    `|---|${seeds.map(() => '---:').join('|')}|---:|---:|`,
    ...rules(last).map((rule) => {
      const per = seeds.map((_, j) => pooled((r) => rule.pick(r.heads[j]!)));
      const ensemble = pooled((r) => meanRows(r.heads.map((h) => rule.pick(h))));
      const pct = (c: number) => `${((100 * c) / n).toFixed(1)}%`;
      const mean = per.reduce((a, c) => a + c, 0) / per.length;
      return `| ${rule.name} | ${per.map(cell).join(' | ')} | ${pct(mean)} (${pct(Math.min(...per))}–${pct(Math.max(...per))}) | ${cell(ensemble)} |`;
    }),
    '',
    `The fold runs themselves (report.json): ${cell(records.reduce((a, r) => a + Math.round(r.runAccuracy * r.labels.length), 0))}.`,
  ];
  writeFileSync(join(out, 'level2-cv.md'), `${lines.join('\n')}\n`);
  console.log(lines.join('\n'));
}

await main();
