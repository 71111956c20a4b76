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
import { createNodeRuntime } from '../src/kernels/node.ts';
import { validateConfig } from '../src/nn/config.ts';
import { buildPatchNetwork } from '../src/nn/networks.ts';
import { Adam } from '../src/nn/optim.ts';
import { type TensorEntry } from '../src/nn/safetensors.ts';
import { loadWeights } from '../src/nn/weights.ts';
import { recalibrateBatchNorm } from '../src/train/bn_recalibrate.ts';
import { applyCheckpoint, averageCheckpointTensors, checkpointName, listCheckpoints, readCheckpoint, saveCheckpoint } from '../src/train/checkpoint.ts';
import { readDataset } from '../src/train/dataset.ts';
import { useRunKernels } from '../src/train/kernels.ts';
import { evaluatePatches, level1PoolImages } from '../src/train/level1.ts';
import { withoutResizeNotes } from '../src/train/resize_notes.ts';
import { RunFolder } from '../src/train/run_folder.ts';
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
useRunKernels(rt, new RunFolder(src), warn); // the versions RUN trained with, as evaluate uses

/** Epoch `epoch`'s Level-1 checkpoint: in checkpoints/ (the newest three) or kept/ (copies a screen made of every epoch's). */
function epochCheckpoint(epoch: number): string {
  const name = checkpointName('level1', epoch, 0);
  for (const dir of ['checkpoints', 'kept']) if (listCheckpoints(join(src, dir), 'level1').includes(name)) return join(src, dir, name);
  throw new Error(`${src}: no Level-1 checkpoint of epoch ${epoch} in checkpoints/ or kept/`);
}

const net = buildPatchNetwork(rt, config, info.seed);
const adam = new Adam(net.parameters(), { lr: 1e-3 });
// The last checkpoint as it is (weights, Adam state, position): the "before" figure and the copy's state.
const lastPath = epochCheckpoint(last);
const lastCheckpoint = readCheckpoint(lastPath);
const state = applyCheckpoint(lastCheckpoint, lastPath, net, adam);

// The parameters' mean (not the BatchNorm buffers: the recalibration recomputes them).
const means = averageCheckpointTensors(epochs.map(epochCheckpoint), net.parameters().map((p) => p.name));
// loadWeights takes a whole state: the last checkpoint's buffers (the recalibration overwrites them) and the averaged parameters.
const averaged = new Map<string, TensorEntry>([...lastCheckpoint.file.tensors].filter(([k]) => !k.startsWith('optim.')));
for (const [key, mean] of means) averaged.set(key, { dtype: 'F32', shape: (averaged.get(key) as TensorEntry).shape, data: new Uint8Array(mean.buffer) });

const decode = { warn: withoutResizeNotes(warn), onMismatch: 'resize' as const }; // the run was trained on these images: their size is known
const before = await evaluatePatches(rt, net, dataset.splits.val, config, { batchSize: 16, seed: info.seed, ...decode });
loadWeights(net, { tensors: averaged, metadata: {} }, `average of epochs ${epochs.join(',')}`);
const used = await recalibrateBatchNorm(rt, net, dataset.splits.train, config, { patches: DEFAULT_BN_RECALIBRATE, batchSize: 16, poolImages: level1PoolImages({}, config, rt.maxMemoryBytes), seed: info.seed, epoch: last - 1, ...decode });
const after = await evaluatePatches(rt, net, dataset.splits.val, config, { batchSize: 16, seed: info.seed, ...decode });
const pct = (r: { correct: number; count: number }) => `${((100 * r.correct) / r.count).toFixed(1)}%`;
console.log(`${src}: val patches, epoch ${last}: ${pct(before)} (loss ${before.loss.toFixed(3)}); average of ${epochs.join(',')} (BatchNorm from ${used} patches): ${pct(after)} (loss ${after.loss.toFixed(3)})`);

mkdirSync(out, { recursive: true });
for (const f of ['config.json', 'data.json', 'kernels.json', 'train.json']) if (existsSync(join(src, f))) copyFileSync(join(src, f), join(out, f));
const level1Lines = readFileSync(join(src, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l && JSON.parse(l).level === 1);
writeFileSync(join(out, 'metrics.jsonl'), level1Lines.join('\n') + '\n');
await saveCheckpoint(join(out, 'checkpoints'), 'level1', net, adam, state, config);
writeFileSync(join(out, 'average.json'), JSON.stringify({ run: src, epochs, valBefore: before, valAfter: after, bnPatches: used }, null, 1));
net.destroy();
rt.destroy();
