/**
 * Level-2 inputs: each image cut into patches at level2.patchStride, each patch through the frozen
 * Level-1 `features` in eval mode, the K maps stacked as channels in raster order → [K, m, m].
 * Computed once per split and cached on disk as raw float32 plus a JSON sidecar, tied to the
 * Level-1 weights, config, image list and every image's bytes by a SHA-256 (a stale cache — other
 * weights, or an image deleted, cut short or replaced, even keeping its size and modification
 * time — is rebuilt, never reused). A stop requested by a signal ends the computation between two
 * images (the partial file is deleted).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../kernels/runtime.ts';
import { derivedSizes, type ModelConfig } from '../nn/config.ts';
import { asDiskFull, writeAll, writeFileAtomic } from '../nn/files.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import { Tensor } from '../nn/tensor.ts';
import { contentDigest } from './data_manifest.ts';
import type { DatasetImage } from './dataset.ts';
import { imagePatches } from './loader.ts';
import { StopRequested, stopSignal } from './stop_signal.ts';

/** The 8 flips/rotations of an image (imagePatches' `variant`); 0 is the image as it is. */
export const DIHEDRAL_VARIANTS: readonly number[] = [0, 1, 2, 3, 4, 5, 6, 7];

/** Stacked feature maps of one image, [1, K, m, m] on the GPU (caller releases). */
export function level2Input(level1: TwoPartNetwork, patches: Tensor, config: ModelConfig): Tensor {
  const { level2Patches, featureMapSize } = derivedSizes(config);
  const maps = level1.features.forward(patches, { tape: null, seed: 0 });
  const stacked = maps.reshape([1, level2Patches, featureMapSize, featureMapSize]);
  maps.release();
  return stacked;
}

export interface FeatureSplit {
  /** Images in cache order. */
  count: number;
  labels: number[];
  /** Floats per image: K·m·m. */
  itemSize: number;
  read(index: number): Float32Array;
  close(): void;
}

function cacheKey(level1Bytes: Uint8Array, config: ModelConfig, images: readonly DatasetImage[], variant: number): string {
  const hash = createHash('sha256');
  hash.update(level1Bytes);
  hash.update(JSON.stringify(config));
  hash.update(`variant ${variant}`);
  for (const image of images) {
    let digest: string;
    try {
      digest = contentDigest(image.path);
    } catch (e) {
      throw new Error(`${image.path}: cannot read the image for the feature cache (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    hash.update(`${image.path}\0${image.label}\0${digest}\n`);
  }
  return hash.digest('hex').slice(0, 24);
}

function openSplit(dataPath: string, meta: { labels: number[]; itemSize: number }): FeatureSplit {
  const fd = openSync(dataPath, 'r');
  return {
    count: meta.labels.length,
    labels: meta.labels,
    itemSize: meta.itemSize,
    read(index) {
      const out = new Float32Array(meta.itemSize);
      readSync(fd, new Uint8Array(out.buffer), 0, out.byteLength, index * out.byteLength);
      return out;
    },
    close: () => closeSync(fd),
  };
}

/**
 * The cached Level-2 inputs of `images` (computed now when missing or stale). `level1Bytes` are
 * the Level-1 weights file's bytes, which the cache key covers.
 */
export async function cachedFeatures(
  rt: Runtime,
  cacheDir: string,
  name: string,
  level1: TwoPartNetwork,
  level1Bytes: Uint8Array,
  config: ModelConfig,
  images: readonly DatasetImage[],
  options: { variant?: number; warn: (m: string) => void; onMismatch: 'resize' | 'refuse'; log?: (m: string) => void },
): Promise<FeatureSplit> {
  const variant = options.variant ?? 0;
  const key = cacheKey(level1Bytes, config, images, variant);
  const dataPath = join(cacheDir, `level2-${name}-${key}.f32`);
  const metaPath = `${dataPath}.json`;
  if (existsSync(dataPath) && existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as { labels: number[]; itemSize: number };
    if (statSync(dataPath).size === meta.labels.length * meta.itemSize * 4) return openSplit(dataPath, meta);
  }
  options.log?.(`level 2: computing Level-1 feature maps of ${images.length} ${name} images (cached in ${cacheDir})`);
  const { level2Patches, featureMapSize } = derivedSizes(config);
  const itemSize = level2Patches * featureMapSize * featureMapSize;
  const tmp = `${dataPath}.${process.pid}.tmp`;
  mkdirSync(cacheDir, { recursive: true }); // a run folder whose cache/ was deleted: rebuilt, not refused
  const fd = openSync(tmp, 'w');
  const labels: number[] = [];
  level1.eval();
  try {
    for await (const { image, patches } of imagePatches(rt, [...images], config, { stride: config.level2.patchStride, variant, warn: options.warn, onMismatch: options.onMismatch })) {
      const input = level2Input(level1, patches, config);
      patches.release();
      const values = await input.read();
      input.release();
      try {
        writeAll(fd, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      } catch (e) {
        throw asDiskFull(e, dataPath, images.length * itemSize * 4);
      }
      labels.push(image.label);
      if (stopSignal.requested) throw new StopRequested(stopSignal.requested, null, `the Level-1 feature maps of the ${name} images (${labels.length} of ${images.length} done)`);
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw asDiskFull(e, dataPath, images.length * itemSize * 4);
  }
  closeSync(fd);
  renameSync(tmp, dataPath);
  const meta = { labels, itemSize, files: images.map((i) => i.path) };
  writeFileAtomic(metaPath, JSON.stringify(meta));
  return openSplit(dataPath, meta);
}

/**
 * The training images' cached Level-2 inputs as trainLevel2 reads them: with `augment`
 * (--level2-augment on) one split per flip/rotation, each epoch reading one variant per image;
 * otherwise the images as they are.
 */
export async function cachedTrainFeatures(
  rt: Runtime,
  cacheDir: string,
  level1: TwoPartNetwork,
  level1Bytes: Uint8Array,
  config: ModelConfig,
  images: readonly DatasetImage[],
  augment: boolean,
  options: { warn: (m: string) => void; onMismatch: 'resize' | 'refuse'; log?: (m: string) => void },
): Promise<FeatureSplit[]> {
  const splits: FeatureSplit[] = [];
  for (const variant of augment ? DIHEDRAL_VARIANTS : [0]) splits.push(await cachedFeatures(rt, cacheDir, 'train', level1, level1Bytes, config, images, { ...options, variant }));
  return splits;
}

/**
 * One split read through per-item variants: item i comes from `variants[choice[i]]` (the same
 * images in the same order, each cached under another flip/rotation). Closing is the variants'.
 */
export function variantView(variants: readonly FeatureSplit[], choice: Uint8Array): FeatureSplit {
  const first = variants[0] as FeatureSplit;
  if (choice.length !== first.count) throw new Error(`variantView: ${choice.length} choices for ${first.count} items`);
  return { ...first, read: (index) => (variants[choice[index] as number] as FeatureSplit).read(index), close: () => {} };
}

/** Uploads items `indices` of a split as one [n, K, m, m] batch, plus their labels. */
export function featureBatch(rt: Runtime, split: FeatureSplit, indices: readonly number[], config: ModelConfig): { x: Tensor; labels: GPUBuffer; labelsCpu: Uint32Array } {
  const { level2Patches, featureMapSize } = derivedSizes(config);
  const data = new Float32Array(indices.length * split.itemSize);
  indices.forEach((index, i) => data.set(split.read(index), i * split.itemSize));
  const labelsCpu = Uint32Array.from(indices, (i) => split.labels[i] as number);
  const x = Tensor.fromArray(rt, data, [indices.length, level2Patches, featureMapSize, featureMapSize], 'level2 input');
  return { x, labels: rt.upload(labelsCpu, 'labels'), labelsCpu };
}
