/**
 * Screens weight averaging of Level 1 (SWA, Izmailov et al. 2018) on a finished run without
 * retraining it: averages the parameters of the given Level-1 epoch checkpoints of RUN, recomputes
 * every BatchNorm's statistics exactly as training does after an epoch (bn_recalibrate.ts: the
 * averaged weights' own statistics, as torch's `update_bn` after SWA), prints eval-mode accuracy
 * on the validation patches (the last checkpoint's and the average's), and writes a copy of RUN
 * into OUT whose last Level-1 checkpoint holds the averaged weights (its Adam state and position
 * are the last checkpoint's). `lungpath train … --out OUT --resume` with RUN's flags then finishes
 * Level 1 at once and trains Level 2 on the averaged weights' feature maps, as the run did.
 * The recalibration and validation run at batch 16, the default: a run trained with another
 * --batch-size recalibrated at its own.
 *
 *   npx tsx tools/average-level1.ts --run RUN --out OUT --epochs 8,9,10
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { installKernelChoices, parseKernelChoicesFile } from '../src/kernels/autotune.ts';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { validateConfig } from '../src/nn/config.ts';
import { buildPatchNetwork } from '../src/nn/networks.ts';
import { Adam } from '../src/nn/optim.ts';
import { entryToFloat32, type TensorEntry } from '../src/nn/safetensors.ts';
import { loadWeights } from '../src/nn/weights.ts';
import { recalibrateBatchNorm } from '../src/train/bn_recalibrate.ts';
import { listCheckpoints, loadLatestCheckpoint, readCheckpoint, saveCheckpoint } from '../src/train/checkpoint.ts';
import { readDataset } from '../src/train/dataset.ts';
import { evaluatePatches, level1PoolImages } from '../src/train/level1.ts';
import { DEFAULT_BN_RECALIBRATE } from '../src/train/commands/train.ts';

const { values } = parseArgs({ options: { run: { type: 'string' }, out: { type: 'string' }, epochs: { type: 'string' } } });
if (!values.run || !values.out || !values.epochs) throw new Error('usage: --run RUN --out OUT --epochs 8,9,10 (see the header comment)');
const src = values.run;
const out = values.out;
const epochs = values.epochs.split(',').map(Number);
const last = Math.max(...epochs);

const config = validateConfig(JSON.parse(readFileSync(join(src, 'config.json'), 'utf8')));
const info = JSON.parse(readFileSync(join(src, 'train.json'), 'utf8')) as { data: string; seed: number };
const dataset = readDataset(info.data, { seed: info.seed });
const warn = (m: string) => console.warn(`warning: ${m}`);
const rt = await createNodeRuntime();
installKernelChoices(rt, parseKernelChoicesFile(readFileSync(join(src, 'kernels.json'), 'utf8'), join(src, 'kernels.json')).choices, join(src, 'kernels.json'));

/** Epoch `epoch`'s Level-1 checkpoint: in checkpoints/ (the newest three) or kept/ (copies a screen made of every epoch's). */
function epochCheckpoint(epoch: number): string {
  const name = `level1-epoch-${String(epoch).padStart(4, '0')}.safetensors`;
  for (const dir of ['checkpoints', 'kept']) if (listCheckpoints(join(src, dir), 'level1').includes(name)) return join(src, dir, name);
  throw new Error(`${src}: no Level-1 checkpoint of epoch ${epoch} in checkpoints/ or kept/`);
}

// Sum the parameters (not the BatchNorm buffers: they are recomputed) in float64.
const isBuffer = (name: string) => /\.(running_mean|running_var|num_batches_tracked)$/.test(name);
const sums = new Map<string, { shape: number[]; sum: Float64Array }>();
for (const epoch of epochs) {
  const { file } = readCheckpoint(epochCheckpoint(epoch));
  for (const [key, entry] of file.tensors) {
    if (key.startsWith('optim.') || isBuffer(key) || entry.dtype !== 'F32') continue;
    const values32 = entryToFloat32(entry, key);
    const acc = sums.get(key) ?? { shape: entry.shape, sum: new Float64Array(values32.length) };
    values32.forEach((v, i) => (acc.sum[i] = (acc.sum[i] as number) + v));
    sums.set(key, acc);
  }
}
// The last checkpoint's entries (its BatchNorm buffers are overwritten by the recalibration), averaged parameters in place.
const averaged = new Map<string, TensorEntry>([...readCheckpoint(epochCheckpoint(last)).file.tensors].filter(([k]) => !k.startsWith('optim.')));
for (const [key, { shape, sum }] of sums) averaged.set(key, { dtype: 'F32', shape, data: new Uint8Array(Float32Array.from(sum, (s) => s / epochs.length).buffer) });

const net = buildPatchNetwork(rt, config, info.seed);
const adam = new Adam(net.parameters(), { lr: 1e-3 });
const lastDir = join(out, 'from');
mkdirSync(lastDir, { recursive: true });
const lastName = `level1-epoch-${String(last).padStart(4, '0')}.safetensors`;
copyFileSync(epochCheckpoint(last), join(lastDir, lastName));
const state = loadLatestCheckpoint(lastDir, 'level1', net, adam, warn);
if (!state) throw new Error(`${lastDir}: the copied checkpoint did not load`);
const decode = { warn, onMismatch: 'resize' as const };
const before = await evaluatePatches(rt, net, dataset.splits.val, config, { batchSize: 16, seed: info.seed, ...decode });
loadWeights(net, { tensors: averaged, metadata: {} }, `average of epochs ${epochs.join(',')}`);
const used = await recalibrateBatchNorm(rt, net, dataset.splits.train, config, { patches: DEFAULT_BN_RECALIBRATE, batchSize: 16, poolImages: level1PoolImages({}, config, rt.maxMemoryBytes), seed: info.seed, epoch: last - 1, ...decode });
const after = await evaluatePatches(rt, net, dataset.splits.val, config, { batchSize: 16, seed: info.seed, ...decode });
const pct = (r: { correct: number; count: number }) => `${((100 * r.correct) / r.count).toFixed(1)}%`;
console.log(`${src}: val patches, epoch ${last}: ${pct(before)} (loss ${before.loss.toFixed(3)}); average of ${epochs.join(',')} (BatchNorm from ${used} patches): ${pct(after)} (loss ${after.loss.toFixed(3)})`);

for (const f of ['config.json', 'data.json', 'kernels.json', 'train.json']) if (existsSync(join(src, f))) copyFileSync(join(src, f), join(out, f));
const level1Lines = readFileSync(join(src, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l && JSON.parse(l).level === 1);
writeFileSync(join(out, 'metrics.jsonl'), level1Lines.join('\n') + '\n');
await saveCheckpoint(join(out, 'checkpoints'), 'level1', net, adam, state, config);
writeFileSync(join(out, 'average.json'), JSON.stringify({ run: src, epochs, valBefore: before, valAfter: after, bnPatches: used }, null, 1));
net.destroy();
rt.destroy();
