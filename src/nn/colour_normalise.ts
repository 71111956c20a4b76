/**
 * Per-image colour normalisation, the preprocessing a run records in its config
 * (`colourNormalise`) so that training, evaluation, prediction, whole-slide prediction (per tile)
 * and the browser demo all feed the network the same kind of pixels.
 *
 * 'channel-stats': each RGB channel of the image is shifted and scaled so that its mean and
 * standard deviation (population, over all pixels) become the target's — the training set's
 * average per-image mean and std, measured when the run starts and saved with it. It is the
 * per-channel form of Reinhard et al. 2001 ("Color transfer between images"), done in RGB rather
 * than lαβ, and it is exactly the transform the README's "colour-normalised" test copy applies:
 * with it, that copy and the raw image reach the network as nearly the same pixels (rounding
 * aside), so the two accuracies then both measure what is left after colour statistics: texture.
 *
 * Pure TypeScript in float64, rounded to RGB8 (x.5 away from zero, as Math.round for ≥ 0),
 * clamped to [0, 255]: the same bytes in Node and the browser. 1.8–1.9 ms of CPU time for a 224²
 * image and 0.15–0.17 s for a 2560² one on this project's CPU (bench/colour_normalise.ts).
 */
import type { ModelConfig } from './config.ts';

/** Per-channel mean and standard deviation, in RGB order, on the 0–255 scale. */
export interface ChannelStats {
  mean: [number, number, number];
  std: [number, number, number];
}

/** What a config may ask for: nothing, or per-channel statistics matched to a target. */
export type ColourNormaliseMethod = 'none' | 'channel-stats';

export const COLOUR_NORMALISE_METHODS: readonly ColourNormaliseMethod[] = ['none', 'channel-stats'];

/**
 * The `colourNormalise` field of a config. `target` is filled in by `lungpath train` from the
 * training images when the preset leaves it out; a run's saved config always has it.
 */
export interface ColourNormalise {
  method: ColourNormaliseMethod;
  target?: ChannelStats;
}

/**
 * A channel whose std is below this is treated as having this std: a flat (or nearly flat) channel
 * is moved to the target mean, not blown up into noise.
 */
export const MIN_CHANNEL_STD = 1;

/** Mean and population std of each channel of interleaved RGB8 `rgb`, in float64. */
export function channelStats(rgb: Uint8Array): ChannelStats {
  const pixels = rgb.length / 3;
  if (!Number.isInteger(pixels) || pixels === 0) throw new RangeError(`channelStats: expected interleaved RGB8, got ${rgb.length} bytes`);
  const sum = [0, 0, 0];
  const sumSq = [0, 0, 0];
  for (let i = 0; i < rgb.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const v = rgb[i + c] as number;
      sum[c] = (sum[c] as number) + v;
      sumSq[c] = (sumSq[c] as number) + v * v;
    }
  }
  // Integer sums up to 255²·pixels are exact in float64 below 2^53 (≈ 1.4e11 pixels).
  const mean = sum.map((s) => s / pixels) as [number, number, number];
  const std = sumSq.map((s, c) => Math.sqrt(Math.max(0, s / pixels - (mean[c] as number) ** 2))) as [number, number, number];
  return { mean, std };
}

/** The average of several images' channel statistics (each image weighs the same). */
export function averageChannelStats(stats: readonly ChannelStats[]): ChannelStats {
  if (stats.length === 0) throw new RangeError('averageChannelStats: no images');
  const avg = (pick: (s: ChannelStats) => number[]) => [0, 1, 2].map((c) => stats.reduce((a, s) => a + (pick(s)[c] as number), 0) / stats.length) as [number, number, number];
  return { mean: avg((s) => s.mean), std: avg((s) => s.std) };
}

/**
 * A new RGB8 image whose channels have `target`'s mean and std (before rounding and clamping):
 * out = (x − mean) · (target.std / max(std, MIN_CHANNEL_STD)) + target.mean.
 */
export function matchChannelStats(rgb: Uint8Array, target: ChannelStats): Uint8Array {
  const own = channelStats(rgb);
  const scale = [0, 1, 2].map((c) => target.std[c] / Math.max(own.std[c] as number, MIN_CHANNEL_STD));
  const shift = [0, 1, 2].map((c) => target.mean[c] - (own.mean[c] as number) * (scale[c] as number));
  // One lookup table per channel: 256 float64 evaluations instead of one per pixel.
  const tables = [0, 1, 2].map((c) => {
    const t = new Uint8Array(256);
    for (let v = 0; v < 256; v++) t[v] = Math.min(255, Math.max(0, Math.round(v * (scale[c] as number) + (shift[c] as number))));
    return t;
  });
  const [r, g, b] = tables as [Uint8Array, Uint8Array, Uint8Array];
  const out = new Uint8Array(rgb.length);
  for (let i = 0; i < rgb.length; i += 3) {
    out[i] = r[rgb[i] as number] as number;
    out[i + 1] = g[rgb[i + 1] as number] as number;
    out[i + 2] = b[rgb[i + 2] as number] as number;
  }
  return out;
}

/** The method `config` asks for ('none' when the field is absent, as in configs before 0.3). */
export function colourNormaliseMethod(config: Pick<ModelConfig, 'colourNormalise'>): ColourNormaliseMethod {
  return config.colourNormalise?.method ?? 'none';
}

/**
 * `rgb` as the network of a run with `config` must see it: unchanged for 'none', matched to the
 * recorded target for 'channel-stats'. Throws if the config asks for normalisation but has no
 * target (a preset that `lungpath train` has not filled in yet).
 */
export function normaliseColour(config: Pick<ModelConfig, 'colourNormalise'>, rgb: Uint8Array): Uint8Array {
  const method = colourNormaliseMethod(config);
  if (method === 'none') return rgb;
  if (method === 'channel-stats') {
    const target = config.colourNormalise?.target;
    if (!target) throw new Error("config: colourNormalise.method is 'channel-stats' but colourNormalise.target is missing (lungpath train records the training set's average there)");
    return matchChannelStats(rgb, target);
  }
  return method satisfies never;
}

/** Throws a message naming the field unless `value` is a usable `colourNormalise` (or absent). */
export function checkColourNormalise(value: unknown): void {
  if (value === undefined) return;
  const c = value as ColourNormalise;
  if (typeof c !== 'object' || c === null) throw new Error(`config: colourNormalise must be an object like {"method": "channel-stats"}, got ${JSON.stringify(value)}`);
  if (!COLOUR_NORMALISE_METHODS.includes(c.method)) {
    throw new Error(`config: colourNormalise.method must be one of ${COLOUR_NORMALISE_METHODS.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(c.method)}`);
  }
  if (c.target === undefined) return;
  for (const key of ['mean', 'std'] as const) {
    const v = c.target?.[key];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 255)) {
      throw new Error(`config: colourNormalise.target.${key} must be three numbers in [0, 255] (R, G, B), got ${JSON.stringify(v)}`);
    }
  }
}
