/**
 * The two-level model's configuration: the JSON schema of `config.json` in a run folder and of the
 * weights' metadata, the `seed` preset (MODEL-SPEC.md exactly), the small `tiny` preset and the
 * `tile` preset for real 224-px tiles, and the
 * sizes both networks derive from it. A config that cannot work is refused with a message naming
 * the field. The layer lists the sizes feed are in architecture.ts.
 */

import { checkColourNormalise, type ColourNormalise } from './colour_normalise.ts';

export interface LevelBlocks {
  /** Output channels of each block. */
  widths: number[];
  /** Whether each block ends with a 2×2 stride-2 conv. */
  downsample: boolean[];
}

export interface ModelConfig {
  classes: string[];
  /** Images are square, `imageSize` pixels a side. */
  imageSize: number;
  patch: { size: number; stride: number };
  level1: LevelBlocks;
  level2: LevelBlocks & { patchStride: number; hidden: number[]; dropout: number; linearInit?: LinearInit };
  /**
   * Per-image colour normalisation applied to every image before patching, at training and at
   * every use of the run (colour_normalise.ts). Absent means none.
   */
  colourNormalise?: ColourNormalise;
}

/**
 * How Level 2's Linear layers start (bias 0 either way): `normal-0.01`, N(0, 0.01) — the original's
 * (MODEL-SPEC.md), and what an absent field means; `kaiming-normal`, N(0, 2 / fan_in) — as every conv
 * is initialised. Only the scale of the same normal draws differs.
 */
export const LINEAR_INITS = ['normal-0.01', 'kaiming-normal'] as const;
export type LinearInit = (typeof LINEAR_INITS)[number];

export const SEED_CONFIG: ModelConfig = {
  classes: ['NORM', 'SCLC', 'SC', 'ADC'],
  imageSize: 2560,
  patch: { size: 512, stride: 256 },
  level1: { widths: [16, 32, 64, 128, 256], downsample: [true, true, true, false, false] },
  level2: { patchStride: 512, widths: [64, 128], downsample: [true, true], hidden: [128, 128, 64], dropout: 0.5 },
};

/**
 * Small enough to train on a CPU WebGPU adapter: 256² images, 64² patches, narrow blocks. Level 2's
 * Linear layers start Kaiming-normal: with the original's N(0, 0.01), each of its four narrow layers
 * (16–32 inputs) scales the signal by 0.01·√fan_in ≈ 0.04–0.06, and Level 2 sat at ln 4 for ~4
 * epochs, then at 50% for ~10, and in one default run never left 50% (README, "Measured").
 */
export const TINY_CONFIG: ModelConfig = {
  classes: ['NORM', 'SCLC', 'SC', 'ADC'],
  imageSize: 256,
  patch: { size: 64, stride: 32 },
  level1: { widths: [8, 8, 16, 16, 16], downsample: [true, true, true, false, false] },
  level2: { patchStride: 64, widths: [16, 16], downsample: [true, false], hidden: [32, 32, 16], dropout: 0.5, linearInit: 'kaiming-normal' },
};

/**
 * Real tiles of 224–512 px (LC25000-like) on a CPU WebGPU adapter within 25 minutes: each tile is
 * resized to 112² and cut into 64² patches at stride 24 (9 per image, 3×3, covering it edge to
 * edge: a Level-1 epoch of the 771-image dev set is 434 batches of 16), so one patch sees 57% of a
 * tile's side instead of 29% at 224² (64 / 64): on the dev set's validation split eval-mode
 * Level-1 accuracy rose from 85.3/86.1% to 92.3/90.5% and Level-2 best validation accuracy from
 * 91.1/92.9% to 94.6/96.4% over two seeds (docs/science-history.md, round 3; 96² and a 112² grid
 * at stride 16 were no better). Blocks twice as wide as tiny's deeper ones (they run at 16² and 8²,
 * so width there is cheap; doubling blocks 4–5 again lost 3 points of validation patches: README,
 * *Science results*, round 4); Level 2's Linear layers start Kaiming-normal, as tiny's (with N(0,
 * 0.01) Level 2 sat at 66% for 9 epochs in a screen at 112²). Each image's per-channel RGB mean and
 * std are matched to the training set's average before patching (colour_normalise.ts; `lungpath
 * train` fills in the target).
 */
export const TILE_CONFIG: ModelConfig = {
  classes: ['NORM', 'SCLC', 'SC', 'ADC'],
  imageSize: 112,
  patch: { size: 64, stride: 24 },
  level1: { widths: [8, 16, 16, 32, 32], downsample: [true, true, true, false, false] },
  level2: { patchStride: 24, widths: [16, 16], downsample: [true, false], hidden: [32, 32, 16], dropout: 0.5, linearInit: 'kaiming-normal' },
  colourNormalise: { method: 'channel-stats' },
};

export const PRESETS: Readonly<Record<string, ModelConfig>> = { seed: SEED_CONFIG, tiny: TINY_CONFIG, tile: TILE_CONFIG };

/** Patches per row (= per column) of a square image: floor((image − patch) / stride) + 1. */
export function patchesPerRow(imageSize: number, patchSize: number, stride: number): number {
  return Math.floor((imageSize - patchSize) / stride) + 1;
}

export interface DerivedSizes {
  /** Side of the Level-1 patch feature map (512 → 64 in the seed). */
  featureMapSize: number;
  /** Level-1 patches per image (81 in the seed). */
  level1Patches: number;
  /** Level-2 stacked maps per image, K (25 in the seed). */
  level2Patches: number;
  /** Side of the Level-2 map before its classifier (16 in the seed). */
  level2MapSize: number;
}

export function derivedSizes(config: ModelConfig): DerivedSizes {
  const featureMapSize = downsampled(config.patch.size, config.level1.downsample);
  const perRow1 = patchesPerRow(config.imageSize, config.patch.size, config.patch.stride);
  const perRow2 = patchesPerRow(config.imageSize, config.patch.size, config.level2.patchStride);
  return {
    featureMapSize,
    level1Patches: perRow1 * perRow1,
    level2Patches: perRow2 * perRow2,
    level2MapSize: downsampled(featureMapSize, config.level2.downsample),
  };
}

/** Side after each 2×2 stride-2 conv: floor(size / 2), as PyTorch. */
function downsampled(size: number, downsample: boolean[]): number {
  return downsample.reduce((s, d) => (d ? Math.floor(s / 2) : s), size);
}

function positiveInteger(value: unknown, field: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new Error(`config: ${field} must be a positive integer, got ${JSON.stringify(value)}`);
}

function checkBlocks(blocks: LevelBlocks | undefined, field: string): void {
  if (!blocks || !Array.isArray(blocks.widths) || !Array.isArray(blocks.downsample)) {
    throw new Error(`config: ${field} needs "widths" and "downsample" arrays`);
  }
  if (blocks.widths.length === 0) throw new Error(`config: ${field}.widths is empty`);
  if (blocks.widths.length !== blocks.downsample.length) {
    throw new Error(`config: ${field}.widths has ${blocks.widths.length} entries but ${field}.downsample has ${blocks.downsample.length}`);
  }
  blocks.widths.forEach((w, i) => positiveInteger(w, `${field}.widths[${i}]`));
  blocks.downsample.forEach((d, i) => {
    if (typeof d !== 'boolean') throw new Error(`config: ${field}.downsample[${i}] must be true or false`);
  });
}

/** Throws a message naming the first field that makes `config` unusable; returns it typed. */
export function validateConfig(config: unknown): ModelConfig {
  const c = config as ModelConfig;
  if (typeof c !== 'object' || c === null) throw new Error('config: expected a JSON object');
  if (!Array.isArray(c.classes) || c.classes.length < 2) throw new Error(`config: classes needs at least two names, got ${JSON.stringify(c.classes)}`);
  c.classes.forEach((name, i) => {
    if (typeof name !== 'string' || name.length === 0) throw new Error(`config: classes[${i}] must be a non-empty string`);
  });
  if (new Set(c.classes).size !== c.classes.length) throw new Error(`config: classes has a duplicate name: ${JSON.stringify(c.classes)}`);
  positiveInteger(c.imageSize, 'imageSize');
  positiveInteger(c.patch?.size, 'patch.size');
  positiveInteger(c.patch?.stride, 'patch.stride');
  if (c.patch.size > c.imageSize) throw new Error(`config: patch.size ${c.patch.size} is larger than imageSize ${c.imageSize}`);
  checkBlocks(c.level1, 'level1');
  checkBlocks(c.level2, 'level2');
  positiveInteger(c.level2.patchStride, 'level2.patchStride');
  if (!Array.isArray(c.level2.hidden)) throw new Error('config: level2.hidden must be an array of layer widths');
  c.level2.hidden.forEach((w, i) => positiveInteger(w, `level2.hidden[${i}]`));
  if (typeof c.level2.dropout !== 'number' || !(c.level2.dropout >= 0 && c.level2.dropout < 1)) {
    throw new Error(`config: level2.dropout must be in [0, 1), got ${JSON.stringify(c.level2.dropout)}`);
  }
  if (c.level2.linearInit !== undefined && !(LINEAR_INITS as readonly unknown[]).includes(c.level2.linearInit)) {
    throw new Error(`config: level2.linearInit must be one of ${LINEAR_INITS.join(', ')}, got ${JSON.stringify(c.level2.linearInit)}`);
  }
  checkColourNormalise(c.colourNormalise);
  const sizes = derivedSizes(c);
  if (sizes.featureMapSize < 1) {
    throw new Error(`config: level1 downsamples a ${c.patch.size}-pixel patch ${c.level1.downsample.filter(Boolean).length} times, below one pixel`);
  }
  if (sizes.level2MapSize < 1) {
    throw new Error(`config: level2 downsamples the ${sizes.featureMapSize}-pixel feature map ${c.level2.downsample.filter(Boolean).length} times, below one pixel`);
  }
  return c;
}
