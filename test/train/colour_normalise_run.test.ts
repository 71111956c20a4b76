/**
 * A run trained with `--colour-normalise channel-stats` keeps its preprocessing everywhere it is
 * used: the target measured from the training images is saved in config.json and in both weights
 * files' metadata (what the browser demo loads); evaluation (the loaders) and prediction
 * (classifyImage, as predict, openRun and the demo call it) feed the network the normalised
 * pixels, and agree with each other; a config.json that no longer states the weights'
 * preprocessing is refused, not silently used.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { averageChannelStats, channelStats, normaliseColour } from '../../src/nn/colour_normalise.ts';
import { classifyImage, loadModel } from '../../src/nn/classify.ts';
import type { ModelConfig } from '../../src/nn/config.ts';
import { parseTrainArgs } from '../../src/train/commands/train.ts';
import { readDataset } from '../../src/train/dataset.ts';
import { evaluateRun } from '../../src/train/evaluate.ts';
import { openRun } from '../../src/train/open_run.ts';
import { RunFolder } from '../../src/train/run_folder.ts';
import { gpu } from '../helpers/gpu.ts';
import { microSetup, trainMicro, type MicroSetup } from '../helpers/micro_run.ts';

let setup: MicroSetup;
let out: string;

async function rawPixels(path: string): Promise<Uint8Array> {
  return new Uint8Array((await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer()).buffer.slice(0));
}

describe('--colour-normalise', () => {
  it("overrides the preset's choice; 'none' leaves no field (the config.json of runs before the option)", () => {
    const config = (argv: string[]) => parseTrainArgs(argv)?.config as ModelConfig;
    expect(config(['--preset', 'tiny']).colourNormalise).toBeUndefined();
    expect(config(['--preset', 'tiny', '--colour-normalise', 'channel-stats']).colourNormalise).toEqual({ method: 'channel-stats' });
    expect('colourNormalise' in config(['--preset', 'tile', '--colour-normalise', 'none'])).toBe(false);
    expect(() => parseTrainArgs(['--colour-normalise', 'reinhard'])).toThrow(/--colour-normalise must be one of none, channel-stats, got 'reinhard'/);
  });
});

describe('a run trained with per-image colour normalisation', () => {
  beforeAll(async () => {
    setup = await microSetup('lungpath-colour-');
    out = join(setup.root, 'run');
    await trainMicro(setup, await gpu(), out, ['--epochs', '1', '--level2-epochs', '1', '--colour-normalise', 'channel-stats']);
  }, 600_000);

  it("records the training images' average statistics in config.json and in both weights files", async () => {
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as ModelConfig;
    expect(config.colourNormalise?.method).toBe('channel-stats');
    const dataset = readDataset(setup.data, { seed: 5 });
    const want = averageChannelStats(await Promise.all(dataset.splits.train.map(async (i) => channelStats(await rawPixels(i.path)))));
    for (let c = 0; c < 3; c++) {
      expect(config.colourNormalise?.target?.mean[c]).toBeCloseTo(want.mean[c], 3);
      expect(config.colourNormalise?.target?.std[c]).toBeCloseTo(want.std[c], 3);
    }
    const model = await loadModel(await gpu(), readFileSync(join(out, 'level1.safetensors')), readFileSync(join(out, 'level2.safetensors')));
    expect(model.config.colourNormalise).toEqual(config.colourNormalise);
    model.destroy();
  });

  it('prediction applies it (same result as the normalised pixels through a config without it) and evaluation agrees', async () => {
    const rt = await gpu();
    const run = await openRun(out, { runtime: rt });
    const dataset = readDataset(setup.data, { seed: 5 });
    const report = await evaluateRun(rt, new RunFolder(out), dataset, 'test', { tta: false, batchSize: 8, warn: () => {}, onMismatch: 'resize', log: () => {} });
    const plain: ModelConfig = { ...run.config };
    delete plain.colourNormalise;
    let differs = 0;
    for (const p of report.predictions) {
      const rgb = await rawPixels(p.file);
      const predicted = await run.classifyFile(p.file);
      const byHand = await classifyImage(rt, run.level1, run.level2, plain, normaliseColour(run.config, rgb));
      const skipped = await classifyImage(rt, run.level1, run.level2, plain, rgb);
      run.config.classes.forEach((name, c) => {
        expect(predicted.probabilities[name]).toBe(byHand.probabilities[name]);
        expect(predicted.probabilities[name]).toBeCloseTo(p.probabilities[c] as number, 4);
      });
      // The micro model's Level 2 after one epoch may barely depend on its input: compare Level 1's per-patch probabilities too.
      const rows = (p: typeof predicted) => [p.probabilities, ...p.patches.map((q) => q.probabilities)];
      const skippedRows = rows(skipped);
      if (rows(predicted).some((row, k) => run.config.classes.some((name) => Math.abs((row[name] as number) - (skippedRows[k]?.[name] as number)) > 1e-4))) differs++;
    }
    expect(differs, 'classifying the raw pixels without the normalisation gives other probabilities').toBe(report.predictions.length);
    run.close();
  });

  it('refuses a config.json that no longer states the preprocessing the weights were trained with', async () => {
    const copy = join(setup.root, 'edited');
    mkdirSync(copy);
    for (const f of ['config.json', 'level1.safetensors', 'level2.safetensors']) cpSync(join(out, f), join(copy, f));
    const config = JSON.parse(readFileSync(join(copy, 'config.json'), 'utf8')) as ModelConfig;
    delete config.colourNormalise;
    writeFileSync(join(copy, 'config.json'), JSON.stringify(config));
    await expect(openRun(copy, { runtime: await gpu() })).rejects.toThrow(/level1\.safetensors: trained with colourNormalise \{"method":"channel-stats".*config\.json states null/);
  });
});
