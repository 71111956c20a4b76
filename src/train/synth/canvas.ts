/**
 * Drawing helpers of the synthetic histology generator: a canvas of two stain densities
 * (haematoxylin `h`, eosin `e`, as optical densities before the per-image stain vectors are applied),
 * seeded value noise, a Voronoi (Worley) cell map over a jittered grid, soft ellipse stamps and a
 * separable Gaussian blur. Everything is plain loops over typed arrays and depends only on its
 * arguments, so a seed gives the same pixels on every run and machine.
 */
import type { Rng } from '../../nn/random.ts';

/** Stain densities of a square image, row-major, `size·size` each. */
export class Canvas {
  readonly h: Float32Array;
  readonly e: Float32Array;

  constructor(readonly size: number) {
    this.h = new Float32Array(size * size);
    this.e = new Float32Array(size * size);
  }

  /** Blends (h, e) into pixel `i` with coverage `a` in [0, 1] (painter's "over"). */
  paint(i: number, a: number, h: number, e: number): void {
    const hs = this.h;
    const es = this.e;
    hs[i] = (hs[i] as number) + a * (h - (hs[i] as number));
    es[i] = (es[i] as number) + a * (e - (es[i] as number));
  }
}

/** 0 below `lo`, 1 above `hi`, smooth in between. */
export function smoothstep(lo: number, hi: number, x: number): number {
  const t = x <= lo ? 0 : x >= hi ? 1 : (x - lo) / (hi - lo);
  return t * t * (3 - 2 * t);
}

export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

/** A uniform in [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng.next();
}

/** A 32-bit integer hash of two integers and a seed, as a float in [0, 1). */
export function hash2(x: number, y: number, seed: number): number {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return ((h ^ (h >>> 15)) >>> 0) / 4294967296;
}

/**
 * Smooth value noise in [0, 1]: random values on a lattice `cellPx` apart, bilinear with smoothstep
 * weights; `octaves` > 1 adds halved cells at half the amplitude (normalised back to [0, 1]).
 */
export function valueNoise(size: number, cellPx: number, rng: Rng, octaves = 1): Float32Array {
  const out = new Float32Array(size * size);
  let amp = 1;
  let total = 0;
  let cell = Math.max(cellPx, 1);
  const ix = new Int32Array(size);
  const wx = new Float32Array(size);
  for (let o = 0; o < octaves; o++) {
    const n = Math.ceil(size / cell) + 2;
    const lattice = new Float32Array(n * n);
    for (let i = 0; i < lattice.length; i++) lattice[i] = amp * rng.next();
    for (let x = 0; x < size; x++) {
      const f = x / cell;
      const i = Math.floor(f);
      const t = f - i;
      ix[x] = i;
      wx[x] = t * t * (3 - 2 * t);
    }
    // Interpolate every lattice row along x once, then each pixel between two such rows.
    const rows = new Float32Array(n * size);
    for (let r = 0; r < n; r++) {
      const lat = r * n;
      const base = r * size;
      for (let x = 0; x < size; x++) {
        const i = lat + (ix[x] as number);
        const a = lattice[i] as number;
        rows[base + x] = a + (wx[x] as number) * ((lattice[i + 1] as number) - a);
      }
    }
    for (let y = 0; y < size; y++) {
      const r0 = (ix[y] as number) * size;
      const r1 = r0 + size;
      const ty = wx[y] as number;
      const base = y * size;
      for (let x = 0; x < size; x++) {
        const a = rows[r0 + x] as number;
        out[base + x] = (out[base + x] as number) + a + ty * ((rows[r1 + x] as number) - a);
      }
    }
    total += amp;
    amp *= 0.5;
    cell = Math.max(cell / 2, 1);
  }
  if (total !== 1) for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / total;
  return out;
}

/** Seed points on a jittered square grid covering the image plus a margin of `margin` cells. */
export interface PointGrid {
  spacing: number;
  /** Grid columns (and rows); cell (gx, gy) holds point gx + gy·n, its origin at (gx − margin)·spacing. */
  n: number;
  margin: number;
  x: Float32Array;
  y: Float32Array;
}

/** One point per grid cell, displaced up to `jitter`·spacing/2 from the cell centre. */
export function jitteredGrid(size: number, spacing: number, jitter: number, rng: Rng, margin = 2): PointGrid {
  const n = Math.ceil(size / spacing) + 2 * margin;
  const x = new Float32Array(n * n);
  const y = new Float32Array(n * n);
  for (let gy = 0; gy < n; gy++) {
    for (let gx = 0; gx < n; gx++) {
      const k = gx + gy * n;
      x[k] = (gx - margin + 0.5 + jitter * (rng.next() - 0.5)) * spacing;
      y[k] = (gy - margin + 0.5 + jitter * (rng.next() - 0.5)) * spacing;
    }
  }
  return { spacing, n, margin, x, y };
}

/** Per pixel: its nearest point, the second nearest, the distance to the first and to their bisector. */
export interface CellMap {
  nearest: Int32Array;
  second: Int32Array;
  /** Distance to the nearest point. */
  d1: Float32Array;
  /** Distance to the Voronoi edge between the two nearest points (half the gap between cells). */
  edge: Float32Array;
}

/**
 * Voronoi map of `grid` (3×3 neighbourhood search), optionally sampled at positions displaced by
 * `warp` = [dx field, dy field, amplitude in px] (fields in [0, 1], centred at 0.5), which bends the
 * straight cell walls into curves.
 */
export function cellMap(size: number, grid: PointGrid, warp?: [Float32Array, Float32Array, number]): CellMap {
  const count = size * size;
  const nearest = new Int32Array(count);
  const second = new Int32Array(count);
  const d1 = new Float32Array(count);
  const edge = new Float32Array(count);
  const { spacing, n, margin, x: px, y: py } = grid;
  const inv = 1 / spacing;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      let sx = x + 0.5;
      let sy = y + 0.5;
      if (warp) {
        sx += 2 * warp[2] * ((warp[0][i] as number) - 0.5);
        sy += 2 * warp[2] * ((warp[1][i] as number) - 0.5);
      }
      const cx = Math.min(Math.max(Math.floor(sx * inv) + margin, 1), n - 2);
      const cy = Math.min(Math.max(Math.floor(sy * inv) + margin, 1), n - 2);
      let b1 = Infinity;
      let b2 = Infinity;
      let k1 = 0;
      let k2 = 0;
      for (let gy = cy - 1; gy <= cy + 1; gy++) {
        for (let k = gy * n + cx - 1, kEnd = k + 3; k < kEnd; k++) {
          const dx = (px[k] as number) - sx;
          const dy = (py[k] as number) - sy;
          const d = dx * dx + dy * dy;
          if (d < b1) {
            b2 = b1;
            k2 = k1;
            b1 = d;
            k1 = k;
          } else if (d < b2) {
            b2 = d;
            k2 = k;
          }
        }
      }
      nearest[i] = k1;
      second[i] = k2;
      d1[i] = Math.sqrt(b1);
      const ex = (px[k2] as number) - (px[k1] as number);
      const ey = (py[k2] as number) - (py[k1] as number);
      edge[i] = (b2 - b1) / (2 * Math.sqrt(ex * ex + ey * ey) + 1e-6);
    }
  }
  return { nearest, second, d1, edge };
}

/** A rotated ellipse: centre, semi-axes `a` (along `angle`) and `b`, in px. */
export interface Ellipse {
  x: number;
  y: number;
  a: number;
  b: number;
  angle: number;
}

/**
 * Paints a filled ellipse with an anti-aliased rim `soft` px wide. `texture` (a per-pixel field in
 * [0, 1]) modulates h by ±`grain`/2; `rim` > 0 darkens h towards the border (vesicular nuclei).
 */
export function stampEllipse(
  c: Canvas,
  el: Ellipse,
  h: number,
  e: number,
  opts: { soft?: number; texture?: Float32Array; grain?: number; rim?: number; alpha?: number } = {},
): void {
  const { size } = c;
  const soft = opts.soft ?? 0.8;
  const grain = opts.grain ?? 0;
  const rim = opts.rim ?? 0;
  const alpha = opts.alpha ?? 1;
  const tex = opts.texture;
  const cos = Math.cos(el.angle);
  const sin = Math.sin(el.angle);
  const reach = Math.max(el.a, el.b) + soft;
  const x0 = Math.max(0, Math.floor(el.x - reach));
  const x1 = Math.min(size - 1, Math.ceil(el.x + reach));
  const y0 = Math.max(0, Math.floor(el.y - reach));
  const y1 = Math.min(size - 1, Math.ceil(el.y + reach));
  const ia = 1 / el.a;
  const ib = 1 / el.b;
  const edgeScale = el.b / soft;
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - el.y;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - el.x;
      const u = (dx * cos + dy * sin) * ia;
      const v = (dy * cos - dx * sin) * ib;
      const q = u * u + v * v;
      if (q >= 1.6) continue;
      const r = Math.sqrt(q);
      const a = clamp01((1 - r) * edgeScale + 0.5) * alpha;
      if (a <= 0) continue;
      const i = y * size + x;
      let hv = h;
      if (tex) hv *= 1 + grain * ((tex[i] as number) - 0.5);
      if (rim) hv *= 1 + rim * (q - 0.5);
      c.paint(i, a, hv, e);
    }
  }
}

/** 1-D Gaussian kernel of standard deviation `sigma`, radius ⌈3σ⌉, summing to 1. */
function gaussianKernel(sigma: number): Float32Array {
  const r = Math.ceil(3 * sigma);
  const k = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] = (k[i] as number) / sum;
  return k;
}

/** Convolves rows (or columns, `vertical`) of `src` into `dst` with `k`, clamping at the borders. */
function convolve1d(src: Float32Array, dst: Float32Array, size: number, k: Float32Array, vertical: boolean): void {
  const r = (k.length - 1) >> 1;
  const step = vertical ? size : 1;
  for (let line = 0; line < size; line++) {
    const base = vertical ? line : line * size;
    for (let t = 0; t < size; t++) {
      let acc = 0;
      if (t >= r && t < size - r) {
        const at = base + (t - r) * step;
        for (let j = 0; j <= 2 * r; j++) acc += (k[j] as number) * (src[at + j * step] as number);
      } else {
        for (let j = -r; j <= r; j++) {
          const s = t + j < 0 ? 0 : t + j >= size ? size - 1 : t + j;
          acc += (k[j + r] as number) * (src[base + s * step] as number);
        }
      }
      dst[base + t * step] = acc;
    }
  }
}

/** Moving-average of half-width `r` along rows or columns, clamping at borders. */
function boxBlur1d(src: Float32Array, dst: Float32Array, size: number, r: number, vertical: boolean): void {
  const w = 1 / (2 * r + 1);
  for (let line = 0; line < size; line++) {
    const base = vertical ? line : line * size;
    const step = vertical ? size : 1;
    const at = (t: number) => src[base + (t < 0 ? 0 : t >= size ? size - 1 : t) * step] as number;
    let acc = 0;
    for (let j = -r; j <= r; j++) acc += at(j);
    for (let t = 0; t < size; t++) {
      dst[base + t * step] = acc * w;
      acc += at(t + r + 1) - at(t - r);
    }
  }
}

/**
 * Gaussian blur in place: an exact separable kernel for σ ≤ 3 px, three box passes of matching
 * variance above (large images), so the cost per pixel stays bounded.
 */
export function gaussianBlur(field: Float32Array, size: number, sigma: number): void {
  if (sigma < 0.2) return;
  const tmp = new Float32Array(field.length);
  if (sigma <= 3) {
    const k = gaussianKernel(sigma);
    convolve1d(field, tmp, size, k, false);
    convolve1d(tmp, field, size, k, true);
    return;
  }
  // Three boxes of width w have variance 3·(w² − 1)/12 = σ².
  const r = Math.max(1, Math.round((Math.sqrt(4 * sigma * sigma + 1) - 1) / 2));
  for (let pass = 0; pass < 3; pass++) {
    boxBlur1d(field, tmp, size, r, false);
    boxBlur1d(tmp, field, size, r, true);
  }
}
