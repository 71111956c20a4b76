/**
 * What tools/level2-cv.ts builds on. trainLevel2's `observe` hook (the tool scores the test split
 * after every epoch with it): called once per epoch, after validation, with the network in eval
 * mode; and scoring another split there changes nothing in training — the kept weights are bitwise
 * those of a run without it. recalibrateFromBatches on Level-2 feature maps (the tool's weight
 * averaging): the first BatchNorm ends with the float64 statistics of its input over all batches.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { conv2dForwardRef } from '../../src/kernels/conv2d_ref.ts';
import { derivedSizes } from '../../src/nn/config.ts';
import type { BatchNorm2d, Conv2d } from '../../src/nn/modules.ts';
import { buildImageNetwork } from '../../src/nn/networks.ts';
import { recalibrateFromBatches } from '../../src/train/bn_recalibrate.ts';
import { featureBatch, type FeatureSplit } from '../../src/train/features.ts';
import type { EpochSummary, LevelOptions } from '../../src/train/level1.ts';
import { evaluateImages, trainLevel2 } from '../../src/train/level2.ts';
import { RunFolder } from '../../src/train/run_folder.ts';
import { gpu } from '../helpers/gpu.ts';
import { MICRO } from '../helpers/micro_run.ts';

const root = mkdtempSync(join(tmpdir(), 'lungpath-level2-observe-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A split of `count` feature maps, image i of class i mod 4 with values from sin(i·j·phase). */
function split(count: number, phase: number): FeatureSplit {
  const { level2Patches: k, featureMapSize: m } = derivedSizes(MICRO);
  const itemSize = k * m * m;
  return { count, labels: Array.from({ length: count }, (_, i) => i % 4), itemSize, read: (i) => new Float32Array(itemSize).map((_, j) => Math.sin((i + 1) * (j + 1) * phase) + (i % 4) * 0.1), close: () => {} };
}

const options: LevelOptions = { epochs: 3, batchSize: 4, lr: 3e-3, seed: 2, logInterval: 1000, stepLr: null, resume: false, quiet: true, warn: () => {}, onMismatch: 'refuse', checkpointEvery: 0, onNonFinite: 'stop', maxSkips: null };

describe('trainLevel2 observe', () => {
  it('sees every epoch in eval mode, and scoring another split there leaves training bitwise unchanged', async () => {
    const rt = await gpu();
    const train = split(12, 0.37);
    const val = split(8, 0.91);
    const test = split(6, 1.53);
    const plain = new RunFolder(join(root, 'plain'));
    plain.create();
    const a = await trainLevel2([rt], plain, MICRO, [train], val, 'l1', options);
    a.net.destroy();

    const observed = new RunFolder(join(root, 'observed'));
    observed.create();
    const seen: { summary: EpochSummary; training: boolean; scored: number }[] = [];
    const b = await trainLevel2([rt], observed, MICRO, [train], val, 'l1', options, async (summary, net) => {
      const training = net.training;
      const r = await evaluateImages(rt, net, test, MICRO, 4);
      seen.push({ summary, training, scored: r.logp.length });
    });
    b.net.destroy();

    expect(seen.map((s) => s.summary)).toEqual(b.epochs);
    expect(seen.map((s) => [s.summary.epoch, s.training, s.scored])).toEqual([
      [1, false, 6],
      [2, false, 6],
      [3, false, 6],
    ]);
    expect(b.epochs).toEqual(a.epochs);
    expect(readFileSync(observed.level2Weights).equals(readFileSync(plain.level2Weights))).toBe(true);
  });
});

describe('recalibrateFromBatches on Level 2', () => {
  it('leaves the first BatchNorm the float64 statistics of its input over every batch, and restores momentum and mode', async () => {
    const rt = await gpu();
    const net = buildImageNetwork(rt, MICRO, 4);
    const data = split(10, 0.73);
    const { level2Patches: k, featureMapSize: m } = derivedSizes(MICRO);
    const batches = function* () {
      for (const indices of [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]) yield featureBatch(rt, data, indices, MICRO);
    };
    const bn = net.features.layers[1] as BatchNorm2d;
    net.eval();
    expect(await recalibrateFromBatches(rt, net, batches(), 100)).toBe(10);
    expect([net.training, bn.state_.momentum, bn.numBatchesTracked]).toEqual([false, 0.1, 0]);

    const conv = net.features.layers[0] as Conv2d;
    const all = new Float32Array(10 * data.itemSize);
    for (let i = 0; i < 10; i++) all.set(data.read(i), i * data.itemSize);
    const [cOut, , kernel] = conv.weight.shape as [number, number, number];
    const y = conv2dForwardRef(all, await conv.weight.read(), await conv.bias.read(), { n: 10, cIn: k, h: m, w: m, cOut, kh: kernel, kw: kernel, stride: conv.stride, pad: conv.pad });
    const hw = y.length / (10 * cOut);
    const mean = await bn.state_.runningMean.read();
    const variance = await bn.state_.runningVar.read();
    for (let c = 0; c < cOut; c++) {
      let s = 0;
      let q = 0;
      for (let i = 0; i < 10; i++) for (let j = 0; j < hw; j++) s += y[(i * cOut + c) * hw + j] as number;
      const mu = s / (10 * hw);
      for (let i = 0; i < 10; i++) for (let j = 0; j < hw; j++) q += ((y[(i * cOut + c) * hw + j] as number) - mu) ** 2;
      const sd = Math.sqrt(q / (10 * hw - 1));
      expect(Math.abs((mean[c] as number) - mu) / sd, `channel ${c} mean`).toBeLessThan(1e-4);
      expect(Math.abs((variance[c] as number) / sd ** 2 - 1), `channel ${c} variance`).toBeLessThan(1e-4);
    }
    net.destroy();
  });
});
