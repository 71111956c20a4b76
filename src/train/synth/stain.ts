/**
 * The slide side of the synthetic generator, drawn from ONE distribution for every class: the
 * per-image stain (haematoxylin and eosin optical-density vectors à la Ruifrok & Johnston 2001,
 * their strengths, the glass tint), uneven staining, white-space areas (no tissue), focus blur and
 * sensor noise, and the Beer–Lambert conversion RGB = 255·exp(−OD) of the two density maps.
 */
import type { Rng } from '../../nn/random.ts';
import { type Canvas, gaussianBlur, smoothstep, uniform, valueNoise } from './canvas.ts';

type Rgb = [number, number, number];

/** Ruifrok–Johnston haematoxylin; an eosin vector tuned to the pink of common H&E scans. */
const H_BASE: Rgb = [0.65, 0.7, 0.29];
const E_BASE: Rgb = [0.1, 0.85, 0.45];

export interface Stain {
  /** Optical density per unit haematoxylin / eosin density, per RGB channel. */
  h: Rgb;
  e: Rgb;
  /** Glass and mounting-medium tint, OD per channel. */
  glass: Rgb;
  /** Fraction of the image cleared of tissue. */
  whiteFraction: number;
  /** Gaussian focus blur, px. */
  blurSigma: number;
  /** Sensor noise, standard deviation in 8-bit steps. */
  noise: number;
  /** Amplitude of the low-frequency staining unevenness (relative). */
  uneven: number;
  /** Mean haematoxylin and eosin density of a uniform tissue whose colour the image's mean is pulled to. */
  target: [number, number];
}

function jitterVector(base: Rgb, rng: Rng, sd: number, scale: number): Rgb {
  const v = base.map((c) => Math.max(0.02, c + sd * rng.normal())) as Rgb;
  const n = Math.hypot(...v);
  return v.map((c) => (c / n) * scale) as Rgb;
}

/** One slide's staining and imaging conditions; `u` = image size / 256 scales lengths. */
export function sampleStain(rng: Rng, u: number): Stain {
  const intensity = Math.exp(0.22 * rng.normal());
  const h = jitterVector(H_BASE, rng, 0.05, intensity * Math.exp(0.2 * rng.normal()));
  const e = jitterVector(E_BASE, rng, 0.06, intensity * Math.exp(0.2 * rng.normal()));
  const tint = uniform(rng, 0.01, 0.07);
  const pink = rng.next();
  const glass: Rgb = [tint * (1 - pink + 0.1 * pink), tint * (1 - pink + 0.8 * pink), tint * (1 - pink + 0.45 * pink)];
  return {
    h,
    e,
    glass,
    whiteFraction: rng.next() < 0.2 ? 0 : uniform(rng, 0.03, 0.3),
    blurSigma: uniform(rng, 0, 1.1) * u,
    noise: uniform(rng, 1, 5),
    uneven: uniform(rng, 0.05, 0.3),
    target: [Math.exp(uniform(rng, Math.log(0.1), Math.log(0.5))), uniform(rng, 0.15, 0.38)],
  };
}

/**
 * Clears about `fraction` of the image (blobs of low-frequency noise above the matching quantile,
 * with soft borders) by fading both stains to zero.
 */
export function clearWhiteSpace(c: Canvas, rng: Rng, fraction: number, u: number): void {
  if (fraction <= 0) return;
  const { size } = c;
  const noise = valueNoise(size, uniform(rng, 45, 90) * u, rng, 2);
  const bins = new Uint32Array(512);
  for (let i = 0; i < noise.length; i++) bins[Math.min(511, Math.floor((noise[i] as number) * 512))]++;
  let above = 0;
  let threshold = 1;
  for (let b = 511; b >= 0; b--) {
    above += bins[b] as number;
    threshold = b / 512;
    if (above >= fraction * noise.length) break;
  }
  const band = 0.015;
  for (let i = 0; i < noise.length; i++) {
    const w = smoothstep(threshold - band, threshold + band, noise[i] as number);
    if (w > 0) {
      c.h[i] = (c.h[i] as number) * (1 - w);
      c.e[i] = (c.e[i] as number) * (1 - w);
    }
  }
}

/**
 * How far `normaliseMeanColour` moves the haematoxylin and eosin strengths towards the target, in
 * log scale (0: not at all, 1: exactly); less for haematoxylin, so small-cell nuclei stay dark.
 */
export const MEAN_COLOUR_PULL = { h: 0.6, e: 0.8 } as const;

/**
 * Rescales the haematoxylin and eosin maps so the image's mean transmitted colour moves towards the
 * colour of a uniform tissue of density `stain.target`: Gauss–Newton on the two log-scales over a
 * subsample of pixels, then `MEAN_COLOUR_PULL` of the way there, each scale within [1/3, 3]. The
 * target is drawn for every class from one distribution, so the mean colour says little about the
 * class, while the morphology (where the stain sits) is untouched. Without it, normal lung (mostly
 * air) is much lighter and small cell carcinoma (mostly nuclei) much darker and bluer than the rest,
 * and a nearest-centroid classifier on mean RGB gets ~75% of val+test right instead of ~45%.
 */
export function normaliseMeanColour(c: Canvas, stain: Stain): void {
  const n = c.size * c.size;
  const step = Math.max(1, Math.floor(n / 2048));
  const hs: number[] = [];
  const es: number[] = [];
  for (let i = step >> 1; i < n; i += step) {
    hs.push(c.h[i] as number);
    es.push(c.e[i] as number);
  }
  const m = hs.length;
  const [th, te] = stain.target;
  const target = [0, 1, 2].map((ch) => Math.exp(-((stain.glass[ch] as number) + th * (stain.h[ch] as number) + te * (stain.e[ch] as number))));
  let a = 0;
  let b = 0;
  for (let iter = 0; iter < 8; iter++) {
    const sh = Math.exp(a);
    const se = Math.exp(b);
    let jtj00 = 1e-6;
    let jtj01 = 0;
    let jtj11 = 1e-6;
    let jtr0 = 0;
    let jtr1 = 0;
    for (let ch = 0; ch < 3; ch++) {
      const hv = stain.h[ch] as number;
      const ev = stain.e[ch] as number;
      const g = stain.glass[ch] as number;
      let f = 0;
      let ja = 0;
      let jb = 0;
      for (let k = 0; k < m; k++) {
        const dh = sh * (hs[k] as number) * hv;
        const de = se * (es[k] as number) * ev;
        const t = Math.exp(-(g + dh + de));
        f += t;
        ja -= dh * t;
        jb -= de * t;
      }
      const r = f / m - (target[ch] as number);
      ja /= m;
      jb /= m;
      jtj00 += ja * ja;
      jtj01 += ja * jb;
      jtj11 += jb * jb;
      jtr0 += ja * r;
      jtr1 += jb * r;
    }
    const det = jtj00 * jtj11 - jtj01 * jtj01;
    const da = -(jtj11 * jtr0 - jtj01 * jtr1) / det;
    const db = -(jtj00 * jtr1 - jtj01 * jtr0) / det;
    a = Math.max(-1.5, Math.min(1.5, a + Math.max(-0.7, Math.min(0.7, da))));
    b = Math.max(-1.5, Math.min(1.5, b + Math.max(-0.7, Math.min(0.7, db))));
    if (Math.abs(da) + Math.abs(db) < 1e-3) break;
  }
  const lim = Math.log(3);
  const sh = Math.exp(Math.max(-lim, Math.min(lim, MEAN_COLOUR_PULL.h * a)));
  const se = Math.exp(Math.max(-lim, Math.min(lim, MEAN_COLOUR_PULL.e * b)));
  for (let i = 0; i < n; i++) {
    c.h[i] = (c.h[i] as number) * sh;
    c.e[i] = (c.e[i] as number) * se;
  }
}

/**
 * Stains the canvas: blur, unevenness, OD = glass + h·H + e·E per channel, RGB = 255·exp(−OD) plus
 * noise, rounded to 8 bits. Returns interleaved RGB.
 */
export function stainToRgb(c: Canvas, stain: Stain, rng: Rng, u: number): Uint8Array {
  const { size } = c;
  gaussianBlur(c.h, size, stain.blurSigma);
  gaussianBlur(c.e, size, stain.blurSigma);
  const uneven = valueNoise(size, uniform(rng, 60, 140) * u, rng);
  let state = rng.nextU32() | 1;
  const out = new Uint8Array(size * size * 3);
  const [hr, hg, hb] = stain.h;
  const [er, eg, eb] = stain.e;
  const [gr, gg, gb] = stain.glass;
  const amp = stain.uneven * 2;
  // Sum of two uniforms in [−0.5, 0.5): triangular, standard deviation 1/√6.
  const sd = (stain.noise * Math.sqrt(6)) / 4294967296;
  const hs = c.h;
  const es = c.e;
  const lut = transmittanceTable();
  const top = lut.length - 1;
  for (let i = 0; i < size * size; i++) {
    const m = 1 + amp * ((uneven[i] as number) - 0.5);
    const h = (hs[i] as number) * m;
    const e = (es[i] as number) * m;
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const r1 = state;
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const lum = sd * (r1 + state);
    const chroma = 0.5 * sd * ((r1 << 16) + (state << 16));
    const o = 3 * i;
    // A Uint8Array store wraps and truncates: clamp, and the + 0.5 above rounds.
    const vr = (lut[Math.min(top, ((gr + h * hr + e * er) * LUT_STEPS) | 0)] as number) + lum + chroma + 0.5;
    const vg = (lut[Math.min(top, ((gg + h * hg + e * eg) * LUT_STEPS) | 0)] as number) + lum + 0.5;
    const vb = (lut[Math.min(top, ((gb + h * hb + e * eb) * LUT_STEPS) | 0)] as number) + lum - chroma + 0.5;
    out[o] = vr < 0 ? 0 : vr > 255 ? 255 : vr;
    out[o + 1] = vg < 0 ? 0 : vg > 255 ? 255 : vg;
    out[o + 2] = vb < 0 ? 0 : vb > 255 ? 255 : vb;
  }
  return out;
}

/** Table entries per unit optical density: 255·exp(−OD) changes by < 0.25 of a level between entries. */
const LUT_STEPS = 1024;
let lutCache: Float64Array | null = null;

/** 255·exp(−OD) at OD = (k + 0.5) / LUT_STEPS, for OD in [0, 8). */
function transmittanceTable(): Float64Array {
  if (!lutCache) {
    lutCache = new Float64Array(8 * LUT_STEPS);
    for (let k = 0; k < lutCache.length; k++) lutCache[k] = 255 * Math.exp(-(k + 0.5) / LUT_STEPS);
  }
  return lutCache;
}
