/**
 * Classifying one decoded image with a trained two-level model, platform-neutral: the CLI
 * (src/train/predict.ts, images decoded by sharp) and the browser demo (demo/, images decoded by a
 * canvas) both call `classifyImage`, so they run the same kernels in the same order.
 *
 * - Level 2 (the image's class): patches at level2.patchStride → frozen Level-1 `features` → the K
 *   maps stacked as channels [1, K, m, m] in raster order → Level 2 → softmax (MODEL-SPEC.md).
 * - Level 1 (the heatmap): every patch at patch.stride → Level 1 → softmax, raster order.
 *
 * `loadModel` builds both networks from two safetensors files whose `__metadata__.config` holds the
 * run's config (as `lungpath train` writes them) and loads their weights.
 */
import { cropPatches, patchGrid } from '../kernels/crop_patches.ts';
import type { Runtime } from '../kernels/runtime.ts';
import { stateFloatCounts } from './architecture.ts';
import { normaliseColour } from './colour_normalise.ts';
import { derivedSizes, validateConfig, type ModelConfig } from './config.ts';
import { buildImageNetwork, buildPatchNetwork, type TwoPartNetwork } from './networks.ts';
import { logSoftmax } from './ops.ts';
import { parseSafetensors, type SafetensorsFile } from './safetensors.ts';
import { Tensor } from './tensor.ts';
import { loadWeights } from './weights.ts';

export interface PatchPrediction {
  /** Column and row of the patch in the patch grid (patch.stride apart). */
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

export interface ClassifyOptions {
  /** Name reported as `file` (default `image`). */
  file?: string;
  /** Patches per forward pass of Level 1 (default 16); results do not depend on it. */
  batchSize?: number;
}

function named(classes: readonly string[], p: ArrayLike<number>): Record<string, number> {
  return Object.fromEntries(classes.map((c, i) => [c, p[i] as number]));
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

/** Eval-mode probabilities of a batch, read back as rows (exp of log_softmax, in float64). */
async function probabilityRows(net: TwoPartNetwork, x: Tensor, classes: number): Promise<number[][]> {
  const logits = net.forward(x, { tape: null, seed: 0 });
  const logp = logSoftmax(logits);
  logits.release();
  const values = await logp.read();
  logp.release();
  return Array.from({ length: values.length / classes }, (_, i) => Array.from(values.subarray(i * classes, (i + 1) * classes), Math.exp));
}

/**
 * Classifies one image: `rgb` is imageSize×imageSize RGB8, interleaved, row-major (already
 * decoded and resized). Both networks are put in eval mode; everything allocated is released.
 */
export async function classifyImage(
  rt: Runtime,
  level1: TwoPartNetwork,
  level2: TwoPartNetwork,
  config: ModelConfig,
  rgb: Uint8Array,
  options: ClassifyOptions = {},
): Promise<ImagePrediction> {
  const side = config.imageSize;
  if (rgb.length !== side * side * 3) {
    throw new RangeError(`classifyImage: expected ${side}×${side} RGB8 (${side * side * 3} bytes), got ${rgb.length} bytes`);
  }
  const batchSize = options.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`classifyImage: batchSize must be a positive integer, got ${batchSize}`);
  level1.eval();
  level2.eval();
  const classes = config.classes;
  const img = { width: side, height: side };
  const p = config.patch.size;
  const image = rt.upload(normaliseColour(config, rgb), `image ${options.file ?? 'image'}`);
  try {
    const { level2Patches, featureMapSize } = derivedSizes(config);
    const level2Spec = { size: p, stride: config.level2.patchStride };
    const patches = new Tensor(rt, cropPatches(rt, image, img, level2Spec), [patchGrid(img, level2Spec).count, 3, p, p], 'level-2 patches');
    let maps: Tensor;
    try {
      maps = level1.features.forward(patches, { tape: null, seed: 0 });
    } finally {
      patches.release();
    }
    const stacked = maps.reshape([1, level2Patches, featureMapSize, featureMapSize], 'level-2 input');
    maps.release();
    const imageProbabilities = (await probabilityRows(level2, stacked, classes.length).finally(() => stacked.release()))[0] as number[];

    const grid = patchGrid(img, config.patch);
    const patchProbabilities: number[][] = [];
    for (let first = 0; first < grid.count; first += batchSize) {
      const count = Math.min(batchSize, grid.count - first);
      const batch = new Tensor(rt, cropPatches(rt, image, img, config.patch, { first, count }), [count, 3, p, p], 'level-1 patches');
      patchProbabilities.push(...(await probabilityRows(level1, batch, classes.length).finally(() => batch.release())));
    }
    return {
      file: options.file ?? 'image',
      class: classes[argmax(imageProbabilities)] as string,
      probabilities: named(classes, imageProbabilities),
      patches: patchProbabilities.map((row, k) => ({
        x: k % grid.perRow,
        y: Math.floor(k / grid.perRow),
        class: classes[argmax(row)] as string,
        probabilities: named(classes, row),
      })),
    };
  } finally {
    rt.release(image);
  }
}

/** A weights file: its bytes and the name used in errors. */
export interface ModelFile {
  name: string;
  bytes: Uint8Array;
}

export interface LoadedModel {
  config: ModelConfig;
  level1: TwoPartNetwork;
  level2: TwoPartNetwork;
  /** Frees both networks' GPU memory. */
  destroy(): void;
}

function asModelFile(file: Uint8Array | ModelFile, fallback: string): ModelFile {
  return file instanceof Uint8Array ? { name: fallback, bytes: file } : file;
}

function parseCheckpoint(file: ModelFile): SafetensorsFile {
  try {
    return parseSafetensors(file.bytes, file.name);
  } catch (e) {
    throw new Error(`${(e as Error).message} — not a valid lungpath checkpoint (expected the level1/level2.safetensors of a run)`);
  }
}

function configOf(file: ModelFile, parsed: SafetensorsFile): ModelConfig {
  const text = parsed.metadata.config;
  if (text === undefined) {
    throw new Error(`${file.name}: not a lungpath checkpoint (no model config in its __metadata__; expected the level1/level2.safetensors of a run)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file.name}: the model config in its __metadata__ is not valid JSON (${(e as Error).message})`);
  }
  try {
    return validateConfig(json);
  } catch (e) {
    throw new Error(`${file.name}: ${(e as Error).message}`);
  }
}

/** The `level` a run's weights file declares in its metadata ('level1', 'level2'), or null. */
export function checkpointLevel(bytes: Uint8Array, name = 'weights'): string | null {
  return parseCheckpoint({ name, bytes }).metadata.level ?? null;
}

/**
 * Two weights files in Level-1, Level-2 order, from their `level` metadata (any order given).
 * Throws a message naming the files when they are not one Level-1 and one Level-2 file.
 */
export function orderModelFiles(files: readonly ModelFile[]): [ModelFile, ModelFile] {
  if (files.length !== 2) throw new Error(`a model is two files (level1.safetensors and level2.safetensors), ${files.length} given`);
  const levels = files.map((f) => checkpointLevel(f.bytes, f.name));
  const first = files[levels.indexOf('level1')];
  const second = files[levels.indexOf('level2')];
  if (!first || !second) {
    const found = files.map((f, i) => `${f.name}: ${levels[i] ?? 'no level in its metadata'}`).join('; ');
    throw new Error(`a model is one Level-1 and one Level-2 weights file from the same run (found ${found})`);
  }
  return [first, second];
}

/**
 * Builds both networks from a run's weights files, taking the config from their
 * `__metadata__.config`, and loads the weights (waits until they are on the GPU). Every error names
 * the file: not a safetensors file, not a lungpath checkpoint, Level 1 and 2 swapped, configs that
 * differ, or tensors of another architecture.
 */
export async function loadModel(rt: Runtime, level1File: Uint8Array | ModelFile, level2File: Uint8Array | ModelFile): Promise<LoadedModel> {
  const files = [asModelFile(level1File, 'level1.safetensors'), asModelFile(level2File, 'level2.safetensors')] as const;
  const parsed = files.map(parseCheckpoint);
  const configs = files.map((f, i) => configOf(f, parsed[i] as SafetensorsFile));
  files.forEach((f, i) => {
    const level = (parsed[i] as SafetensorsFile).metadata.level;
    const wanted = `level${i + 1}`;
    if (level !== undefined && level !== wanted) throw new Error(`${f.name}: holds the ${level === 'level1' ? 'Level-1 (patch)' : level === 'level2' ? 'Level-2 (image)' : `'${level}'`} network, expected the ${wanted === 'level1' ? 'Level-1 (patch)' : 'Level-2 (image)'} one`);
  });
  const config = configs[0] as ModelConfig;
  if (JSON.stringify(config) !== JSON.stringify(configs[1])) {
    throw new Error(`${files[0].name} and ${files[1].name} come from different runs: their model configs differ`);
  }
  // A file's metadata could describe a network far larger than the file itself: check the sizes
  // before building (and allocating) anything.
  const expected = stateFloatCounts(config);
  files.forEach((f, i) => {
    const held = [...(parsed[i] as SafetensorsFile).tensors.values()].filter((t) => t.dtype === 'F32').reduce((n, t) => n + t.data.byteLength / 4, 0);
    const wanted = i === 0 ? expected.level1 : expected.level2;
    if (held !== wanted) {
      throw new Error(`${f.name}: holds ${held} float values, but the network its config describes has ${wanted} (another architecture, or a damaged file)`);
    }
  });
  const level1 = buildPatchNetwork(rt, config, 0);
  const level2 = buildImageNetwork(rt, config, 0);
  const destroy = () => {
    level1.destroy();
    level2.destroy();
  };
  try {
    loadWeights(level1, parsed[0] as SafetensorsFile, files[0].name);
    loadWeights(level2, parsed[1] as SafetensorsFile, files[1].name);
    await rt.sync();
  } catch (e) {
    destroy();
    throw e;
  }
  return { config, level1: level1.eval(), level2: level2.eval(), destroy };
}
