/**
 * Kernel versions of a training run: the shapes a run launches, the --kernels modes, the disk
 * cache of autotune results (round trip, corruption, its key), RUN/kernels.json, and a resume that
 * launches exactly the recorded versions — a forced non-default version survives `--resume
 * --kernels heuristic`, and the resumed run ends with the same bits as an uninterrupted one.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { heuristicVersion, KERNELS_FILE_FORMAT, parseKernelChoicesFile, type KernelRequest } from '../../src/kernels/autotune.ts';
import { kernelKey, type KernelChoice } from '../../src/kernels/kernel_choices.ts';
import type { ModelConfig } from '../../src/nn/config.ts';
import { parseTrainArgs, train } from '../../src/train/commands/train.ts';
import {
  autotuneCached,
  batchSizes,
  defaultKernelCacheDir,
  kernelCachePath,
  kernelSetId,
  parseKernelsMode,
  prepareRunKernels,
  readKernelCache,
  runKernelsPath,
  trainingKernelRequests,
  useRunKernels,
  writeKernelCache,
} from '../../src/train/kernels.ts';
import { RunFolder } from '../../src/train/run_folder.ts';
import { generateSynthDataset } from '../../src/train/synth.ts';
import { gpu } from '../helpers/gpu.ts';

const MICRO: ModelConfig = {
  classes: ['ADC', 'NORM', 'SC', 'SCLC'],
  imageSize: 128,
  patch: { size: 64, stride: 32 },
  level1: { widths: [4, 4, 8, 8, 8], downsample: [true, true, true, false, false] },
  level2: { patchStride: 64, widths: [8, 8], downsample: [true, false], hidden: [16, 16, 8], dropout: 0.5 },
};

const root = mkdtempSync(join(tmpdir(), 'lungpath-kernels-'));
const data = join(root, 'data');
const preset = join(root, 'micro.json');
const conv = (n: number, cIn: number, h: number, w: number, cOut: number, k: number, stride: number, pad: number) => ({ n, cIn, h, w, cOut, kh: k, kw: k, stride, pad });
const quiet = { log: () => {}, warn: (m: string) => expect.fail(`unexpected warning: ${m}`) };

describe('what a run launches', () => {
  it('batch sizes: the full batch and the last partial one', () => {
    expect(batchSizes(72, 5)).toEqual([5, 2]);
    expect(batchSizes(10, 5)).toEqual([5]);
    expect(batchSizes(3, 5)).toEqual([3]);
    expect(batchSizes(0, 5)).toEqual([]);
  });

  it('lists each layer at every batch size, backward only when training, no dx into the input', async () => {
    const rt = await gpu();
    const requests = trainingKernelRequests(rt, { config: MICRO, images: { train: 8, val: 4, test: 4 }, level1BatchSize: 5, level2BatchSize: 5, devices: 2 });
    const keys = new Set(requests.map((r) => kernelKey(r.op, r.shape)));
    expect(keys.size).toBe(requests.length);
    const first = (n: number) => conv(n, 3, 64, 64, 4, 3, 1, 1);
    // Level-1 training: 72 patches in batches of 5 (and one of 2), each split over 2 devices.
    for (const n of [3, 2, 1]) for (const op of ['conv2d.forward', 'conv2d.dw'] as const) expect(keys.has(kernelKey(op, first(n))), `${op} n=${n}`).toBe(true);
    expect(requests.some((r) => r.op === 'conv2d.dx' && (r.shape as { cIn: number }).cIn === 3)).toBe(false);
    expect(keys.has(kernelKey('conv2d.dx', conv(3, 4, 64, 64, 4, 3, 1, 1)))).toBe(true);
    // Evaluation (device 0) of 36 patches, the Level-2 inputs (4 patches per image), predict (9 patches).
    for (const n of [5, 1, 4, 9]) expect(keys.has(kernelKey('conv2d.forward', first(n))), `forward n=${n}`).toBe(true);
    expect(keys.has(kernelKey('conv2d.dw', first(5)))).toBe(false);
    // Level 2: 8 training images in batches 5 + 3, split over 2 devices; its classifier's linears.
    expect(keys.has(kernelKey('conv2d.dw', conv(3, 4, 8, 8, 8, 3, 1, 1)))).toBe(true);
    expect(keys.has(kernelKey('linear.dx', { n: 2, inFeatures: 16, outFeatures: 16 }))).toBe(true);
    expect(keys.has(kernelKey('linear.forward', { n: 1, inFeatures: 16, outFeatures: 16 }))).toBe(true);
  });

  it('parses --kernels', () => {
    expect(parseKernelsMode('autotune')).toEqual({ kind: 'autotune' });
    expect(parseKernelsMode('heuristic')).toEqual({ kind: 'heuristic' });
    expect(parseKernelsMode('/a/k.json')).toEqual({ kind: 'file', path: '/a/k.json' });
    expect(() => parseKernelsMode('fast')).toThrow(/--kernels must be autotune, heuristic or a .json file/);
    expect(parseTrainArgs(['--kernels', 'heuristic'])?.kernels).toEqual({ kind: 'heuristic' });
    expect(() => parseTrainArgs(['--kernels', 'x'])).toThrow(/--kernels must be/);
  });
});

describe('the disk cache of autotune results', () => {
  const requests: KernelRequest[] = [
    { op: 'conv2d.forward', shape: conv(2, 5, 7, 9, 6, 3, 1, 1) },
    { op: 'linear.forward', shape: { n: 5, inFeatures: 64, outFeatures: 4 } },
  ];

  it('lives under $XDG_CACHE_HOME/lungpath (else ~/.cache), keyed by adapter and kernel set', async () => {
    const rt = await gpu();
    expect(defaultKernelCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/lungpath');
    expect(defaultKernelCacheDir({})).toBe(join(homedir(), '.cache', 'lungpath'));
    const id = kernelSetId();
    expect(id).toMatch(/^\d+-[0-9a-f]{16}$/);
    expect(kernelSetId({ a: 'x' })).not.toBe(kernelSetId({ a: 'y' }));
    const path = kernelCachePath('/c', rt.adapter, id);
    expect(path).toMatch(/^\/c\/kernels-[0-9a-f]{16}\.json$/);
    expect(kernelCachePath('/c', rt.adapter, `${id}x`)).not.toBe(path);
    expect(kernelCachePath('/c', { ...rt.adapter, description: `${rt.adapter.description} 2` }, id)).not.toBe(path);
  });

  it('round-trips: a second run finds every shape cached and tunes nothing', async () => {
    const rt = await gpu();
    const cacheDir = join(root, 'cache-round-trip');
    const logs: string[] = [];
    const ctx = { log: (m: string) => logs.push(m), warn: quiet.warn, cacheDir, autotune: { reps: 2 } };
    const first = await autotuneCached(rt, requests, ctx);
    expect(logs.some((l) => /autotuning 2 shapes/.test(l))).toBe(true);
    const path = kernelCachePath(cacheDir, rt.adapter, kernelSetId());
    expect(existsSync(path)).toBe(true);
    const cached = readKernelCache(path, rt.adapter, kernelSetId(), quiet.warn);
    expect([...cached.keys()]).toEqual(requests.map((r) => kernelKey(r.op, r.shape)));
    logs.length = 0;
    const second = await autotuneCached(rt, requests, ctx);
    expect(logs).toEqual([]);
    expect(second.map((c) => c.variant)).toEqual(first.map((c) => c.variant));
  });

  it('warns about a corrupt cache file and retunes, leaving a valid one', async () => {
    const rt = await gpu();
    const cacheDir = join(root, 'cache-corrupt');
    mkdirSync(cacheDir, { recursive: true });
    const path = kernelCachePath(cacheDir, rt.adapter, kernelSetId());
    writeFileSync(path, '{"format": "lungpath-kernels-1", "choices": [{"op": "conv2d.forw');
    const warnings: string[] = [];
    const logs: string[] = [];
    await autotuneCached(rt, requests.slice(1), { log: (m) => logs.push(m), warn: (m) => warnings.push(m), cacheDir, autotune: { reps: 2 } });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/corrupt kernel cache, ignored and retuned: .*kernels-[0-9a-f]+\.json: not valid JSON/);
    expect(logs.some((l) => /autotuning 1 shapes/.test(l))).toBe(true);
    expect(parseKernelChoicesFile(readFileSync(path, 'utf8'), path).choices).toHaveLength(1);
  });

  it('ignores (with a warning) a file made for another kernel set, and merges what another process wrote', async () => {
    const rt = await gpu();
    const path = join(root, 'cache-merge', 'kernels.json');
    const a: KernelChoice = { op: 'conv2d.forward', shape: conv(2, 5, 7, 9, 6, 3, 1, 1), variant: 'gemm' };
    const b: KernelChoice = { op: 'linear.dx', shape: { n: 2, inFeatures: 8, outFeatures: 3 }, variant: 'tiled' };
    writeKernelCache(path, rt.adapter, 'set-1', [a]);
    writeKernelCache(path, rt.adapter, 'set-1', [b]);
    expect([...readKernelCache(path, rt.adapter, 'set-1', quiet.warn).values()]).toEqual([a, b]);
    const warnings: string[] = [];
    expect(readKernelCache(path, rt.adapter, 'set-2', (m) => warnings.push(m)).size).toBe(0);
    expect(warnings[0]).toMatch(/made for another adapter or kernel set \(set-1\); ignored and retuned/);
  });
});

describe('RUN/kernels.json', () => {
  beforeAll(async () => {
    writeFileSync(preset, JSON.stringify(MICRO));
    await generateSynthDataset({ out: data, perClass: 4, size: 128, seed: 3, layout: 'split' });
  });

  it('records the table before training; evaluate/predict reuse it; a corrupt record is warned about', async () => {
    const rt = await gpu();
    const run = new RunFolder(join(root, 'record'));
    run.create();
    const requests: KernelRequest[] = [{ op: 'conv2d.dw', shape: conv(2, 3, 9, 7, 9, 2, 2, 0) }];
    const file = await prepareRunKernels([rt], run, { kind: 'autotune' }, false, requests, { ...quiet, cacheDir: join(root, 'cache-record'), autotune: { reps: 2 } });
    const recorded = parseKernelChoicesFile(readFileSync(runKernelsPath(run), 'utf8'), runKernelsPath(run));
    expect(recorded.mode).toBe('autotune');
    expect(recorded.kernelSet).toBe(kernelSetId());
    expect(recorded.choices.map((c) => c.variant)).toEqual(file.choices.map((c) => c.variant));
    expect(Object.keys(recorded.choices[0]?.timings ?? {}).sort()).toEqual(['2x2s2', 'general']);
    rt.kernels.replace([]);
    useRunKernels(rt, run, quiet.warn);
    expect(rt.kernels.entries()).toEqual(recorded.choices.map(({ op, shape, variant }) => ({ op, shape, variant })));
    writeFileSync(runKernelsPath(run), '{');
    const warnings: string[] = [];
    useRunKernels(rt, run, (m) => warnings.push(m));
    expect(warnings[0]).toMatch(/kernels\.json: not valid JSON.*; using the heuristic kernel versions/);
    await expect(prepareRunKernels([rt], run, { kind: 'heuristic' }, true, requests, quiet)).rejects.toThrow(/kernels\.json: not valid JSON/);
    rt.kernels.replace([]);
  });

  it('a resume launches the recorded versions, whatever --kernels says, and ends bit for bit as an uninterrupted run', async () => {
    const rt = await gpu();
    const s5 = conv(5, 3, 64, 64, 4, 3, 1, 1);
    const forced: KernelChoice[] = [
      { op: 'conv2d.forward', shape: s5, variant: 'gemm' },
      { op: 'conv2d.dw', shape: s5, variant: 'general' },
      { op: 'linear.forward', shape: { n: 5, inFeatures: 64, outFeatures: 4 }, variant: 'cols' },
    ];
    for (const c of forced) expect(heuristicVersion(rt, c.op, c.shape), `${c.op} is forced off its heuristic`).not.toBe(c.variant);
    const forcedFile = join(root, 'forced.json');
    writeFileSync(forcedFile, JSON.stringify({ choices: forced }));
    const trainRun = async (out: string, extra: string[]) => {
      const settings = parseTrainArgs(['--data', data, '--out', out, '--preset', preset, '--seed', '5', '--quiet', '--batch-size', '5', '--level2-epochs', '1', ...extra]);
      if (!settings) throw new Error('help printed');
      await train(settings, [rt]);
    };
    const whole = join(root, 'whole');
    await trainRun(whole, ['--epochs', '2', '--kernels', forcedFile]);
    expect(rt.kernels.misses(), 'every launch of the run was in its kernels.json').toEqual([]);
    const recorded = parseKernelChoicesFile(readFileSync(join(whole, 'kernels.json'), 'utf8'), 'kernels.json');
    expect(recorded.format).toBe(KERNELS_FILE_FORMAT);
    expect(recorded.mode).toBe(`file ${forcedFile}`);
    for (const c of forced) expect(recorded.choices.find((r) => kernelKey(r.op, r.shape) === kernelKey(c.op, c.shape))?.variant).toBe(c.variant);

    const resumed = join(root, 'resumed');
    await trainRun(resumed, ['--epochs', '1', '--kernels', forcedFile]);
    await trainRun(resumed, ['--epochs', '2', '--kernels', 'heuristic', '--resume']);
    const used = new Map(rt.kernels.used().map((u) => [kernelKey(u.op, u.shape), u]));
    for (const c of forced) expect(used.get(kernelKey(c.op, c.shape)), c.op).toMatchObject({ variant: c.variant, from: 'table' });
    expect(rt.kernels.misses()).toEqual([]);
    expect(readFileSync(join(resumed, 'kernels.json'), 'utf8')).toBe(readFileSync(join(whole, 'kernels.json'), 'utf8'));
    for (const f of ['level1.safetensors', 'level2.safetensors']) {
      expect(Buffer.compare(readFileSync(join(whole, f)), readFileSync(join(resumed, f))), f).toBe(0);
    }
    rt.kernels.replace([]);
  });
});
