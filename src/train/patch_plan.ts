/**
 * The order in which an epoch's Level-1 patches are trained, computed up front on the CPU from
 * (seed, epoch, image count, patches per image) alone — no pixel is read — so a resumed run sees
 * the same batches and tools can measure how close the batches are to iid without a GPU.
 *
 * Two orders:
 * - `windowPlan` (the original's): images in a shuffled order, taken `groupImages` at a time;
 *   the patches of a window are shuffled together. About groupImages·patchesPerImage/batchSize
 *   consecutive batches come from the same few images, so BatchNorm's running statistics (momentum
 *   0.1) describe the last window, not the training set.
 * - `poolPlan` (near-iid): a resident pool of `poolImages` images; each draw takes an undrawn
 *   patch of a uniformly chosen pool image; an image leaves the pool when its last patch is drawn
 *   and the next image of the shuffled order enters, so memory stays at `poolImages` images.
 *
 * Each patch position also carries its augmentation (dihedral variant and colour factors) when
 * augmenting, drawn in plan order from its own stream; HED stain parameters and the random-crop
 * jitter each come from a stream of their own, so turning one on leaves the other draws unchanged.
 */
import { patchOrigin } from '../kernels/crop_patches.ts';
import { mixSeed, Rng, SEED_STREAM } from '../nn/random.ts';
import { drawAugmentation, drawHed } from './augment.ts';

/** One epoch's patches in training order. */
export interface PatchPlan {
  /** Index into the loader's images of each position's patch. */
  image: Int32Array;
  /** Index of the patch in its image's patch grid. */
  patch: Int32Array;
  /** When augmenting: each position's dihedral variant 0..7. */
  variant?: Uint8Array;
  /** When augmenting: each position's [colour, contrast, brightness] factors (3 per position). */
  factors?: Float32Array;
  /** When augmenting with HED strength > 0: each position's [αH, αE, αD, βH, βE, βD] (6 per position). */
  hed?: Float32Array;
  /**
   * When augmenting with jitter > 0: each position's [dx, dy] (2 per position), drawn uniformly
   * from [−jitter, jitter]; the loader moves the patch by that much, kept inside the image (jitterShift).
   */
  jitter?: Int16Array;
}

export interface PlanOptions {
  seed: number;
  epoch: number;
  augment: boolean;
  /** Shuffle the image order (and, for windows, the patches of each window); default true. */
  shuffle?: boolean;
  /** HED stain augmentation strength σ (kernels/augment_hed.ts); 0 or absent: none. */
  hedStrength?: number;
  /** Random-crop jitter: the most pixels a patch moves off its grid origin along x and along y; 0 or absent: none. */
  jitter?: number;
}

/** Adds each position's random-crop jitter, from its own stream (the other draws are unchanged). */
function withJitter(plan: PatchPlan, o: PlanOptions): PatchPlan {
  const most = o.jitter ?? 0;
  if (!o.augment || most <= 0) return plan;
  if (!Number.isInteger(most) || most > 0x7fff) throw new RangeError(`patch plan: jitter must be a whole number of pixels up to 32767, got ${most}`);
  const rng = new Rng(mixSeed(o.seed, SEED_STREAM.patchJitter, o.epoch));
  const jitter = new Int16Array(2 * plan.image.length);
  for (let i = 0; i < jitter.length; i++) jitter[i] = rng.below(2 * most + 1) - most;
  return { ...plan, jitter };
}

/**
 * The shift that moves patch `patch` of a grid by the drawn (dx, dy), clamped so the patch stays
 * inside the image (a patch at the border moves inwards only).
 */
export function jitterShift(patch: number, dx: number, dy: number, grid: { perRow: number; stride: number; size: number; width: number; height: number }): { x: number; y: number } {
  const g = patchOrigin(patch, grid.perRow, grid.stride);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  return { x: clamp(g.x + dx, grid.width - grid.size) - g.x, y: clamp(g.y + dy, grid.height - grid.size) - g.y };
}

/** Adds each position's HED parameters, from their own stream (the other draws are unchanged). */
function withHed(plan: PatchPlan, o: PlanOptions): PatchPlan {
  const strength = o.hedStrength ?? 0;
  if (!o.augment || strength <= 0) return plan;
  const rng = new Rng(mixSeed(o.seed, SEED_STREAM.patchHed, o.epoch));
  const total = plan.image.length;
  const hed = new Float32Array(6 * total);
  for (let t = 0; t < total; t++) hed.set(drawHed(() => rng.next(), strength), 6 * t);
  return { ...plan, hed };
}

function imageOrder(count: number, o: PlanOptions): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  if (o.shuffle ?? true) new Rng(mixSeed(o.seed, SEED_STREAM.patchImageOrder, o.epoch)).shuffle(order);
  return order;
}

function emptyPlan(total: number, augment: boolean): PatchPlan {
  return { image: new Int32Array(total), patch: new Int32Array(total), ...(augment ? { variant: new Uint8Array(total), factors: new Float32Array(3 * total) } : {}) };
}

function setAugmentation(plan: PatchPlan, t: number, rng: Rng): void {
  const a = drawAugmentation(rng);
  (plan.variant as Uint8Array)[t] = a.variant;
  (plan.factors as Float32Array).set([a.colour, a.contrast, a.brightness], 3 * t);
}

/** The original's order: windows of `groupImages` images whose patches are shuffled together. */
export function windowPlan(imageCount: number, patchesPerImage: number, groupImages: number, o: PlanOptions): PatchPlan {
  const order = imageOrder(imageCount, o);
  const plan = emptyPlan(imageCount * patchesPerImage, o.augment);
  let t = 0;
  for (let window = 0, at = 0; at < imageCount; window++, at += groupImages) {
    const refs: [number, number][] = [];
    for (const image of order.slice(at, at + groupImages)) for (let k = 0; k < patchesPerImage; k++) refs.push([image, k]);
    const rng = new Rng(mixSeed(o.seed, SEED_STREAM.patchWindow, o.epoch, window));
    if (o.shuffle ?? true) rng.shuffle(refs);
    for (const [image, patch] of refs) {
      plan.image[t] = image;
      plan.patch[t] = patch;
      if (o.augment) setAugmentation(plan, t, rng);
      t++;
    }
  }
  return withJitter(withHed(plan, o), o);
}

/**
 * Near-iid order: while images remain to enter, each draw picks one of the pool's images
 * uniformly, then one of its undrawn patches (every resident image is equally likely, so a newly
 * entered image is not favoured and no image takes much more than 1/poolImages of a run of
 * batches); once none remains, draws are uniform over the pool's undrawn patches. With a pool as
 * large as the training set that is uniform sampling without replacement over all patches.
 */
export function poolPlan(imageCount: number, patchesPerImage: number, poolImages: number, o: PlanOptions): PatchPlan {
  if (!Number.isInteger(poolImages) || poolImages < 1) throw new RangeError(`patch plan: poolImages must be a positive integer, got ${poolImages}`);
  const order = imageOrder(imageCount, o);
  const total = imageCount * patchesPerImage;
  const plan = emptyPlan(total, o.augment);
  const draw = new Rng(mixSeed(o.seed, SEED_STREAM.patchPoolDraw, o.epoch));
  const augmentRng = new Rng(mixSeed(o.seed, SEED_STREAM.patchAugment, o.epoch));
  // Slot s holds image slotImage[s] whose undrawn patches are undrawn[s·ppi, s·ppi + left[s]).
  const slots = Math.min(poolImages, imageCount);
  const slotImage = new Int32Array(slots);
  const left = new Int32Array(slots);
  const undrawn = new Int32Array(slots * patchesPerImage);
  let next = 0;
  const fill = (s: number) => {
    slotImage[s] = order[next++] as number;
    left[s] = patchesPerImage;
    for (let k = 0; k < patchesPerImage; k++) undrawn[s * patchesPerImage + k] = k;
  };
  for (let s = 0; s < slots; s++) fill(s);
  let active = slots;
  let undrawnTotal = slots * patchesPerImage;
  for (let t = 0; t < total; t++) {
    let s: number;
    if (next < imageCount) s = draw.below(active);
    else {
      // Draining (no image left to enter): uniform over the undrawn patches, so the last images
      // finish together instead of leaving a tail of batches from the largest remainders.
      let u = draw.below(undrawnTotal);
      s = 0;
      while (u >= (left[s] as number)) u -= left[s++] as number;
    }
    undrawnTotal--;
    const base = s * patchesPerImage;
    const j = draw.below(left[s] as number);
    const n = --(left[s] as number);
    plan.image[t] = slotImage[s] as number;
    plan.patch[t] = undrawn[base + j] as number;
    undrawn[base + j] = undrawn[base + n] as number;
    if (o.augment) setAugmentation(plan, t, augmentRng);
    if (n === 0) {
      if (next < imageCount) {
        fill(s);
        undrawnTotal += patchesPerImage;
      }
      else {
        // No image left to enter: the last active slot moves into this one.
        active--;
        const last = active * patchesPerImage;
        slotImage[s] = slotImage[active] as number;
        left[s] = left[active] as number;
        undrawn.copyWithin(base, last, last + (left[s] as number));
      }
    }
  }
  return withJitter(withHed(plan, o), o);
}

/** How close a plan's batches are to iid. */
export interface PlanMetrics {
  batches: number;
  /** Distinct images per batch: mean and minimum (over full batches). */
  meanDistinctImages: number;
  minDistinctImages: number;
  /** Largest share of the patches of `span` consecutive batches that come from one image. */
  maxImageShare: number;
  span: number;
}

/** Distinct images per batch and the largest single-image share over any `span` consecutive batches. */
export function planMetrics(plan: PatchPlan, batchSize: number, span = 50): PlanMetrics {
  const total = plan.image.length;
  const batches = Math.ceil(total / batchSize);
  const full = Math.floor(total / batchSize);
  let distinctSum = 0;
  let distinctMin = Infinity;
  for (let b = 0; b < full; b++) {
    const d = new Set(plan.image.subarray(b * batchSize, (b + 1) * batchSize)).size;
    distinctSum += d;
    distinctMin = Math.min(distinctMin, d);
  }
  // Sliding window of span·batchSize positions with per-image counts.
  const width = Math.min(total, span * batchSize);
  const counts = new Map<number, number>();
  let best = 0;
  const bump = (image: number, by: number) => counts.set(image, (counts.get(image) ?? 0) + by);
  for (let t = 0; t < total; t++) {
    bump(plan.image[t] as number, 1);
    if (t >= width) bump(plan.image[t - width] as number, -1);
    if (t >= width - 1 && ((t + 1) % batchSize === 0 || t === width - 1)) best = Math.max(best, ...counts.values());
  }
  return { batches, meanDistinctImages: full ? distinctSum / full : 0, minDistinctImages: full ? distinctMin : 0, maxImageShare: width ? best / width : 0, span };
}

/** Default memory for the resident image pool of Level-1 training (RGB8 on the GPU). */
export const DEFAULT_POOL_BYTES = 1024 * 1024 * 1024;

/**
 * Images the pool holds within `budgetBytes` (RGB8, side² · 3 bytes each), at least 1: with the
 * 1 GiB default, 5461 images of 256² (in practice the whole training set) and 54 of 2560².
 */
export function poolImagesFor(budgetBytes: number, imageSize: number): number {
  return Math.max(1, Math.floor(budgetBytes / (imageSize * imageSize * 3)));
}
