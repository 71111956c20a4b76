/**
 * Synthetic H&E-like histology for the four classes (normal lung, small cell, squamous cell and
 * adenocarcinoma): the default dataset of training and of the tests. Each image is painted as
 * haematoxylin/eosin density maps by a per-class painter (synth/painters.ts: the morphology), then
 * stained, cleared, blurred and noised by one class-independent slide model (synth/stain.ts: the
 * colour), so the classes differ in shape, size, density and arrangement, not in colour: a
 * nearest-centroid classifier on mean RGB gets ~45% of val+test right (chance 25%, contract ≤ 60%;
 * measured by tools/synth-baseline.ts).
 *
 * Pure and deterministic: seeded xoshiro128** streams, no Math.random, PNGs encoded by sharp with
 * fixed options and no metadata, so the same options give byte-identical files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { mixSeed, Rng, SEED_STREAM } from '../nn/random.ts';
import { Canvas } from './synth/canvas.ts';
import { type Painter, PAINTERS } from './synth/painters.ts';
import { clearWhiteSpace, normaliseMeanColour, sampleStain, stainToRgb } from './synth/stain.ts';

export const SYNTH_CLASSES = ['NORM', 'SCLC', 'SC', 'ADC'] as const;
export type SynthClass = (typeof SYNTH_CLASSES)[number];

const PAINTER_OF: Record<SynthClass, Painter> = PAINTERS;

/** Bumped whenever the pixels a seed produces change. */
export const SYNTH_VERSION = 2;

export interface SynthOptions {
  out: string;
  perClass: number;
  size: number;
  seed: number;
  layout: 'split' | 'flat';
  /**
   * Per-image stain variation: 1 (default) is the generator's mild, class-independent variation;
   * above 1 each image's haematoxylin and eosin strengths are also scaled by log-normal factors
   * after the mean-colour pull (sd 0.3·(v − 1) shared, 0.4·(v − 1) per stain), from their own
   * stream, so images differ strongly in stain as real slides do. The pixels at 1 are unchanged.
   */
  stainVariation?: number;
}

export type SynthSplit = 'train' | 'val' | 'test';

/** The seed of image `index` of class `cls` in a dataset generated with `seed`. */
export function synthImageSeed(seed: number, cls: number, index: number): number {
  return mixSeed(seed, SEED_STREAM.synthImage, cls, index);
}

/**
 * Renders one image of class `cls` (index into SYNTH_CLASSES): RGB8 interleaved, `size`·`size`·3.
 * The stain and imaging conditions come from a stream that does not depend on the class.
 */
export function renderSynthImage(cls: number, size: number, seed: number, stainVariation = 1): Uint8Array {
  const name = SYNTH_CLASSES[cls];
  if (name === undefined) throw new Error(`renderSynthImage: class ${cls} is not one of 0..${SYNTH_CLASSES.length - 1}`);
  if (!Number.isInteger(size) || size < 16) throw new Error(`renderSynthImage: size ${size} must be an integer ≥ 16`);
  const u = size / 256;
  const slide = new Rng(mixSeed(seed, SEED_STREAM.synthSlide));
  const stain = sampleStain(slide, u);
  const canvas = new Canvas(size);
  PAINTER_OF[name](canvas, new Rng(mixSeed(seed, SEED_STREAM.synthPainter, cls)), u);
  clearWhiteSpace(canvas, slide, stain.whiteFraction, u);
  normaliseMeanColour(canvas, stain);
  if (stainVariation !== 1) varyStain(canvas, new Rng(mixSeed(seed, SEED_STREAM.synthStainVariation)), stainVariation - 1);
  return stainToRgb(canvas, stain, slide, u);
}

/** Scales the haematoxylin and eosin maps by log-normal factors (sd 0.3·extra shared, 0.4·extra each). */
function varyStain(canvas: Canvas, rng: Rng, extra: number): void {
  const shared = 0.3 * extra * rng.normal();
  const sh = Math.exp(shared + 0.4 * extra * rng.normal());
  const se = Math.exp(shared + 0.4 * extra * rng.normal());
  canvas.h.forEach((v, i) => (canvas.h[i] = v * sh));
  canvas.e.forEach((v, i) => (canvas.e[i] = v * se));
}

/**
 * Images per split for `perClass` images of a class, in the original's proportions 1,200 / 300 /
 * 100 of 1,600 (75% / 18.75% / 6.25%), each split at least one image once perClass ≥ 3; below 3
 * everything is training data.
 */
export function synthSplitCounts(perClass: number): Record<SynthSplit, number> {
  if (perClass < 3) return { train: perClass, val: 0, test: 0 };
  const test = Math.max(1, Math.round(perClass * 0.0625));
  const val = Math.max(1, Math.round(perClass * 0.1875));
  return { train: perClass - val - test, val, test };
}

/** The relative path of image `index` of class `cls` (split by index order: train, val, test). */
export function synthImagePath(cls: number, index: number, perClass: number, layout: SynthOptions['layout']): string {
  const name = SYNTH_CLASSES[cls] as SynthClass;
  const digits = Math.max(4, String(perClass - 1).length);
  const file = `${name.toLowerCase()}_${String(index).padStart(digits, '0')}.png`;
  if (layout === 'flat') return join(name, file);
  const counts = synthSplitCounts(perClass);
  const split: SynthSplit = index < counts.train ? 'train' : index < counts.train + counts.val ? 'val' : 'test';
  return join(split, name, file);
}

/** PNG bytes of an RGB8 image with fixed encoder settings and no metadata. */
export async function encodeSynthPng(rgb: Uint8Array, size: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false, palette: false })
    .toBuffer();
}

function checkOptions(opts: SynthOptions): void {
  const bad = (what: string) => {
    throw new Error(`synth: ${what}`);
  };
  if (!opts.out) bad('--out is required');
  if (!Number.isInteger(opts.perClass) || opts.perClass < 1) bad(`--per-class ${opts.perClass} must be a positive integer`);
  if (!Number.isInteger(opts.size) || opts.size < 16) bad(`--size ${opts.size} must be an integer ≥ 16`);
  if (!Number.isSafeInteger(opts.seed) || opts.seed < 0) bad(`--seed ${opts.seed} must be a non-negative integer`);
  if (opts.layout !== 'split' && opts.layout !== 'flat') bad(`--layout ${String(opts.layout)} must be split or flat`);
  const v = opts.stainVariation ?? 1;
  if (!(Number.isFinite(v) && v >= 1 && v <= 10)) bad(`--stain-variation ${v} must be a number in [1, 10]`);
}

/**
 * Writes `perClass` images of each class under `opts.out` ('split': {train,val,test}/<CLASS>/,
 * 'flat': <CLASS>/) and `synth.json` (options without the output path, generator version, split
 * counts), so the same options give the same bytes wherever they are written. Encoding (sharp's
 * thread pool) overlaps with painting the next images.
 */
export async function generateSynthDataset(
  opts: SynthOptions,
  onProgress?: (done: number, total: number) => void,
): Promise<{ files: number }> {
  checkOptions(opts);
  const { out, perClass, size, seed, layout, stainVariation = 1 } = opts;
  const total = perClass * SYNTH_CLASSES.length;
  const dirs = new Set<string>();
  for (let cls = 0; cls < SYNTH_CLASSES.length; cls++) {
    for (let index = 0; index < perClass; index++) dirs.add(join(out, synthImagePath(cls, index, perClass, layout), '..'));
  }
  for (const dir of dirs) await mkdir(dir, { recursive: true });
  let done = 0;
  const pending = new Set<Promise<void>>();
  try {
    for (let cls = 0; cls < SYNTH_CLASSES.length; cls++) {
      for (let index = 0; index < perClass; index++) {
        const rgb = renderSynthImage(cls, size, synthImageSeed(seed, cls, index), stainVariation);
        const path = join(out, synthImagePath(cls, index, perClass, layout));
        const job: Promise<void> = encodeSynthPng(rgb, size)
          .then((png) => writeFile(path, png))
          .then(() => {
            pending.delete(job);
            onProgress?.(++done, total);
          });
        pending.add(job);
        if (pending.size >= 4) await Promise.race(pending);
      }
    }
    await Promise.all(pending);
  } catch (e) {
    await Promise.allSettled(pending);
    throw e;
  }
  const manifest = {
    generator: 'lungpath-synth',
    version: SYNTH_VERSION,
    options: { perClass, size, seed, layout, ...(stainVariation !== 1 ? { stainVariation } : {}) },
    classes: SYNTH_CLASSES,
    splits: layout === 'split' ? synthSplitCounts(perClass) : null,
  };
  await writeFile(join(out, 'synth.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return { files: total };
}
