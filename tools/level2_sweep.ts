/**
 * Level 2 alone, many times: for each Level-1 weight set (a run's level1.safetensors or a Level-1
 * checkpoint), each Level-2 linear init (config.ts LinearInit) and each seed, trains Level 2 exactly
 * as `lungpath train --seed S` does after Level 1 (trainLevel2: same batches, dropout and init
 * seeds, best-validation weights kept) on the frozen Level-1 feature maps, then scores the kept
 * weights on the test split (and on `--holdout DIR`'s images, if given). Prints one line per run:
 * when the training loss left ln 4 (the uniform plateau), when validation accuracy first reached
 * 90%, the best validation epoch, image-level test accuracy and wall time. Feature maps are cached
 * per weight set under OUT (copy a run's cache/ there to reuse it: the key is that of `train`).
 *
 *   npx tsx tools/level2_sweep.ts --data DIR --level1 RUN/level1.safetensors[,CKPT…] --out DIR
 *     [--seeds 0,1,2] [--inits normal-0.01,kaiming-normal] [--epochs 60] [--kernels FILE.json]
 *     [--holdout DIR] [--config RUN/config.json] [--copy-cache RUN/cache[,…]]  (one per --level1 file)
 *     [--dropout P]  (Level 2's dropout instead of the config's)
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { installKernelChoices, parseKernelChoicesFile } from '../src/kernels/autotune.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { LINEAR_INITS, TINY_CONFIG, validateConfig, type LinearInit, type ModelConfig } from '../src/nn/config.ts';
import { readFileBytes } from '../src/nn/files.ts';
import { buildImageNetwork, buildPatchNetwork } from '../src/nn/networks.ts';
import { parseSafetensors } from '../src/nn/safetensors.ts';
import { loadWeights, loadWeightsFromBytes } from '../src/nn/weights.ts';
import { readDataset } from '../src/train/dataset.ts';
import { cachedFeatures } from '../src/train/features.ts';
import { evaluateImages, trainLevel2 } from '../src/train/level2.ts';
import { RunFolder } from '../src/train/run_folder.ts';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    level1: { type: 'string' },
    out: { type: 'string' },
    seeds: { type: 'string', default: '0,1,2' },
    inits: { type: 'string', default: LINEAR_INITS.join(',') },
    epochs: { type: 'string', default: '60' },
    kernels: { type: 'string' },
    holdout: { type: 'string' },
    config: { type: 'string' },
    'copy-cache': { type: 'string' },
    dropout: { type: 'string' },
  },
});
if (!values.data || !values.level1 || !values.out) throw new Error('usage: --data DIR --level1 FILE[,FILE…] --out DIR (see the header comment)');
const seeds = values.seeds.split(',').map(Number);
const inits = values.inits.split(',') as LinearInit[];
const epochs = Number(values.epochs);
const out = values.out;
mkdirSync(out, { recursive: true });

const rt = await createNodeRuntime();
if (values.kernels) installKernelChoices(rt, parseKernelChoicesFile(readFileSync(values.kernels, 'utf8'), values.kernels).choices, values.kernels);
const dataset = readDataset(values.data, { seed: 0 });
const base: ModelConfig = values.config ? validateConfig(JSON.parse(readFileSync(values.config, 'utf8'))) : { ...structuredClone(TINY_CONFIG), classes: dataset.classes };
delete base.level2.linearInit; // the feature cache's key: as a run of the original config
const warn = (m: string) => console.warn(`warning: ${m}`);
const log = (m: string) => console.log(m);
const holdout = values.holdout ? readDataset(values.holdout, { seed: 0 }) : null;

interface Row {
  level1: string;
  init: LinearInit;
  seed: number;
  leftPlateau: number | null;
  val90: number | null;
  bestEpoch: number;
  bestVal: number;
  test: number;
  holdout: number | null;
  seconds: number;
  valCurve: number[];
  lossCurve: number[];
}
const rows: Row[] = [];

for (const [k, file] of values.level1.split(',').entries()) {
  const name = `${k}-${basename(file).replace(/\.safetensors$/, '')}`;
  const bytes = readFileBytes(file);
  const level1 = buildPatchNetwork(rt, base, 0);
  const parsed = parseSafetensors(bytes, file);
  loadWeights(level1, { tensors: new Map([...parsed.tensors].filter(([t]) => !t.startsWith('optim.'))), metadata: {} }, file);
  const cacheDir = join(out, `cache-${name}`);
  const copyFrom = values['copy-cache']?.split(',')[k];
  if (copyFrom && !existsSync(cacheDir)) cpSync(copyFrom, cacheDir, { recursive: true });
  const opts = { warn, onMismatch: 'resize' as const, log };
  const splits = {
    train: await cachedFeatures(rt, cacheDir, 'train', level1, bytes, base, dataset.splits.train, opts),
    val: await cachedFeatures(rt, cacheDir, 'val', level1, bytes, base, dataset.splits.val, opts),
    test: await cachedFeatures(rt, cacheDir, 'test', level1, bytes, base, dataset.splits.test, opts),
    holdout: holdout ? await cachedFeatures(rt, cacheDir, 'train', level1, bytes, base, holdout.splits.train, opts) : null,
  };
  level1.destroy();
  for (const init of inits) {
    const dropout = values.dropout === undefined ? base.level2.dropout : Number(values.dropout);
    const config: ModelConfig = { ...base, level2: { ...base.level2, dropout, linearInit: init } };
    for (const seed of seeds) {
      const dir = join(out, `run-${name}-${init}-${seed}`);
      const run = new RunFolder(dir);
      run.create();
      const start = performance.now();
      const o = { epochs, batchSize: 16, lr: 1e-3, seed, logInterval: 1000, stepLr: null, resume: false, quiet: true, warn, onMismatch: 'resize' as const, checkpointEvery: 0, onNonFinite: 'stop' as const, maxSkips: null };
      const { net, epochs: summaries, best } = await trainLevel2([rt], run, config, [splits.train], splits.val, name, o);
      net.destroy();
      const seconds = (performance.now() - start) / 1000;
      const kept = buildImageNetwork(rt, config, 0);
      loadWeightsFromBytes(kept, readFileBytes(run.level2Weights), run.level2Weights);
      const score = async (split: typeof splits.test) => {
        const r = await evaluateImages(rt, kept, split, config, 16);
        return r.correct / r.count;
      };
      const test = await score(splits.test);
      const hold = splits.holdout ? await score(splits.holdout) : null;
      kept.destroy();
      const row: Row = {
        level1: name,
        init,
        seed,
        leftPlateau: summaries.find((s) => s.trainLoss < 1.3)?.epoch ?? null,
        val90: summaries.find((s) => s.valAccuracy >= 0.9)?.epoch ?? null,
        bestEpoch: best?.epoch ?? 0,
        bestVal: best?.valAccuracy ?? 0,
        test,
        holdout: hold,
        seconds,
        valCurve: summaries.map((s) => s.valAccuracy),
        lossCurve: summaries.map((s) => s.trainLoss),
      };
      rows.push(row);
      const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
      console.log(`| ${name} | ${init} | ${seed} | ${row.leftPlateau ?? 'never'} | ${row.val90 ?? 'never'} | ${row.bestEpoch} (${pct(row.bestVal)}) | ${pct(test)} | ${pct(hold)} | ${seconds.toFixed(0)} s |`);
      writeFileSync(join(out, 'sweep.json'), JSON.stringify(rows, null, 1));
    }
  }
  Object.values(splits).forEach((s) => s?.close());
}
rt.destroy();
