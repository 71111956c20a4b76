/**
 * Level-2 (image-level) probabilities of a batch of images in one pass: each image's Level-2
 * patches are cropped on the GPU and copied side by side, Level-1 features run over all of them at
 * once and Level 2 over the stacked maps — the same arithmetic as `classifyImage`
 * (classify.ts) for one image, batched for whole slides, where thousands of tiles go through. Runs
 * in Node and in browsers (the demo classifies a local slide with it).
 */
import { cropPatches, patchGrid } from '../kernels/crop_patches.ts';
import type { Runtime } from '../kernels/runtime.ts';
import { normaliseColour } from './colour_normalise.ts';
import { derivedSizes, type ModelConfig } from './config.ts';
import type { TwoPartNetwork } from './networks.ts';
import { logSoftmax } from './ops.ts';
import { Tensor } from './tensor.ts';

export interface BatchTimings {
  /** Milliseconds spent queueing the images' bytes for the GPU (CPU side). */
  uploadMs: number;
  /** Milliseconds from the first crop until the probabilities were read back. */
  gpuMs: number;
}

/**
 * Eval-mode Level-2 class probabilities (rows in config.classes order, float64 from exp of
 * log_softmax) of `images`, each imageSize×imageSize RGB8 interleaved. Both networks are put in
 * eval mode; everything allocated is released.
 */
export async function classifyImageBatch(
  rt: Runtime,
  level1: TwoPartNetwork,
  level2: TwoPartNetwork,
  config: ModelConfig,
  images: readonly Uint8Array[],
  timings?: BatchTimings,
): Promise<number[][]> {
  const side = config.imageSize;
  if (images.length === 0) return [];
  for (const rgb of images) {
    if (rgb.length !== side * side * 3) throw new RangeError(`classifyImageBatch: expected ${side}×${side} RGB8 (${side * side * 3} bytes), got ${rgb.length} bytes`);
  }
  level1.eval();
  level2.eval();
  const p = config.patch.size;
  const spec = { size: p, stride: config.level2.patchStride };
  const img = { width: side, height: side };
  const { level2Patches, featureMapSize } = derivedSizes(config);
  const perImage = patchGrid(img, spec).count;
  const patchBytes = 12 * p * p;
  const started = performance.now();
  const input = new Tensor(rt, rt.alloc(images.length * perImage * patchBytes, 'slide batch patches'), [images.length * perImage, 3, p, p], 'slide batch patches');
  let uploadMs = 0;
  let maps: Tensor;
  try {
    images.forEach((rgb, b) => {
      const t0 = performance.now();
      const image = rt.upload(normaliseColour(config, rgb), `slide tile ${b}`);
      uploadMs += performance.now() - t0;
      const patches = cropPatches(rt, image, img, spec);
      rt.copy(patches, input.buffer, perImage * patchBytes, 0, b * perImage * patchBytes);
      rt.release(patches);
      rt.release(image);
    });
    maps = level1.features.forward(input, { tape: null, seed: 0 });
  } finally {
    input.release();
  }
  const stacked = maps.reshape([images.length, level2Patches, featureMapSize, featureMapSize], 'level-2 input');
  maps.release();
  let values: Float32Array;
  try {
    const logits = level2.forward(stacked, { tape: null, seed: 0 });
    const logp = logSoftmax(logits);
    logits.release();
    values = await logp.read().finally(() => logp.release());
  } finally {
    stacked.release();
  }
  if (timings) {
    timings.uploadMs += uploadMs;
    timings.gpuMs += performance.now() - started - uploadMs;
  }
  const k = config.classes.length;
  return Array.from({ length: images.length }, (_, i) => Array.from(values.subarray(i * k, (i + 1) * k), Math.exp));
}
