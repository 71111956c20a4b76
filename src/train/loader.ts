/**
 * Streaming loaders with bounded memory: images are decoded ahead on sharp's thread pool (a few
 * promises in flight), uploaded once as RGB8 bytes, and cut into patches on the GPU
 * (kernels/crop_patches.ts) — no patch is ever built on the CPU.
 *
 * - `PatchBatches` (Level 1 training and validation): the epoch's patch order is a plan computed
 *   up front from (seed, epoch) (patch_plan.ts: the original's windows of `groupImages` images, or
 *   near-iid draws from a pool of `poolImages` resident images), each patch with its own dihedral
 *   variant and colour factors when augmenting (as the original's PatchLevelData, which augments
 *   per patch). The executor uploads an image before the batch of its first patch and releases it
 *   after the batch of its last, decoding ahead in that order. The whole sequence is a pure
 *   function of (images, config, options): a run resumed at epoch e, batch b sees the same batches,
 *   and images with no patch left are not decoded.
 * - `imagePatches` (Level 2 and evaluation): each image's patches at a stride, in raster order,
 *   optionally of the whole image turned by a dihedral variant (test-time augmentation).
 */
import { cropPatches, patchGrid, type PatchSpec } from '../kernels/crop_patches.ts';
import type { Runtime } from '../kernels/runtime.ts';
import type { ModelConfig } from '../nn/config.ts';
import { Tensor } from '../nn/tensor.ts';
import { normaliseColour } from '../nn/colour_normalise.ts';
import { augmentColour, augmentHed } from './augment.ts';
import type { DatasetImage } from './dataset.ts';
import { decodeImage, type DecodedImage, type MismatchPolicy } from './decode.ts';
import { jitterShift, poolPlan, windowPlan, type PatchPlan } from './patch_plan.ts';

export interface DecodeSettings {
  /** Images of another size than config.imageSize: resized with a warning (default) or refused. */
  onMismatch?: MismatchPolicy;
  warn?: (message: string) => void;
  maxPixels?: number;
}

export interface PatchBatchOptions extends DecodeSettings {
  batchSize: number;
  seed: number;
  epoch: number;
  /** Random dihedral variant and colour/contrast/brightness factors per patch. */
  augment: boolean;
  /** Shuffle the image order and the patches of each window (default true); false gives images in order, patches in raster order. */
  shuffle?: boolean;
  /** Window order (poolImages 0): images whose patches are mixed together (default 8). */
  groupImages?: number;
  /**
   * Near-iid order (patch_plan.ts poolPlan): images resident in the pool that patches are drawn
   * from uniformly; 0 (default) keeps the original's windows of `groupImages`.
   */
  poolImages?: number;
  /** When augmenting: HED stain augmentation strength σ (kernels/augment_hed.ts), 0 (default): none. */
  hedStrength?: number;
  /** When augmenting: random crops, each patch moved off its grid origin by up to this many pixels along x and y (default 0: the grid). */
  jitter?: number;
  /** When augmenting: the original's colour/contrast/brightness factors (default true). */
  colourAugment?: boolean;
  /** Images decoded ahead of the one being uploaded (default groupImages, 8 for a pool). */
  prefetch?: number;
  /**
   * Batches of the epoch to leave out at its start (resuming inside an epoch, default 0): the
   * batches that follow are the same as without it, and images none of whose patches are needed
   * are not decoded.
   */
  startBatch?: number;
}

export interface PatchBatch {
  /** [B, 3, p, p] in [0, 1]; the consumer releases it. */
  x: Tensor;
  /** u32[B] class labels; the consumer releases it (rt.release). */
  labels: GPUBuffer;
  labelsCpu: Uint32Array;
  /** Index into the loader's `images` of each patch's image. */
  imageIndex: Int32Array;
  /** Each patch's index in its image's patch grid (y outer, x inner). */
  patchIndex: Int32Array;
  /** When augmenting: each patch's dihedral variant and its [colour, contrast, brightness] factors. */
  variant?: Uint8Array;
  factors?: Float32Array;
  /** When HED-augmenting: each patch's [αH, αE, αD, βH, βE, βD]. */
  hed?: Float32Array;
  /** When augmenting with jitter: each patch's drawn [dx, dy] before clamping to the image (patch_plan.ts jitterShift). */
  jitter?: Int16Array;
}

/** Memory held by a loader, for tests and logs; peaks since construction. */
export interface LoaderStats {
  imagesDecoded: number;
  /** Decodes started and not yet handed over. */
  decodesInFlight: number;
  peakDecodesInFlight: number;
  /** Decoded RGB8 bytes waiting to be uploaded. */
  decodedBytes: number;
  peakDecodedBytes: number;
  /** RGB8 image buffers on the GPU. */
  residentImageBytes: number;
  peakResidentImageBytes: number;
}

function newStats(): LoaderStats {
  return { imagesDecoded: 0, decodesInFlight: 0, peakDecodesInFlight: 0, decodedBytes: 0, peakDecodedBytes: 0, residentImageBytes: 0, peakResidentImageBytes: 0 };
}

function positiveInteger(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`loader: ${what} must be a positive integer, got ${value}`);
}

/** Decodes `paths` in order, keeping up to `ahead` decodes running beyond the one handed out. */
class DecodeAhead {
  private started: Promise<DecodedImage>[] = [];
  private nextToStart = 0;

  constructor(
    private readonly paths: readonly string[],
    private readonly decode: (path: string) => Promise<DecodedImage>,
    private readonly ahead: number,
    private readonly stats: LoaderStats,
  ) {}

  /** The next image's pixels (errors name the file). */
  async next(): Promise<DecodedImage> {
    this.startUpTo(1);
    const promise = this.started.shift() as Promise<DecodedImage>;
    this.startUpTo(this.ahead);
    const image = await promise;
    this.stats.decodesInFlight--;
    this.stats.decodedBytes -= image.rgb.length;
    return image;
  }

  private startUpTo(count: number): void {
    while (this.started.length < count && this.nextToStart < this.paths.length) {
      const path = this.paths[this.nextToStart++] as string;
      const stats = this.stats;
      stats.decodesInFlight++;
      stats.peakDecodesInFlight = Math.max(stats.peakDecodesInFlight, stats.decodesInFlight);
      const promise = this.decode(path).then((image) => {
        stats.imagesDecoded++;
        stats.decodedBytes += image.rgb.length;
        stats.peakDecodedBytes = Math.max(stats.peakDecodedBytes, stats.decodedBytes);
        return image;
      });
      promise.catch(() => {}); // rethrown by next(); a loop that stops early must not leave an unhandled rejection
      this.started.push(promise);
    }
  }
}

function decoderFor(config: ModelConfig, o: DecodeSettings): (path: string) => Promise<DecodedImage> {
  // The run's colour normalisation (colour_normalise.ts) happens here, once per decode, so every
  // Level-1 batch, the BatchNorm recalibration, the feature cache and evaluation see the same pixels.
  return async (path) => {
    const image = await decodeImage(path, { imageSize: config.imageSize, onMismatch: o.onMismatch ?? 'resize', warn: o.warn, maxPixels: o.maxPixels, patchSize: config.patch.size });
    return { ...image, rgb: normaliseColour(config, image.rgb) };
  };
}

/** Level-1 patch batches of `images` for one epoch; iterate once with `for await`. */
export class PatchBatches implements AsyncIterable<PatchBatch> {
  readonly patchesPerImage: number;
  readonly batchesPerEpoch: number;
  readonly stats: LoaderStats = newStats();
  private readonly patch: PatchSpec;
  private readonly groupImages: number;
  private readonly poolImages: number;
  private readonly prefetch: number;

  constructor(
    private readonly rt: Runtime,
    readonly images: readonly DatasetImage[],
    private readonly config: ModelConfig,
    private readonly options: PatchBatchOptions,
  ) {
    positiveInteger('batchSize', options.batchSize);
    this.groupImages = options.groupImages ?? 8;
    positiveInteger('groupImages', this.groupImages);
    this.poolImages = options.poolImages ?? 0;
    if (!Number.isInteger(this.poolImages) || this.poolImages < 0) throw new RangeError(`loader: poolImages must be a non-negative integer, got ${this.poolImages}`);
    this.prefetch = options.prefetch ?? (this.poolImages > 0 ? 8 : this.groupImages);
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new RangeError(`loader: prefetch must be a non-negative integer, got ${this.prefetch}`);
    const startBatch = options.startBatch ?? 0;
    if (!Number.isInteger(startBatch) || startBatch < 0) throw new RangeError(`loader: startBatch must be a non-negative integer, got ${startBatch}`);
    this.patch = { size: config.patch.size, stride: config.patch.stride };
    this.patchesPerImage = patchGrid({ width: config.imageSize, height: config.imageSize }, this.patch).count;
    this.batchesPerEpoch = Math.ceil((images.length * this.patchesPerImage) / options.batchSize);
  }

  /** The epoch's patch order (a pure function of seed, epoch, image count and the options). */
  plan(): PatchPlan {
    const { seed, epoch, augment, shuffle = true, hedStrength = 0, jitter = 0 } = this.options;
    const o = { seed, epoch, augment, shuffle, hedStrength, jitter };
    const n = this.images.length;
    return this.poolImages > 0 ? poolPlan(n, this.patchesPerImage, this.poolImages, o) : windowPlan(n, this.patchesPerImage, this.groupImages, o);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<PatchBatch> {
    const { batchSize, startBatch = 0 } = this.options;
    const plan = this.plan();
    const total = plan.image.length;
    const start = Math.min(total, startBatch * batchSize);
    // Images with a patch at or after `start`, in order of first use; the others are never decoded.
    const firstUse = new Int32Array(this.images.length).fill(-1);
    const lastUse = new Int32Array(this.images.length).fill(-1);
    const loadOrder: number[] = [];
    for (let t = start; t < total; t++) {
      const image = plan.image[t] as number;
      if (firstUse[image] === -1) {
        firstUse[image] = t;
        loadOrder.push(image);
      }
      lastUse[image] = t;
    }
    const decoder = new DecodeAhead(loadOrder.map((i) => (this.images[i] as DatasetImage).path), decoderFor(this.config, this.options), this.prefetch, this.stats);
    const resident = new Map<number, GPUBuffer>();
    let loaded = 0;
    try {
      for (let at = start; at < total; at += batchSize) {
        const end = Math.min(total, at + batchSize);
        if (loaded < loadOrder.length && (firstUse[loadOrder[loaded] as number] as number) < end) {
          while (loaded < loadOrder.length && (firstUse[loadOrder[loaded] as number] as number) < end) {
            const imageIndex = loadOrder[loaded++] as number;
            const decoded = await decoder.next();
            const buffer = this.rt.upload(decoded.rgb, `image ${(this.images[imageIndex] as DatasetImage).path}`);
            resident.set(imageIndex, buffer);
            this.stats.residentImageBytes += buffer.size;
            this.stats.peakResidentImageBytes = Math.max(this.stats.peakResidentImageBytes, this.stats.residentImageBytes);
          }
          this.rt.flush(); // submits the uploads so their staging memory is freed early
        }
        yield this.buildBatch(plan, at, end, resident, lastUse);
      }
    } finally {
      for (const image of [...resident.keys()]) this.releaseImage(image, resident);
    }
  }

  /** Cuts plan positions [from, to) into one batch; releases images whose last patch this was. */
  private buildBatch(plan: PatchPlan, from: number, to: number, resident: Map<number, GPUBuffer>, lastUse: Int32Array): PatchBatch {
    const { rt, config } = this;
    const n = to - from;
    const p = config.patch.size;
    const patchBytes = 12 * p * p;
    const img = { width: config.imageSize, height: config.imageSize };
    const variantAt = (t: number) => plan.variant?.[t] ?? 0;
    const grid = { ...img, ...this.patch, perRow: patchGrid(img, this.patch).perRow };
    const shiftAt = (t: number) => (plan.jitter ? jitterShift(plan.patch[t] as number, plan.jitter[2 * t] as number, plan.jitter[2 * t + 1] as number, grid) : undefined);
    let x: GPUBuffer | null = null;
    for (let i = 0; i < n; ) {
      // A run of consecutive patches of one image with one variant (and no jitter) is cut by one dispatch.
      const t = from + i;
      const image = plan.image[t] as number;
      const first = plan.patch[t] as number;
      const variant = variantAt(t);
      let run = 1;
      while (!plan.jitter && i + run < n && plan.image[t + run] === image && plan.patch[t + run] === first + run && variantAt(t + run) === variant) run++;
      const shift = shiftAt(t);
      const cut = cropPatches(rt, resident.get(image) as GPUBuffer, img, this.patch, { variant, first, count: run, ...(shift ? { shift } : {}) });
      if (run === n) x = cut;
      else {
        x ??= rt.alloc(n * patchBytes, `patch batch [${n}, 3, ${p}, ${p}]`);
        rt.copy(cut, x, run * patchBytes, 0, i * patchBytes);
        rt.release(cut);
      }
      for (let j = 0; j < run; j++) if (lastUse[plan.image[t + j] as number] === t + j) this.releaseImage(plan.image[t + j] as number, resident);
      i += run;
    }
    const imageIndex = plan.image.slice(from, to);
    const batch: PatchBatch = {
      x: null as unknown as Tensor,
      labels: null as unknown as GPUBuffer,
      labelsCpu: Uint32Array.from(imageIndex, (i) => (this.images[i] as DatasetImage).label),
      imageIndex,
      patchIndex: plan.patch.slice(from, to),
    };
    let pixels = x as GPUBuffer;
    if (this.options.augment) {
      batch.variant = (plan.variant as Uint8Array).slice(from, to);
      batch.factors = (plan.factors as Float32Array).slice(3 * from, 3 * to);
      if (plan.jitter) batch.jitter = plan.jitter.slice(2 * from, 2 * to);
      // Stain first (a property of the slide), then the original's colour factors.
      if (plan.hed) {
        batch.hed = plan.hed.slice(6 * from, 6 * to);
        const stained = augmentHed(rt, pixels, n, p, batch.hed);
        rt.release(pixels);
        pixels = stained;
      }
      if (this.options.colourAugment ?? true) {
        const coloured = augmentColour(rt, pixels, n, p, batch.factors);
        rt.release(pixels);
        pixels = coloured;
      }
    }
    batch.x = new Tensor(rt, pixels, [n, 3, p, p], 'patch batch');
    batch.labels = rt.upload(batch.labelsCpu, 'patch labels');
    return batch;
  }

  private releaseImage(image: number, resident: Map<number, GPUBuffer>): void {
    const buffer = resident.get(image);
    if (!buffer) return;
    resident.delete(image);
    this.stats.residentImageBytes -= buffer.size;
    this.rt.release(buffer);
  }
}

export interface ImagePatchesOptions extends DecodeSettings {
  /** Step between patch origins of `patches` (default config.level2.patchStride). */
  stride?: number;
  /** Also cut `level1Patches` at config.patch.stride from the same upload. */
  level1?: boolean;
  /** Dihedral variant of the whole image (test-time augmentation), 0..7 as in cropPatches. */
  variant?: number;
  /** Images decoded ahead (default 2). */
  prefetch?: number;
}

export interface ImagePatches {
  image: DatasetImage;
  /** Index into `images`. */
  index: number;
  /** [K, 3, p, p]; the consumer releases it. */
  patches: Tensor;
  /** [K1, 3, p, p] at config.patch.stride when `level1`; the consumer releases it. */
  level1Patches?: Tensor;
}

/**
 * For grid side n, the source patch of each patch of the image turned by `variant`: patch k of
 * the turned image (raster order) is patch `order[k]` of the original turned by the same variant.
 * Holds when the grid covers the image symmetrically ((size − patch) divisible by stride).
 */
export function variantPatchOrder(n: number, variant: number): Int32Array {
  const order = new Int32Array(n * n);
  for (let gy = 0; gy < n; gy++) {
    for (let gxOut = 0; gxOut < n; gxOut++) {
      const gx = variant & 4 ? n - 1 - gxOut : gxOut;
      const [r, c] = [
        [gy, gx],
        [gx, n - 1 - gy],
        [n - 1 - gy, n - 1 - gx],
        [n - 1 - gx, gy],
      ][variant & 3] as [number, number];
      order[gy * n + gxOut] = r * n + c;
    }
  }
  return order;
}

/** All patches (raster order) of a square image on the GPU, of the image turned by `variant`. */
function imageVariantPatches(rt: Runtime, image: GPUBuffer, side: number, spec: PatchSpec, variant: number): Tensor {
  const grid = patchGrid({ width: side, height: side }, spec);
  const shape = [grid.count, 3, spec.size, spec.size];
  const all = cropPatches(rt, image, { width: side, height: side }, spec, { variant });
  if (variant === 0) return new Tensor(rt, all, shape, 'image patches');
  if ((side - spec.size) % spec.stride !== 0) {
    throw new RangeError(`imagePatches: test-time variants need (image ${side} − patch ${spec.size}) divisible by the stride ${spec.stride}, so the turned image has the same patch grid`);
  }
  const patchBytes = 12 * spec.size * spec.size;
  const out = rt.alloc(grid.count * patchBytes, `image patches variant ${variant}`);
  variantPatchOrder(grid.perRow, variant).forEach((source, k) => rt.copy(all, out, patchBytes, source * patchBytes, k * patchBytes));
  rt.release(all);
  return new Tensor(rt, out, shape, 'image patches');
}

/**
 * Each image's patches, in order, decoding up to `prefetch` images ahead. The image buffer is
 * released before yielding; the consumer releases the tensors.
 */
export async function* imagePatches(rt: Runtime, images: readonly DatasetImage[], config: ModelConfig, options: ImagePatchesOptions = {}): AsyncGenerator<ImagePatches> {
  const { variant = 0, prefetch = 2, stride = config.level2.patchStride } = options;
  if (!Number.isInteger(variant) || variant < 0 || variant > 7) throw new RangeError(`imagePatches: variant must be 0..7, got ${variant}`);
  positiveInteger('stride', stride);
  const decoder = new DecodeAhead(images.map((i) => i.path), decoderFor(config, options), prefetch, newStats());
  const side = config.imageSize;
  for (let index = 0; index < images.length; index++) {
    const decoded = await decoder.next();
    const buffer = rt.upload(decoded.rgb, `image ${(images[index] as DatasetImage).path}`);
    let patches: Tensor | undefined;
    let level1Patches: Tensor | undefined;
    try {
      patches = imageVariantPatches(rt, buffer, side, { size: config.patch.size, stride }, variant);
      if (options.level1) level1Patches = imageVariantPatches(rt, buffer, side, config.patch, variant);
    } catch (e) {
      patches?.release();
      throw e;
    } finally {
      rt.release(buffer);
    }
    yield { image: images[index] as DatasetImage, index, patches, ...(level1Patches ? { level1Patches } : {}) };
  }
}
