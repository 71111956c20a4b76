/**
 * End to end on a micro dataset (synthetic, 128² images, a micro config): train both levels,
 * evaluate and predict through the CLI, and resume: an interrupted run continued with --resume
 * ends with the same weights, bit for bit, as an uninterrupted one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../src/nn/config.ts';
import { parseTrainArgs, train } from '../../src/train/commands/train.ts';
import { generateSynthDataset } from '../../src/train/synth.ts';
import { createNodeRuntime } from '../../src/kernels/node.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { gpu } from '../helpers/gpu.ts';

const MICRO: ModelConfig = {
  classes: ['NORM', 'SCLC', 'SC', 'ADC'],
  imageSize: 128,
  patch: { size: 64, stride: 32 },
  level1: { widths: [4, 4, 8, 8, 8], downsample: [true, true, true, false, false] },
  level2: { patchStride: 64, widths: [8, 8], downsample: [true, false], hidden: [16, 16, 8], dropout: 0.5 },
};

const root = mkdtempSync(join(tmpdir(), 'lungpath-pipeline-'));
const data = join(root, 'data');
const preset = join(root, 'micro.json');

function cli(args: string[]): string {
  return execFileSync(process.execPath, ['bin/lungpath.js', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

async function trainRun(out: string, extra: string[], runtimes?: Runtime[]): Promise<void> {
  const settings = parseTrainArgs(['--data', data, '--out', out, '--preset', preset, '--seed', '5', '--quiet', '--batch-size', '8', ...extra]);
  if (!settings) throw new Error('help printed');
  await train(settings, runtimes ?? [await gpu()]);
}

describe('the two-level pipeline', () => {
  beforeAll(async () => {
    writeFileSync(preset, JSON.stringify(MICRO));
    await generateSynthDataset({ out: data, perClass: 8, size: 128, seed: 3, layout: 'split' });
  });

  it('trains both levels and writes every artefact of a run folder', async () => {
    const out = join(root, 'run');
    await trainRun(out, ['--epochs', '2', '--level2-epochs', '2']);
    for (const f of ['config.json', 'train.json', 'level1.safetensors', 'level2.safetensors', 'metrics.jsonl', 'curves.png', 'report/report.json', 'report/report.md', 'report/roc.png', 'report/confusion.png']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.kind === 'epoch').map((m) => `${m.level}:${m.epoch}`)).toEqual(['1:1', '1:2', '2:1', '2:2']);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).classes).toEqual(['ADC', 'NORM', 'SC', 'SCLC']);

    const report = JSON.parse(cli(['evaluate', '--run', out, '--json']));
    for (const key of ['accuracy', 'patchAccuracy', 'confusion', 'auc', 'classes', 'macroAuc']) expect(report).toHaveProperty(key);
    expect(report.confusion.flat().reduce((a: number, b: number) => a + b, 0)).toBe(report.images);

    const image = join(data, 'test', 'SC', 'sc_0007.png');
    const lines = cli(['predict', '--run', out, '--json', '--heatmap', join(root, 'heat'), image]).trim().split('\n');
    expect(lines).toHaveLength(1);
    const p = JSON.parse(lines[0] as string);
    expect(p.file).toBe(image);
    expect(Object.keys(p.probabilities)).toEqual(['ADC', 'NORM', 'SC', 'SCLC']);
    expect(Object.values(p.probabilities as Record<string, number>).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(p.patches).toHaveLength(9);
    expect(p.patches[4]).toMatchObject({ x: 1, y: 1 });
    expect(existsSync(join(root, 'heat', 'sc_0007-heatmap.png'))).toBe(true);
  });

  it('evaluate and predict say once that images of another size are resized, not once per image', async () => {
    const resized = join(root, 'data-96');
    const images: string[] = [];
    for (const split of ['train', 'val', 'test']) {
      for (const cls of readdirSync(join(data, split))) {
        mkdirSync(join(resized, split, cls), { recursive: true });
        for (const f of readdirSync(join(data, split, cls))) {
          await sharp(join(data, split, cls, f)).resize(96, 96).toFile(join(resized, split, cls, f));
          if (split === 'test') images.push(join(resized, split, cls, f));
        }
      }
    }
    const stderrOf = (args: string[]) => {
      const r = spawnSync(process.execPath, ['bin/lungpath.js', ...args], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stderr.trim().split('\n').filter((l) => l.includes('96×96'));
    };
    const total = ['train', 'val', 'test'].flatMap((s) => readdirSync(join(resized, s)).flatMap((c) => readdirSync(join(resized, s, c)))).length;
    expect(stderrOf(['evaluate', '--run', join(root, 'run'), '--data', resized])).toEqual([
      expect.stringMatching(new RegExp(`^warning: ${total} images are not 128×128 \\(${total} of 96×96\\); they are resized to 128×128`)),
    ]);
    expect(stderrOf(['predict', '--run', join(root, 'run'), '--heatmap', join(root, 'heat-96'), ...images])).toEqual([
      expect.stringMatching(new RegExp(`^warning: ${images.length} images are not 128×128 \\(${images.length} of 96×96\\)`)),
    ]);
  });

  it('trains end to end on two devices (--devices 2)', async () => {
    const second = await createNodeRuntime();
    try {
      const out = join(root, 'two-devices');
      await trainRun(out, ['--epochs', '1', '--level2-epochs', '1', '--devices', '2'], [await gpu(), second]);
      expect(existsSync(join(out, 'level2.safetensors'))).toBe(true);
      expect(JSON.parse(readFileSync(join(out, 'report', 'report.json'), 'utf8')).images).toBeGreaterThan(0);
    } finally {
      second.destroy();
    }
  });

  it('refuses unknown flags and bad values with a message', () => {
    expect(() => parseTrainArgs(['--epoch', '2'])).toThrow(/Unknown option '--epoch'/);
    expect(() => parseTrainArgs(['--lr', 'fast'])).toThrow(/--lr: bad value 'fast'/);
    expect(() => parseTrainArgs(['--preset', 'huge'])).toThrow(/--preset must be seed, tiny, tile or a .json config file/);
    expect(() => parseTrainArgs(['--level2-lr', '0'])).toThrow(/--level2-lr: bad value '0'/);
  });

  it('--level2-lr sets the learning rate of Level 2 alone; without it Level 2 uses --lr', () => {
    const own = parseTrainArgs(['--lr', '0.002', '--level2-lr', '0.005']);
    expect([own?.level1.lr, own?.level2.lr]).toEqual([0.002, 0.005]);
    const shared = parseTrainArgs(['--lr', '0.002']);
    expect([shared?.level1.lr, shared?.level2.lr]).toEqual([0.002, 0.002]);
  });

  it('--weight-decay sets Adam\'s L2 decay of both levels unless --level2-weight-decay sets Level 2\'s; default 0', () => {
    const none = parseTrainArgs([]);
    expect([none?.level1.weightDecay, none?.level2.weightDecay]).toEqual([0, 0]);
    const shared = parseTrainArgs(['--weight-decay', '5e-4']);
    expect([shared?.level1.weightDecay, shared?.level2.weightDecay]).toEqual([5e-4, 5e-4]);
    const own = parseTrainArgs(['--weight-decay', '5e-4', '--level2-weight-decay', '0']);
    expect([own?.level1.weightDecay, own?.level2.weightDecay]).toEqual([5e-4, 0]);
    expect(() => parseTrainArgs(['--weight-decay=-1'])).toThrow(/--weight-decay: bad value '-1'/);
  });

  it('--label-smoothing sets both levels\' smoothing unless --level2-label-smoothing sets Level 2\'s; default 0', () => {
    const none = parseTrainArgs([]);
    expect([none?.level1.labelSmoothing, none?.level2.labelSmoothing]).toEqual([0, 0]);
    const shared = parseTrainArgs(['--label-smoothing', '0.1']);
    expect([shared?.level1.labelSmoothing, shared?.level2.labelSmoothing]).toEqual([0.1, 0.1]);
    const own = parseTrainArgs(['--label-smoothing', '0.1', '--level2-label-smoothing', '0']);
    expect([own?.level1.labelSmoothing, own?.level2.labelSmoothing]).toEqual([0.1, 0]);
    expect(() => parseTrainArgs(['--label-smoothing', '1'])).toThrow(/--label-smoothing: bad value '1'/);
  });

  it('--patch-jitter sets Level 1\'s random-crop jitter in whole pixels; default 0 (the grid)', () => {
    expect(parseTrainArgs([])?.level1.patchJitter).toBe(0);
    expect(parseTrainArgs(['--patch-jitter', '12'])?.level1.patchJitter).toBe(12);
    expect(() => parseTrainArgs(['--patch-jitter', '2.5'])).toThrow(/--patch-jitter must be an integer ≥ 0, got '2.5'/);
  });

  it('the tile preset trains 10 Level-1 epochs, the rate cut tenfold after 8, without colour augmentation, and Level 2 at 3e-3; --level1-step-lr steps Level 1 alone', () => {
    const tile = parseTrainArgs(['--preset', 'tile']);
    expect([tile?.level1.epochs, tile?.level1.colourAugment, tile?.level1.lr, tile?.level2.lr]).toEqual([10, false, 0.001, 0.003]);
    expect([tile?.level1.stepLr, tile?.level2.stepLr]).toEqual([{ step: 8, gamma: 0.1 }, null]);
    expect(parseTrainArgs(['--preset', 'tile', '--step-lr', '5'])?.level1.stepLr).toEqual({ step: 5, gamma: 0.1 });
    expect(parseTrainArgs(['--preset', 'tile', '--level1-step-lr', 'off'])?.level1.stepLr).toBeNull();
    expect(parseTrainArgs(['--preset', 'tiny'])?.level1.stepLr).toBeNull();
    const tiny = parseTrainArgs(['--preset', 'tiny']);
    expect([tiny?.level1.colourAugment, tiny?.level2.lr]).toEqual([true, 0.001]);
    const steps = parseTrainArgs(['--step-lr', '5', '--level1-step-lr', '3:0.5']);
    expect([steps?.level1.stepLr, steps?.level2.stepLr]).toEqual([{ step: 3, gamma: 0.5 }, { step: 5, gamma: 0.1 }]);
    expect(parseTrainArgs(['--step-lr', '5', '--level1-step-lr', 'off'])?.level1.stepLr).toBeNull();
    expect(() => parseTrainArgs(['--level1-step-lr', '0'])).toThrow(/--level1-step-lr must be an integer/);
  });

  it('--level2-augment on trains Level 2 on the maps of 8 flips/rotations; a resumed run ends with the same weights', async () => {
    const plain = join(root, 'l2-plain');
    await trainRun(plain, ['--epochs', '1', '--level2-epochs', '2']);
    const augmented = join(root, 'l2-augmented');
    await trainRun(augmented, ['--epochs', '1', '--level2-epochs', '2', '--level2-augment', 'on']);
    const trainCaches = (run: string) => readdirSync(join(run, 'cache')).filter((f) => /^level2-train-.*\.f32$/.test(f));
    expect([trainCaches(plain).length, trainCaches(augmented).length]).toEqual([1, 8]);
    // Same Level 1, another Level 2: the variants are read.
    const bytes = (run: string, f: string) => readFileSync(join(run, f));
    expect(Buffer.compare(bytes(plain, 'level1.safetensors'), bytes(augmented, 'level1.safetensors'))).toBe(0);
    expect(Buffer.compare(bytes(plain, 'level2.safetensors'), bytes(augmented, 'level2.safetensors'))).not.toBe(0);
    const resumed = join(root, 'l2-augmented-resumed');
    await trainRun(resumed, ['--epochs', '1', '--level2-epochs', '1', '--level2-augment', 'on']);
    await trainRun(resumed, ['--epochs', '1', '--level2-epochs', '2', '--level2-augment', 'on', '--resume']);
    expect(Buffer.compare(bytes(augmented, 'level2.safetensors'), bytes(resumed, 'level2.safetensors'))).toBe(0);
  });

  it('a resumed run ends with the same weights as an uninterrupted one', async () => {
    const whole = join(root, 'whole');
    await trainRun(whole, ['--epochs', '2', '--level2-epochs', '2']);
    // Stopped inside Level 2, and stopped inside Level 1 (whose Level-2 checkpoint is then stale).
    const insideLevel2 = join(root, 'inside-level2');
    await trainRun(insideLevel2, ['--epochs', '2', '--level2-epochs', '1']);
    await trainRun(insideLevel2, ['--epochs', '2', '--level2-epochs', '2', '--resume']);
    const insideLevel1 = join(root, 'inside-level1');
    await trainRun(insideLevel1, ['--epochs', '1', '--level2-epochs', '1']);
    await trainRun(insideLevel1, ['--epochs', '2', '--level2-epochs', '2', '--resume']);
    for (const run of [insideLevel2, insideLevel1]) {
      for (const f of ['level1.safetensors', 'level2.safetensors']) {
        expect(Buffer.compare(readFileSync(join(whole, f)), readFileSync(join(run, f))), `${run}/${f}`).toBe(0);
      }
    }
  });
});
