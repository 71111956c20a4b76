/**
 * Classifying images with a trained run: Level 2 on the stacked Level-1 feature maps gives the
 * image's class and probabilities; Level 1 on every patch (patch.stride) gives the per-patch
 * probabilities behind the heatmap.
 */
import type { Runtime } from '../kernels/runtime.ts';
import { patchesPerRow, type ModelConfig } from '../nn/config.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import type { DatasetImage } from './dataset.ts';
import { level2Input } from './features.ts';
import { imagePatches } from './loader.ts';
import { argmax } from './metrics.ts';
import { predictBatch, rows } from './step.ts';

export interface PatchPrediction {
  x: number;
  y: number;
  class: string;
  probabilities: Record<string, number>;
}

export interface ImagePrediction {
  file: string;
  class: string;
  probabilities: Record<string, number>;
  patches: PatchPrediction[];
}

function named(classes: readonly string[], p: ArrayLike<number>): Record<string, number> {
  return Object.fromEntries(classes.map((c, i) => [c, p[i] as number]));
}

export async function predictImages(
  rt: Runtime,
  level1: TwoPartNetwork,
  level2: TwoPartNetwork,
  config: ModelConfig,
  files: readonly string[],
  o: { batchSize: number; warn: (m: string) => void; onMismatch: 'resize' | 'refuse' },
): Promise<ImagePrediction[]> {
  const images: DatasetImage[] = files.map((path) => ({ path, label: 0, className: '' }));
  const classes = config.classes;
  const out: ImagePrediction[] = [];
  const level2Patches = new Map<string, Float32Array>();
  for await (const { image, patches } of imagePatches(rt, images, config, { stride: config.level2.patchStride, warn: o.warn, onMismatch: o.onMismatch })) {
    const input = level2Input(level1, patches, config);
    patches.release();
    level2Patches.set(image.path, await predictBatch(level2, input));
    input.release();
  }
  const perRow = patchesPerRow(config.imageSize, config.patch.size, config.patch.stride);
  for await (const { image, patches } of imagePatches(rt, images, config, { stride: config.patch.stride, warn: o.warn, onMismatch: o.onMismatch })) {
    const logp = await predictBatch(level1, patches);
    patches.release();
    const patchRows = rows(logp, classes.length).map((row) => Array.from(row, Math.exp));
    const image2 = Array.from(level2Patches.get(image.path) ?? [], Math.exp);
    out.push({
      file: image.path,
      class: classes[argmax(image2)] as string,
      probabilities: named(classes, image2),
      patches: patchRows.map((p, k) => ({ x: k % perRow, y: Math.floor(k / perRow), class: classes[argmax(p)] as string, probabilities: named(classes, p) })),
    });
  }
  return out;
}
