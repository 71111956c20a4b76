/**
 * Colour-only baseline of the synthetic dataset (src/train/synth.ts): renders the split dataset in
 * memory (the same pixels the PNG files hold), reduces each image to its mean RGB, fits one centroid
 * per class on the train split and classifies val and test by the nearest centroid (Euclidean).
 * Chance is 25%; the generator's contract is ≤ 60% (it gives ~45%: the classes differ in morphology,
 * not colour). Also times the painting, and optionally writes a contact sheet (one row per class)
 * and a sheet of 64² crops (the `tiny` preset's patch size).
 *
 *   npx tsx tools/synth-baseline.ts [--per-class 100] [--size 256] [--seed 1]
 *                                   [--sheet docs/synth-contact-sheet.png] [--crops PATH]
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { renderSynthImage, SYNTH_CLASSES, synthImageSeed, synthSplitCounts, type SynthSplit } from '../src/train/synth.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? (process.argv[i + 1] as string) : fallback;
}

const perClass = Number(arg('per-class', '100'));
const size = Number(arg('size', '256'));
const seed = Number(arg('seed', '1'));
const sheetPath = arg('sheet', '');
const cropsPath = arg('crops', '');

type Sample = { cls: number; split: SynthSplit; mean: [number, number, number] };

function meanRgb(rgb: Uint8Array): [number, number, number] {
  const sum = [0, 0, 0];
  for (let i = 0; i < rgb.length; i += 3) {
    sum[0]! += rgb[i]!;
    sum[1]! += rgb[i + 1]!;
    sum[2]! += rgb[i + 2]!;
  }
  const n = rgb.length / 3;
  return [sum[0]! / n, sum[1]! / n, sum[2]! / n];
}

const counts = synthSplitCounts(perClass);
const samples: Sample[] = [];
const firstImages: Uint8Array[][] = SYNTH_CLASSES.map(() => []);
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let cls = 0; cls < SYNTH_CLASSES.length; cls++) {
  for (let index = 0; index < perClass; index++) {
    const rgb = renderSynthImage(cls, size, synthImageSeed(seed, cls, index));
    const split: SynthSplit = index < counts.train ? 'train' : index < counts.train + counts.val ? 'val' : 'test';
    samples.push({ cls, split, mean: meanRgb(rgb) });
    if (index < 6) firstImages[cls]!.push(rgb);
  }
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;

const centroids = SYNTH_CLASSES.map((_, cls) => {
  const own = samples.filter((s) => s.cls === cls && s.split === 'train');
  return [0, 1, 2].map((c) => own.reduce((a, s) => a + s.mean[c]!, 0) / own.length);
});
function predict(mean: number[]): number {
  let best = 0;
  let bestD = Infinity;
  centroids.forEach((ctr, cls) => {
    const d = Math.hypot(mean[0]! - ctr[0]!, mean[1]! - ctr[1]!, mean[2]! - ctr[2]!);
    if (d < bestD) [best, bestD] = [cls, d];
  });
  return best;
}
function accuracy(splits: SynthSplit[]): string {
  const set = samples.filter((s) => splits.includes(s.split));
  const right = set.filter((s) => predict(s.mean) === s.cls).length;
  return `${((100 * right) / set.length).toFixed(1)}% (${right}/${set.length})`;
}

console.log(`synth colour-only baseline: ${perClass} per class at ${size}², seed ${seed}; split ${JSON.stringify(counts)} per class`);
console.log(
  `painting (one thread, no PNG encoding): ${(cpuMs / samples.length).toFixed(1)} ms CPU, ${(ms / samples.length).toFixed(1)} ms wall per image` +
    ` (${((1000 * samples.length) / cpuMs).toFixed(0)} images/s of CPU)`,
);
SYNTH_CLASSES.forEach((name, cls) => console.log(`  centroid ${name.padEnd(4)} RGB ${centroids[cls]!.map((v) => v.toFixed(1)).join(', ')}`));
console.log(`nearest centroid on mean RGB: val ${accuracy(['val'])}, test ${accuracy(['test'])}, val+test ${accuracy(['val', 'test'])}, train ${accuracy(['train'])}`);

/** One row per class: a label, then the first images (or 64² crops at stride 64 of the first image). */
async function writeSheet(path: string, tiles: Uint8Array[][], tile: number): Promise<void> {
  const label = 120;
  const gap = 6;
  const cols = Math.max(...tiles.map((r) => r.length));
  const width = label + cols * (tile + gap);
  const height = tiles.length * (tile + gap) + gap;
  const composites: OverlayOptions[] = [];
  for (let r = 0; r < tiles.length; r++) {
    const y = gap + r * (tile + gap);
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${label}" height="${tile}"><text x="10" y="${tile / 2 + 9}" font-family="DejaVu Sans" font-size="26" font-weight="bold" fill="#222">${SYNTH_CLASSES[r]}</text></svg>`;
    composites.push({ input: Buffer.from(svg), left: 0, top: y });
    tiles[r]!.forEach((rgb, c) => {
      composites.push({ input: Buffer.from(rgb), raw: { width: tile, height: tile, channels: 3 }, left: label + c * (tile + gap), top: y });
    });
  }
  mkdirSync(dirname(path), { recursive: true });
  await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite(composites)
    .png({ compressionLevel: 9, palette: true }) // a palette PNG: a third of the size, for docs/
    .toFile(path);
  console.log(`wrote ${path} (${width}×${height})`);
}

function crop(rgb: Uint8Array, x0: number, y0: number, w: number): Uint8Array {
  const out = new Uint8Array(w * w * 3);
  for (let y = 0; y < w; y++) out.set(rgb.subarray(((y0 + y) * size + x0) * 3, ((y0 + y) * size + x0 + w) * 3), y * w * 3);
  return out;
}

if (sheetPath) await writeSheet(sheetPath, firstImages, size);
if (cropsPath) {
  const crops = firstImages.map((imgs) => imgs.slice(0, 3).flatMap((rgb) => [crop(rgb, 0, 0, 64), crop(rgb, 96, 96, 64), crop(rgb, 192, 64, 64)]));
  await writeSheet(cropsPath, crops, 64);
}
