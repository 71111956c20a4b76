/**
 * Tissue detection on a low-resolution level, as TIAToolbox's and CLAM's: HSV saturation per pixel,
 * a threshold by Otsu's method (never below MIN_SATURATION, so a slide with no tissue does not
 * split its background noise into "tissue"), then morphological closing and opening (square
 * structuring elements) and removal of small objects and small holes (8-connected components).
 * Grey and black marks (dust, shadows, the slide edge) are unsaturated and so not tissue; pen ink
 * is saturated and is. Pure JavaScript over RGB8: runs in browsers too.
 */
import type { RgbImage, Slide } from './slide.ts';

/** Otsu's threshold never goes below this saturation (0–255): H&E tissue sits well above it. */
export const MIN_SATURATION = 20;

export interface TissueOptions {
  /** Closing radius in mask pixels (fills gaps between nuclei and small lumens). Default 2. */
  closeRadius?: number;
  /** Opening radius in mask pixels (removes thin strands and specks). Default 1. */
  openRadius?: number;
  /** Objects smaller than this many mask pixels are removed. Default 32. */
  minObjectPixels?: number;
  /** Holes smaller than this many mask pixels are filled. Default 256. */
  maxHolePixels?: number;
}

export interface TissueMask {
  width: number;
  height: number;
  /** 1 tissue, 0 not; row-major. */
  data: Uint8Array;
  /** Level-0 pixels per mask pixel, [x, y]. */
  scale: [number, number];
  /** The saturation threshold used (0–255). */
  threshold: number;
  /** The pyramid level the mask was computed on. */
  level: number;
}

/** HSV saturation (0–255) of each pixel: (max − min) / max. */
export function saturation(image: RgbImage): Uint8Array {
  const { data } = image;
  const out = new Uint8Array(image.width * image.height);
  for (let i = 0, p = 0; i < out.length; i++, p += 3) {
    const r = data[p]!, g = data[p + 1]!, b = data[p + 2]!;
    const max = r > g ? (r > b ? r : b) : g > b ? g : b;
    const min = r < g ? (r < b ? r : b) : g < b ? g : b;
    out[i] = max === 0 ? 0 : Math.round((255 * (max - min)) / max);
  }
  return out;
}

/** Otsu's threshold of 8-bit values: the t maximising between-class variance of (< t, ≥ t). */
export function otsuThreshold(values: Uint8Array): number {
  const hist = new Float64Array(256);
  for (let i = 0; i < values.length; i++) hist[values[i]!]++;
  const total = values.length;
  let sumAll = 0;
  for (let t = 0; t < 256; t++) sumAll += t * hist[t]!;
  let below = 0, sumBelow = 0, best = 0, bestT = 0;
  for (let t = 1; t < 256; t++) {
    below += hist[t - 1]!;
    sumBelow += (t - 1) * hist[t - 1]!;
    const above = total - below;
    if (below === 0 || above === 0) continue;
    const diff = sumBelow / below - (sumAll - sumBelow) / above;
    const between = below * above * diff * diff;
    if (between > best) {
      best = between;
      bestT = t;
    }
  }
  return bestT;
}

/** Binary dilation (grow = true) or erosion by a (2r+1)² square; outside the image counts as 0 for dilation, 1 for erosion. */
function morph(mask: Uint8Array, w: number, h: number, r: number, grow: boolean): Uint8Array {
  if (r <= 0) return mask.slice();
  const tmp = new Uint8Array(w * h);
  const out = new Uint8Array(w * h);
  const outside = grow ? 0 : 1;
  const pass = (src: Uint8Array, dst: Uint8Array, n: number, lines: number, stride: number, step: number) => {
    for (let line = 0; line < lines; line++) {
      const base = line * stride;
      let count = outside * r; // ones in the window [i - r, i + r]
      for (let k = 0; k <= r; k++) count += k < n ? src[base + k * step]! : outside;
      for (let i = 0; i < n; i++) {
        dst[base + i * step] = grow ? (count > 0 ? 1 : 0) : count === 2 * r + 1 ? 1 : 0;
        const leave = i - r;
        const enter = i + r + 1;
        count -= leave >= 0 ? src[base + leave * step]! : outside;
        count += enter < n ? src[base + enter * step]! : outside;
      }
    }
  };
  pass(mask, tmp, w, h, w, 1);
  pass(tmp, out, h, w, 1, w);
  return out;
}

/**
 * Labels 8-connected components of pixels equal to `value`; calls `visit` with each component's
 * pixel indices, and whether it touches the image border.
 */
function components(mask: Uint8Array, w: number, h: number, value: number, visit: (pixels: Int32Array, n: number, border: boolean) => void): void {
  const seen = new Uint8Array(w * h);
  const queue = new Int32Array(w * h); // breadth-first; afterwards queue[0, n) is the component
  for (let start = 0; start < w * h; start++) {
    if (seen[start] || mask[start] !== value) continue;
    let head = 0, n = 0, border = false;
    queue[n++] = start;
    seen[start] = 1;
    while (head < n) {
      const p = queue[head++]!;
      const x = p % w, y = (p - x) / w;
      if (x === 0 || y === 0 || x === w - 1 || y === h - 1) border = true;
      const xa = x > 0 ? -1 : 0, xb = x < w - 1 ? 1 : 0, ya = y > 0 ? -1 : 0, yb = y < h - 1 ? 1 : 0;
      for (let dy = ya; dy <= yb; dy++) {
        for (let dx = xa; dx <= xb; dx++) {
          const q = p + dy * w + dx;
          if (seen[q] === 0 && mask[q] === value) {
            seen[q] = 1;
            queue[n++] = q;
          }
        }
      }
    }
    visit(queue, n, border);
  }
}

/** The tissue mask of an RGB image (see the file header); returns the mask and the threshold used. */
export function detectTissue(image: RgbImage, options: TissueOptions = {}): { data: Uint8Array; threshold: number } {
  const { closeRadius = 2, openRadius = 1, minObjectPixels = 32, maxHolePixels = 256 } = options;
  const { width: w, height: h } = image;
  const sat = saturation(image);
  const threshold = Math.max(MIN_SATURATION, otsuThreshold(sat));
  let mask: Uint8Array = new Uint8Array(w * h);
  for (let i = 0; i < mask.length; i++) mask[i] = sat[i]! >= threshold ? 1 : 0;
  mask = morph(morph(mask, w, h, closeRadius, true), w, h, closeRadius, false);
  mask = morph(morph(mask, w, h, openRadius, false), w, h, openRadius, true);
  components(mask, w, h, 1, (pixels, n) => {
    if (n < minObjectPixels) for (let k = 0; k < n; k++) mask[pixels[k]!] = 0;
  });
  components(mask, w, h, 0, (pixels, n, border) => {
    if (!border && n <= maxHolePixels) for (let k = 0; k < n; k++) mask[pixels[k]!] = 1;
  });
  return { data: mask, threshold };
}

/** The coarsest level whose longer side is at least `minSide` pixels (level 0 when none is). */
export function maskLevel(slide: Slide, minSide = 1024): number {
  const levels = slide.info.levels;
  for (let level = levels.length - 1; level >= 0; level--) {
    if (Math.max(levels[level]!.width, levels[level]!.height) >= minSide) return level;
  }
  return 0;
}

/** Reads a low-resolution level (maskLevel) whole and detects tissue on it. */
export async function slideTissueMask(slide: Slide, options: TissueOptions & { minSide?: number } = {}): Promise<{ mask: TissueMask; thumbnail: RgbImage }> {
  const level = maskLevel(slide, options.minSide);
  const { width, height } = slide.info.levels[level]!;
  const thumbnail = await slide.readRegion(level, 0, 0, width, height);
  const { data, threshold } = detectTissue(thumbnail, options);
  return { mask: { width, height, data, scale: [slide.info.width / width, slide.info.height / height], threshold, level }, thumbnail };
}

/** Summed-area table of a mask, (w+1)·(h+1), for tissue fractions of any rectangle in O(1). */
export function integralMask(mask: TissueMask): Float64Array {
  const { width: w, height: h, data } = mask;
  const s = new Float64Array((w + 1) * (h + 1));
  for (let y = 0; y < h; y++) {
    let row = 0;
    for (let x = 0; x < w; x++) {
      row += data[y * w + x]!;
      s[(y + 1) * (w + 1) + x + 1] = s[y * (w + 1) + x + 1]! + row;
    }
  }
  return s;
}

/**
 * The share of tissue in a rectangle of level-0 pixels [x0, x1) × [y0, y1): mask pixels weighted by
 * how much of each the rectangle covers (exact area weighting; outside the slide counts as no tissue).
 */
export function tissueFraction(mask: TissueMask, integral: Float64Array, x0: number, y0: number, x1: number, y1: number): number {
  const w = mask.width, h = mask.height, W = w + 1;
  const ax0 = x0 / mask.scale[0], ax1 = x1 / mask.scale[0], ay0 = y0 / mask.scale[1], ay1 = y1 / mask.scale[1];
  const area = (ax1 - ax0) * (ay1 - ay0);
  if (!(area > 0)) return 0;
  // Sum over mask pixels of overlap area: split into whole pixels (integral) and fractional edges.
  const at = (x: number, y: number) => integral[y * W + x]!;
  const sumRect = (px0: number, py0: number, px1: number, py1: number) => (px1 <= px0 || py1 <= py0 ? 0 : at(px1, py1) - at(px0, py1) - at(px1, py0) + at(px0, py0));
  const cx0 = Math.max(0, Math.floor(ax0)), cx1 = Math.min(w, Math.ceil(ax1));
  const cy0 = Math.max(0, Math.floor(ay0)), cy1 = Math.min(h, Math.ceil(ay1));
  let total = 0;
  // Weight of column px and row py: overlap of [px, px+1) with [ax0, ax1).
  const wx = (px: number) => Math.max(0, Math.min(px + 1, ax1) - Math.max(px, ax0));
  const wy = (py: number) => Math.max(0, Math.min(py + 1, ay1) - Math.max(py, ay0));
  const fx0 = cx0, fx1 = cx1 - 1, fy0 = cy0, fy1 = cy1 - 1;
  if (cx1 <= cx0 || cy1 <= cy0) return 0;
  // Interior (full-weight) block, then the border rows and columns pixel by pixel.
  total += sumRect(fx0 + 1, fy0 + 1, fx1, fy1);
  for (let px = fx0; px <= fx1; px++) {
    for (const py of fy0 === fy1 ? [fy0] : [fy0, fy1]) total += wx(px) * wy(py) * mask.data[py * w + px]!;
  }
  for (let py = fy0 + 1; py < fy1; py++) {
    for (const px of fx0 === fx1 ? [fx0] : [fx0, fx1]) total += wx(px) * wy(py) * mask.data[py * w + px]!;
  }
  return Math.min(1, total / area);
}

/** The thumbnail with tissue tinted green and its outline drawn, for a person to check the mask. */
export function maskOverlay(thumbnail: RgbImage, mask: TissueMask): RgbImage {
  const { width: w, height: h } = thumbnail;
  const out = thumbnail.data.slice();
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = y * w + x;
    if (!mask.data[i]) continue;
    const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || !mask.data[i - 1] || !mask.data[i + 1] || !mask.data[i - w] || !mask.data[i + w];
    const p = i * 3;
    if (edge) out.set([0, 200, 0], p);
    else out[p + 1] = Math.round(out[p + 1]! * 0.6 + 255 * 0.4);
  }
  return { width: w, height: h, data: out };
}
