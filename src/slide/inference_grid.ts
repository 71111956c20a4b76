/**
 * Where a trained model looks on a slide: the model's resolution against the slide's (a warning
 * or an error when they differ), the grid of model-sized tiles over tissue in level-0 pixels, and
 * reading one tile as the model's imageSize² RGB8 from the best pyramid level, resampled by exact
 * area averaging in plain JavaScript — the same bytes in Node and in a browser, whichever reader.
 */
import { SlideError, type RgbImage, type Slide, type SlideInfo } from './slide.ts';
import { integralMask, tissueFraction, type TissueMask } from './tissue.ts';

/** Resolutions within this relative difference count as equal (0.2520 written as 0.252). */
export const MPP_TOLERANCE = 0.05;
/** A run finer than the slide by more than this factor is refused: tiles would be upsampled. */
export const MAX_UPSAMPLE = 1.5;
/** A run coarser than the slide by more than this factor is refused: almost surely the wrong run or slide. */
export const MAX_DOWNSAMPLE = 16;

export interface TilePlan {
  /** Model pixels a side (the run's imageSize). */
  size: number;
  /** Level-0 pixels per model pixel. */
  scale: number;
  /** Microns per model pixel (null when neither run nor slide says). */
  mpp: number | null;
  /** Level-0 pixels between tile origins. */
  step: number;
  /** The pyramid level tiles are read from, and its downsample. */
  level: number;
  downsample: number;
}

export interface SlideTile {
  /** Index in the grid (row-major over the whole slide, tissue or not). */
  index: number;
  /** Top-left corner and size in level-0 pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Share of the tile that is tissue (0–1). */
  tissue: number;
}

/**
 * The scale from level-0 pixels to model pixels for a run trained at `runMpp` µm/px (null: the
 * run does not say). Warns (naming both) when the resolutions differ by more than MPP_TOLERANCE;
 * throws a SlideError past MAX_UPSAMPLE / MAX_DOWNSAMPLE.
 */
export function resolveScale(info: SlideInfo, runMpp: number | null, warn: (m: string) => void): { scale: number; mpp: number | null } {
  const slideMpp = info.mpp ? (info.mpp[0] + info.mpp[1]) / 2 : null;
  if (runMpp === null) {
    if (slideMpp !== null) warn(`${info.path}: the run does not record its resolution; tiling at the slide's level 0 (${fmt(slideMpp)} µm/px) — give --mpp to choose`);
    return { scale: 1, mpp: slideMpp };
  }
  if (slideMpp === null) {
    warn(`${info.path}: the slide does not say its microns per pixel; assuming level 0 is the run's ${fmt(runMpp)} µm/px`);
    return { scale: 1, mpp: runMpp };
  }
  const scale = runMpp / slideMpp;
  if (scale < 1 / MAX_UPSAMPLE) {
    throw new SlideError(info.path, `the run's resolution (${fmt(runMpp)} µm/px) is finer than the slide's level 0 (${fmt(slideMpp)} µm/px) by ${fmt(1 / scale)}×, more than the ${MAX_UPSAMPLE}× upsampling allowed`);
  }
  if (scale > MAX_DOWNSAMPLE) {
    throw new SlideError(info.path, `the run's resolution (${fmt(runMpp)} µm/px) is ${fmt(scale)}× coarser than the slide's level 0 (${fmt(slideMpp)} µm/px), more than the ${MAX_DOWNSAMPLE}× allowed (wrong run or wrong slide?)`);
  }
  if (Math.abs(scale - 1) > MPP_TOLERANCE) {
    warn(`${info.path}: the run's resolution is ${fmt(runMpp)} µm/px, the slide's level 0 ${fmt(slideMpp)} µm/px; tiles are resampled by ${fmt(scale)}×`);
  }
  return { scale: Math.abs(scale - 1) <= MPP_TOLERANCE ? 1 : scale, mpp: runMpp };
}

function fmt(v: number): string {
  return String(Number(v.toPrecision(4)));
}

/** The coarsest level that still has at least the model's resolution (downsample ≤ scale). */
export function readLevel(info: SlideInfo, scale: number): number {
  let best = 0;
  info.levels.forEach((l, i) => {
    if (l.downsample <= scale * (1 + 1e-6) && l.downsample > info.levels[best]!.downsample) best = i;
  });
  return best;
}

/** The tile plan for a model of `size` pixels at `scale`, `stride` model pixels apart. */
export function tilePlan(info: SlideInfo, size: number, scale: number, mpp: number | null, stride = size): TilePlan {
  if (!Number.isInteger(stride) || stride < 1) throw new RangeError(`stride must be a positive integer, got ${stride}`);
  const level = readLevel(info, scale);
  return { size, scale, mpp, step: stride * scale, level, downsample: info.levels[level]!.downsample };
}

/**
 * Every tile of the grid (origin at the slide's top left, `plan.step` apart, edge tiles may reach
 * past the slide and read white there) whose tissue share is at least `minTissue`, in grid order.
 */
export function tissueTiles(info: SlideInfo, mask: TissueMask, plan: TilePlan, minTissue: number): SlideTile[] {
  const integral = integralMask(mask);
  const span = plan.size * plan.scale;
  const across = Math.max(1, Math.ceil(info.width / plan.step));
  const down = Math.max(1, Math.ceil(info.height / plan.step));
  const tiles: SlideTile[] = [];
  for (let row = 0; row < down; row++) {
    for (let col = 0; col < across; col++) {
      const x = Math.round(col * plan.step), y = Math.round(row * plan.step);
      const tissue = tissueFraction(mask, integral, x, y, x + span, y + span);
      if (tissue >= minTissue && tissue > 0) tiles.push({ index: row * across + col, x, y, width: Math.round(span), height: Math.round(span), tissue });
    }
  }
  return tiles;
}

/** Reads one tile as plan.size² RGB8 (area-averaged from plan.level). */
export async function readTile(slide: Slide, plan: TilePlan, tile: SlideTile): Promise<Uint8Array> {
  const ds = plan.downsample;
  const x0 = tile.x / ds, y0 = tile.y / ds;
  const span = (plan.size * plan.scale) / ds; // level pixels the tile covers
  if (Math.abs(span - plan.size) < 1e-9 && Number.isInteger(x0) && Number.isInteger(y0)) {
    return (await slide.readRegion(plan.level, x0, y0, plan.size, plan.size)).data;
  }
  const rx = Math.floor(x0), ry = Math.floor(y0);
  const rw = Math.ceil(x0 + span) - rx, rh = Math.ceil(y0 + span) - ry;
  const region = await slide.readRegion(plan.level, rx, ry, rw, rh);
  return resampleArea(region, x0 - rx, y0 - ry, span, plan.size);
}

/**
 * The square [ox, ox+span) × [oy, oy+span) of `image` (fractional pixels) resampled to size×size by
 * exact area averaging (each output pixel the area-weighted mean of the input pixels it covers).
 */
export function resampleArea(image: RgbImage, ox: number, oy: number, span: number, size: number): Uint8Array {
  const f = span / size;
  const weightsX = axisWeights(ox, f, size, image.width);
  const weightsY = axisWeights(oy, f, size, image.height);
  const out = new Uint8Array(size * size * 3);
  const row = new Float64Array(size * 3);
  for (let oyI = 0; oyI < size; oyI++) {
    row.fill(0);
    const wy = weightsY[oyI]!;
    for (let k = 0; k < wy.index.length; k++) {
      const sy = wy.index[k]!, ay = wy.weight[k]!;
      const base = sy * image.width * 3;
      for (let oxI = 0; oxI < size; oxI++) {
        const wx = weightsX[oxI]!;
        let r = 0, g = 0, b = 0;
        for (let j = 0; j < wx.index.length; j++) {
          const p = base + wx.index[j]! * 3, a = wx.weight[j]!;
          r += a * image.data[p]!;
          g += a * image.data[p + 1]!;
          b += a * image.data[p + 2]!;
        }
        row[oxI * 3] += ay * r;
        row[oxI * 3 + 1] += ay * g;
        row[oxI * 3 + 2] += ay * b;
      }
    }
    for (let i = 0; i < size * 3; i++) out[oyI * size * 3 + i] = Math.min(255, Math.round(row[i]!));
  }
  return out;
}

/** For each output pixel along an axis: the input pixels it covers and their normalised weights. */
function axisWeights(origin: number, f: number, size: number, limit: number): { index: number[]; weight: number[] }[] {
  return Array.from({ length: size }, (_, o) => {
    const a = origin + o * f, b = origin + (o + 1) * f;
    const index: number[] = [], weight: number[] = [];
    for (let s = Math.floor(a); s < b; s++) {
      const w = Math.min(b, s + 1) - Math.max(a, s);
      if (w <= 0) continue;
      index.push(Math.min(limit - 1, Math.max(0, s)));
      weight.push(w / f);
    }
    return { index, weight };
  });
}
