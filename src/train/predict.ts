/**
 * Classifying image files with a trained run: each file is decoded by sharp (decode.ts) and
 * classified by `classifyImage` (src/nn/classify.ts) — the same code the browser demo runs on its
 * canvas-decoded pixels. Level 2 on the stacked Level-1 feature maps gives the image's class and
 * probabilities; Level 1 on every patch (patch.stride) gives the per-patch probabilities.
 */
import type { Runtime } from '../kernels/runtime.ts';
import { classifyImage, type ImagePrediction } from '../nn/classify.ts';
import type { ModelConfig } from '../nn/config.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import { decodeImage } from './decode.ts';

export type { ImagePrediction, PatchPrediction } from '../nn/classify.ts';

export async function predictImages(
  rt: Runtime,
  level1: TwoPartNetwork,
  level2: TwoPartNetwork,
  config: ModelConfig,
  files: readonly string[],
  o: { batchSize: number; warn: (m: string) => void; onMismatch: 'resize' | 'refuse' },
): Promise<ImagePrediction[]> {
  const out: ImagePrediction[] = [];
  for (const file of files) {
    const { rgb } = await decodeImage(file, { imageSize: config.imageSize, onMismatch: o.onMismatch, warn: o.warn, patchSize: config.patch.size });
    out.push(await classifyImage(rt, level1, level2, config, rgb, { file, batchSize: o.batchSize }));
  }
  return out;
}
