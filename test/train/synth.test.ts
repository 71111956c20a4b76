/**
 * The synthetic dataset: same seed → same bytes, split sizes and folder layouts, PNGs that decode to
 * the rendered pixels, a colour-only baseline near chance, and texture statistics that tell the
 * classes apart (so the classes differ in morphology, not in colour).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import {
  generateSynthDataset,
  renderSynthImage,
  SYNTH_CLASSES,
  SYNTH_VERSION,
  synthImageSeed,
  synthSplitCounts,
  type SynthOptions,
  type SynthSplit,
} from '../../src/train/synth.ts';

const made: string[] = [];
afterAll(async () => {
  for (const dir of made) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lungpath-synth-'));
  made.push(dir);
  return dir;
}

/** Every file under `dir`, relative, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

async function generate(opts: Omit<SynthOptions, 'out'>): Promise<string> {
  const out = await tempDir();
  await generateSynthDataset({ ...opts, out });
  return out;
}

describe('renderSynthImage', () => {
  it('is deterministic, and depends on the seed and the class', () => {
    const a = renderSynthImage(1, 64, 42);
    expect(a.length).toBe(64 * 64 * 3);
    expect(Buffer.from(renderSynthImage(1, 64, 42)).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(renderSynthImage(1, 64, 43)).equals(Buffer.from(a))).toBe(false);
    expect(Buffer.from(renderSynthImage(2, 64, 42)).equals(Buffer.from(a))).toBe(false);
  });

  it('stain variation: 1 leaves the pixels as they were; 3 spreads the images\' mean colour more', () => {
    expect(Buffer.from(renderSynthImage(2, 64, 7, 1)).equals(Buffer.from(renderSynthImage(2, 64, 7)))).toBe(true);
    // Sum over R, G, B of the standard deviation across 24 images of the image's mean value.
    const spread = (v: number) => {
      const means = Array.from({ length: 24 }, (_, i) => {
        const rgb = renderSynthImage(i % 4, 64, 100 + i, v);
        const m = [0, 0, 0];
        rgb.forEach((x, k) => (m[k % 3] += x));
        return m.map((x) => x / (rgb.length / 3));
      });
      return [0, 1, 2].reduce((acc, c) => {
        const xs = means.map((m) => m[c]!);
        const mu = xs.reduce((a, x) => a + x, 0) / xs.length;
        return acc + Math.sqrt(xs.reduce((a, x) => a + (x - mu) ** 2, 0) / xs.length);
      }, 0);
    };
    // Measured: 61.4 at 1 (class and white-space differences), 88.1 at 3.
    expect(spread(3)).toBeGreaterThan(1.3 * spread(1));
  });

  it('refuses an unknown class or a tiny size', () => {
    expect(() => renderSynthImage(4, 64, 1)).toThrow(/class 4/);
    expect(() => renderSynthImage(0, 8, 1)).toThrow(/size 8/);
  });
});

describe('synthSplitCounts', () => {
  it.each([
    [1600, { train: 1200, val: 300, test: 100 }],
    [100, { train: 75, val: 19, test: 6 }],
    [16, { train: 12, val: 3, test: 1 }],
    [4, { train: 2, val: 1, test: 1 }],
    [3, { train: 1, val: 1, test: 1 }],
    [2, { train: 2, val: 0, test: 0 }],
  ])('%i per class → %o', (perClass, counts) => {
    expect(synthSplitCounts(perClass)).toEqual(counts);
  });
});

describe('generateSynthDataset', () => {
  it('split layout: {train,val,test}/<CLASS>/<class>_<index>.png and synth.json', async () => {
    const progress: number[] = [];
    const out = await tempDir();
    const result = await generateSynthDataset({ out, perClass: 4, size: 48, seed: 5, layout: 'split' }, (done, total) => {
      expect(total).toBe(16);
      progress.push(done);
    });
    expect(result).toEqual({ files: 16 });
    expect(progress).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    const expected = SYNTH_CLASSES.flatMap((name) => {
      const lower = name.toLowerCase();
      return [`train/${name}/${lower}_0000.png`, `train/${name}/${lower}_0001.png`, `val/${name}/${lower}_0002.png`, `test/${name}/${lower}_0003.png`];
    });
    expect(await listFiles(out)).toEqual([...expected, 'synth.json'].sort());
    const manifest = JSON.parse(await readFile(join(out, 'synth.json'), 'utf8'));
    expect(manifest).toEqual({
      generator: 'lungpath-synth',
      version: SYNTH_VERSION,
      options: { perClass: 4, size: 48, seed: 5, layout: 'split' },
      classes: [...SYNTH_CLASSES],
      splits: { train: 2, val: 1, test: 1 },
    });
  });

  it('flat layout: <CLASS>/<class>_<index>.png', async () => {
    const out = await generate({ perClass: 2, size: 32, seed: 5, layout: 'flat' });
    const expected = SYNTH_CLASSES.flatMap((name) => [0, 1].map((i) => `${name}/${name.toLowerCase()}_000${i}.png`));
    expect(await listFiles(out)).toEqual([...expected, 'synth.json'].sort());
  });

  it('the same options give byte-identical files; another seed gives other images', async () => {
    const opts = { perClass: 3, size: 64, seed: 11, layout: 'split' } as const;
    const [a, b, c] = [await generate(opts), await generate(opts), await generate({ ...opts, seed: 12 })];
    const files = await listFiles(a);
    expect(await listFiles(b)).toEqual(files);
    expect(await listFiles(c)).toEqual(files);
    let differing = 0;
    for (const f of files) {
      const bytes = await readFile(join(a, f));
      expect(bytes.equals(await readFile(join(b, f))), f).toBe(true);
      if (f.endsWith('.png') && !bytes.equals(await readFile(join(c, f)))) differing++;
    }
    expect(differing).toBe(12);
  });

  it('writes RGB PNGs of the requested size holding exactly the rendered pixels', async () => {
    const out = await generate({ perClass: 3, size: 80, seed: 3, layout: 'split' });
    for (const [cls, index, path] of [[0, 0, 'train/NORM/norm_0000.png'], [3, 2, 'test/ADC/adc_0002.png']] as const) {
      const { data, info } = await sharp(join(out, path)).raw().toBuffer({ resolveWithObject: true });
      expect(info).toMatchObject({ format: 'raw', width: 80, height: 80, channels: 3 });
      expect((await sharp(join(out, path)).metadata()).format).toBe('png');
      expect(data.equals(Buffer.from(renderSynthImage(cls, 80, synthImageSeed(3, cls, index))))).toBe(true);
    }
  });

  it('refuses bad options', async () => {
    const out = await tempDir();
    await expect(generateSynthDataset({ out, perClass: 0, size: 64, seed: 1, layout: 'split' })).rejects.toThrow(/per-class/);
    await expect(generateSynthDataset({ out, perClass: 1, size: 64, seed: 1, layout: 'grid' as 'flat' })).rejects.toThrow(/layout/);
  });
});

/** The set the dataset statistics below are measured on: 40 images per class at 256², rendered in memory. */
const PER_CLASS = 40;
const SIZE = 256;
const samples = SYNTH_CLASSES.map((_, cls) =>
  Array.from({ length: PER_CLASS }, (_, index) => renderSynthImage(cls, SIZE, synthImageSeed(2024, cls, index))),
);

function meanRgb(rgb: Uint8Array): number[] {
  const sum = [0, 0, 0];
  for (let i = 0; i < rgb.length; i += 3) for (let c = 0; c < 3; c++) sum[c]! += rgb[i + c]!;
  return sum.map((s) => s / (rgb.length / 3));
}

/** Fraction of near-white pixels (every channel > 225): air spaces, lumens, cleared areas. */
function whiteFraction(rgb: Uint8Array): number {
  let white = 0;
  for (let i = 0; i < rgb.length; i += 3) if (Math.min(rgb[i]!, rgb[i + 1]!, rgb[i + 2]!) > 225) white++;
  return white / (rgb.length / 3);
}

/** Mean absolute luminance step between neighbours at 2×2 over that at 4×4 average pooling: high for fine texture. */
function fineness(rgb: Uint8Array): number {
  const lum = new Float32Array(SIZE * SIZE);
  for (let i = 0; i < lum.length; i++) lum[i] = rgb[3 * i]! + rgb[3 * i + 1]! + rgb[3 * i + 2]!;
  const step = (f: number) => {
    const n = SIZE / f;
    const pooled = new Float32Array(n * n);
    for (let y = 0; y < SIZE; y++) for (let x = 0; x < SIZE; x++) pooled[((y / f) | 0) * n + ((x / f) | 0)]! += lum[y * SIZE + x]!;
    let sum = 0;
    for (let y = 0; y + 1 < n; y++) {
      for (let x = 0; x + 1 < n; x++) sum += Math.abs(pooled[y * n + x + 1]! - pooled[y * n + x]!) + Math.abs(pooled[(y + 1) * n + x]! - pooled[y * n + x]!);
    }
    return sum / (f * f * n * n);
  };
  return step(2) / step(4);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

describe('the synthetic classes', () => {
  it('are not separable by mean colour: nearest centroid on mean RGB ≤ 60% on val+test', () => {
    const counts = synthSplitCounts(PER_CLASS);
    const splitOf = (index: number): SynthSplit => (index < counts.train ? 'train' : index < counts.train + counts.val ? 'val' : 'test');
    const means = samples.map((imgs) => imgs.map(meanRgb));
    const centroids = means.map((ms) => {
      const train = ms.filter((_, i) => splitOf(i) === 'train');
      return [0, 1, 2].map((c) => train.reduce((a, m) => a + m[c]!, 0) / train.length);
    });
    let right = 0;
    let total = 0;
    means.forEach((ms, cls) =>
      ms.forEach((m, i) => {
        if (splitOf(i) === 'train') return;
        const d = centroids.map((ctr) => Math.hypot(m[0]! - ctr[0]!, m[1]! - ctr[1]!, m[2]! - ctr[2]!));
        if (d.indexOf(Math.min(...d)) === cls) right++;
        total++;
      }),
    );
    expect(total).toBe(4 * (counts.val + counts.test));
    expect(right / total).toBeLessThanOrEqual(0.6);
  });

  it('differ in texture: normal lung is mostly air, small cell carcinoma the finest-grained', () => {
    const white = samples.map((imgs) => imgs.map(whiteFraction));
    const fine = samples.map((imgs) => imgs.map(fineness));
    const [norm, sclc, sc, adc] = [0, 1, 2, 3];
    // Nearly every normal image has more white than the typical small-cell image, by a wide margin.
    const sclcWhite = median(white[sclc]!);
    expect(white[norm]!.filter((w) => w > sclcWhite + 0.2).length).toBeGreaterThanOrEqual(0.9 * PER_CLASS);
    // Crowded small nuclei put more contrast at the 2-px scale relative to the 4-px scale.
    for (const other of [norm, sc, adc]) expect(median(fine[sclc]!)).toBeGreaterThan(median(fine[other!]!) + 0.1);
  });
});
