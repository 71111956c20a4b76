/**
 * Per-image colour normalisation (src/nn/colour_normalise.ts) against a plain float64 reference
 * written out per pixel here (two-pass statistics, the formula, round, clamp), on awkward shapes;
 * and the property the README leans on: an image and a copy of it whose channels were shifted and
 * scaled (a stain or scanner change) reach the network as nearly the same bytes.
 */
import { describe, expect, it } from 'vitest';
import { averageChannelStats, channelStats, matchChannelStats, MIN_CHANNEL_STD, normaliseColour, type ChannelStats } from '../../src/nn/colour_normalise.ts';
import { validateConfig, TILE_CONFIG, type ModelConfig } from '../../src/nn/config.ts';

/** A seeded xorshift image of `pixels` RGB pixels, channel c drawn from [lo[c], hi[c]]. */
function image(pixels: number, seed: number, lo = [0, 0, 0], hi = [255, 255, 255]): Uint8Array {
  let s = seed >>> 0 || 1;
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const c = i % 3;
    out[i] = (lo[c] as number) + ((s >>> 0) % ((hi[c] as number) - (lo[c] as number) + 1));
  }
  return out;
}

/** Two-pass float64 statistics of channel c. */
function referenceStats(rgb: Uint8Array): ChannelStats {
  const n = rgb.length / 3;
  const mean = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = c; i < rgb.length; i += 3) s += rgb[i] as number;
    return s / n;
  });
  const std = [0, 1, 2].map((c) => {
    let s = 0;
    for (let i = c; i < rgb.length; i += 3) s += ((rgb[i] as number) - (mean[c] as number)) ** 2;
    return Math.sqrt(s / n);
  });
  return { mean: mean as ChannelStats['mean'], std: std as ChannelStats['std'] };
}

/** The transform, pixel by pixel, in float64. */
function referenceMatch(rgb: Uint8Array, target: ChannelStats): Uint8Array {
  const own = referenceStats(rgb);
  return rgb.map((v, i) => {
    const c = i % 3;
    const x = ((v - own.mean[c]) / Math.max(own.std[c], MIN_CHANNEL_STD)) * target.std[c] + target.mean[c];
    return Math.min(255, Math.max(0, Math.round(x)));
  });
}

/** Index of the first byte where a and b differ (-1: equal); a plain loop, as toEqual on 150k bytes takes seconds. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

const TARGET: ChannelStats = { mean: [171.1, 136.6, 217.0], std: [32.7, 43.7, 20.9] };

describe('per-image colour normalisation', () => {
  const cases: [string, Uint8Array][] = [
    ['one pixel', Uint8Array.from([10, 200, 30])],
    ['7×3 random', image(21, 7)],
    ['a flat channel (std 0)', image(50, 3).map((v, i) => (i % 3 === 1 ? 90 : v))],
    ['a nearly flat channel (std < 1)', image(64, 5, [100, 40, 0], [101, 200, 255])],
    ['224² H&E-like (pink, saturated blue)', image(224 * 224, 11, [120, 60, 180], [255, 200, 255])],
    ['all black', new Uint8Array(30)],
    ['all white', new Uint8Array(30).fill(255)],
  ];

  it.each(cases)('channelStats equals the two-pass float64 statistics: %s', (_what, rgb) => {
    const got = channelStats(rgb);
    const want = referenceStats(rgb);
    for (let c = 0; c < 3; c++) {
      expect(got.mean[c]).toBeCloseTo(want.mean[c], 9);
      expect(got.std[c]).toBeCloseTo(want.std[c], 6);
    }
  });

  it.each(cases)('matchChannelStats equals the per-pixel float64 reference byte for byte: %s', (_what, rgb) => {
    expect(firstDifference(matchChannelStats(rgb, TARGET), referenceMatch(rgb, TARGET))).toBe(-1);
  });

  it('gives the target statistics when nothing clips (within rounding)', () => {
    const rgb = image(128 * 128, 21, [100, 50, 150], [200, 150, 250]);
    const out = channelStats(matchChannelStats(rgb, { mean: [128, 128, 128], std: [20, 25, 30] }));
    for (let c = 0; c < 3; c++) {
      expect(Math.abs(out.mean[c] - 128)).toBeLessThan(0.05);
      expect(Math.abs(out.std[c] - [20, 25, 30][c]!)).toBeLessThan(0.1);
    }
  });

  it('an image and a re-stained copy (each channel scaled and shifted) come out within 1 of each other', () => {
    const rgb = image(96 * 96, 33, [90, 40, 140], [230, 190, 250]);
    const restained = rgb.map((v, i) => Math.round([0.8 * v + 30, 0.9 * v + 5, 0.7 * v + 60][i % 3] as number));
    expect(channelStats(restained).mean[0]).not.toBeCloseTo(channelStats(rgb).mean[0], 0);
    const a = matchChannelStats(rgb, TARGET);
    const b = matchChannelStats(restained, TARGET);
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
    expect(worst).toBeLessThanOrEqual(1);
  });

  it('averages images with equal weight', () => {
    const avg = averageChannelStats([
      { mean: [10, 20, 30], std: [1, 2, 3] },
      { mean: [30, 40, 50], std: [3, 4, 5] },
    ]);
    expect(avg).toEqual({ mean: [20, 30, 40], std: [2, 3, 4] });
  });

  it("follows the config: unchanged for 'none' or no field, refused when a 'channel-stats' config has no target", () => {
    const rgb = image(16, 2);
    expect(normaliseColour({}, rgb)).toBe(rgb);
    expect(normaliseColour({ colourNormalise: { method: 'none' } }, rgb)).toBe(rgb);
    expect(firstDifference(normaliseColour({ colourNormalise: { method: 'channel-stats', target: TARGET } }, rgb), referenceMatch(rgb, TARGET))).toBe(-1);
    expect(() => normaliseColour({ colourNormalise: { method: 'channel-stats' } }, rgb)).toThrow(/colourNormalise.target is missing/);
  });

  const refusals: [string, unknown, RegExp][] = [
    ['an unknown method', { method: 'macenko' }, /colourNormalise.method must be one of 'none', 'channel-stats', got "macenko"/],
    ['a string instead of an object', 'channel-stats', /colourNormalise must be an object/],
    ['a target with two channels', { method: 'channel-stats', target: { mean: [1, 2], std: [1, 2, 3] } }, /colourNormalise.target.mean must be three numbers/],
    ['a negative std', { method: 'channel-stats', target: { mean: [1, 2, 3], std: [1, -2, 3] } }, /colourNormalise.target.std must be three numbers/],
  ];
  it.each(refusals)('the config validation refuses %s', (_what, value, message) => {
    const config = { ...structuredClone(TILE_CONFIG), colourNormalise: value } as ModelConfig;
    expect(() => validateConfig(config)).toThrow(message);
  });
});
