/**
 * The colour-normalised copy of a test split: each image's per-channel RGB mean and std set to the
 * training images' average and saved losslessly, so colour-only classifiers fall to chance on it and
 * only what a model learned of the tissue is left to score (tools/science.ts, tools/cross-validate.ts).
 */
import { cpSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import type { Runtime } from '../src/kernels/runtime.ts';
import type { Dataset, DatasetImage } from '../src/train/dataset.ts';
import { evaluateRun, type EvaluationReport } from '../src/train/evaluate.ts';
import { collectResizeNotes, MODEL_SIZE_HINT } from '../src/train/resize_notes.ts';
import { RunFolder } from '../src/train/run_folder.ts';
import { colourStats, type ColourStats } from './colour_baselines.ts';

/** Writes each test image with its per-channel mean and std set to `target` (8-bit PNG). */
export async function colourNormalise(images: DatasetImage[], target: ColourStats, outDir: string): Promise<DatasetImage[]> {
  const out: DatasetImage[] = [];
  for (const image of images) {
    const stats = await colourStats(image.path);
    const { data, info } = await sharp(image.path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const pixels = Buffer.alloc(data.length);
    for (let i = 0; i < data.length; i++) {
      const c = i % 3;
      const v = (((data[i] as number) - (stats.mean[c] as number)) / ((stats.std[c] as number) || 1)) * (target.std[c] as number) + (target.mean[c] as number);
      pixels[i] = Math.min(255, Math.max(0, Math.round(v)));
    }
    const dir = join(outDir, image.className);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${basename(image.path).replace(/\.[^.]+$/, '')}.png`);
    await sharp(pixels, { raw: { width: info.width, height: info.height, channels: 3 } }).png().toFile(path);
    out.push({ ...image, path });
  }
  return out;
}

/**
 * Evaluates a run's weights on `dataset`'s test split in a copy of the run folder (its own feature
 * cache; the run's report is left alone), optionally with 8-way test-time augmentation.
 */
export async function evaluateCopy(rt: Runtime, runDir: string, copyDir: string, dataset: Dataset, tta = false): Promise<EvaluationReport> {
  mkdirSync(copyDir, { recursive: true });
  for (const f of ['config.json', 'level1.safetensors', 'level2.safetensors']) cpSync(join(runDir, f), join(copyDir, f));
  const run = new RunFolder(copyDir);
  run.create();
  const resized = collectResizeNotes((m) => console.warn(`warning: ${m}`));
  const report = await evaluateRun(rt, run, dataset, 'test', { tta, batchSize: 16, warn: resized.warn, onMismatch: 'resize', log: () => {} });
  const summary = resized.summary(run.readConfig().imageSize, MODEL_SIZE_HINT);
  if (summary) console.warn(`note: ${summary}`);
  return report;
}
