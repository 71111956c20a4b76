/**
 * `--level2-average-last N` (stochastic weight averaging of Level 2, level2.ts): level2.safetensors
 * holds, bitwise, the float64 mean of the parameters in the epoch-end checkpoints of the last N
 * epochs (kept for it beside the newest three), with BatchNorm statistics recomputed, not those of
 * any one epoch; a run resumed inside the last epoch, or after it, ends with the same bytes; and N
 * beyond --level2-epochs is refused naming both flags.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryToFloat32, parseSafetensors } from '../../src/nn/safetensors.ts';
import { listCheckpoints } from '../../src/train/checkpoint.ts';
import { parseTrainArgs } from '../../src/train/commands/train.ts';
import { RunFolder } from '../../src/train/run_folder.ts';
import { gpu } from '../helpers/gpu.ts';
import { microArgs, microSetup, trainMicro, type MicroSetup } from '../helpers/micro_run.ts';

let setup: MicroSetup;
let out: string;
const FLAGS = ['--epochs', '1', '--level2-epochs', '5', '--level2-average-last', '3', '--checkpoint-every', '2'];

beforeAll(async () => {
  setup = await microSetup('lungpath-level2-average-');
  out = join(setup.root, 'run');
  await trainMicro(setup, await gpu(), out, FLAGS);
}, 600_000);
afterAll(() => rmSync(setup.root, { recursive: true, force: true }));

const tensors = (path: string) => parseSafetensors(new Uint8Array(readFileSync(path)), path).tensors;

describe('--level2-average-last', () => {
  it('keeps the float64 mean of the last N epochs\' parameters, with BatchNorm statistics recomputed', () => {
    const dir = join(out, 'checkpoints');
    // The newest three files, and the epoch ends 3–5 the average reads.
    expect(listCheckpoints(dir, 'level2')).toEqual(['level2-epoch-0003.safetensors', 'level2-epoch-0004.safetensors', 'level2-epoch-0005-batch-000002.safetensors', 'level2-epoch-0005.safetensors']);
    const kept = parseSafetensors(new Uint8Array(readFileSync(join(out, 'level2.safetensors'))), 'level2.safetensors');
    expect(kept.metadata.averagedEpochs).toBe('3-5');
    const epochs = [3, 4, 5].map((e) => tensors(join(dir, `level2-epoch-000${e}.safetensors`)));
    const names = [...kept.tensors.keys()];
    const parameters = names.filter((n) => /\.(weight|bias)$/.test(n));
    expect(parameters.length).toBeGreaterThan(4);
    for (const name of parameters) {
      const values = epochs.map((t) => entryToFloat32(t.get(name)!, name));
      const mean = Float32Array.from(values[0]!, (_, i) => (values[0]![i]! + values[1]![i]! + values[2]![i]!) / 3);
      expect(Buffer.from(entryToFloat32(kept.tensors.get(name)!, name).buffer).equals(Buffer.from(mean.buffer)), name).toBe(true);
    }
    const runningMeans = names.filter((n) => n.endsWith('running_mean'));
    expect(runningMeans.length).toBeGreaterThan(0);
    for (const name of runningMeans) {
      const last = entryToFloat32(epochs[2]!.get(name)!, name);
      expect(Buffer.from(entryToFloat32(kept.tensors.get(name)!, name).buffer).equals(Buffer.from(last.buffer)), `${name} recomputed`).toBe(false);
    }
    const record = new RunFolder(out).readMetrics().find((m) => m.kind === 'average');
    expect(record).toMatchObject({ level: 2, fromEpoch: 3, toEpoch: 5, batchNormImages: 20 });
  });

  it('a run resumed inside the last epoch, or after it, ends with the same level2.safetensors', async () => {
    const reference = readFileSync(join(out, 'level2.safetensors'));
    const dir = join(out, 'checkpoints');
    rmSync(join(dir, 'level2-epoch-0005.safetensors'));
    rmSync(join(out, 'level2.safetensors'));
    await trainMicro(setup, await gpu(), out, [...FLAGS, '--resume']);
    expect(readFileSync(join(out, 'level2.safetensors')).equals(reference), 'resumed at epoch 5 batch 2').toBe(true);
    rmSync(join(out, 'level2.safetensors'));
    await trainMicro(setup, await gpu(), out, [...FLAGS, '--resume']);
    expect(readFileSync(join(out, 'level2.safetensors')).equals(reference), 'resumed after the last epoch').toBe(true);
  }, 600_000);

  it('refuses N beyond --level2-epochs, naming both flags', () => {
    expect(() => parseTrainArgs(microArgs(setup, out, ['--level2-epochs', '4', '--level2-average-last', '5']))).toThrow(/--level2-average-last 5 .*--level2-epochs 4/);
  });
});
