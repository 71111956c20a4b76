/**
 * The one seed mixer (src/nn/random.ts): fmix32 and FNV-1a against published values, mixSeed
 * deterministic, distinct for adjacent, permuted and differently long inputs, full avalanche
 * (measured, with a weak mixer as the control the measure must reject), and distinct stream tags.
 */
import { describe, expect, it } from 'vitest';
import { fmix32, hashText, mixSeed, Rng, SEED_STREAM } from '../../src/nn/random.ts';

/**
 * For random 3-word inputs, how often flipping input bit i flips output bit j: the mean rate and
 * the worst |rate − ½| over all (i, j) pairs.
 */
function avalanche(mix: (...w: number[]) => number, samples: number): { mean: number; worst: number } {
  const rng = new Rng(20261203);
  const flips = new Float64Array(96 * 32);
  for (let s = 0; s < samples; s++) {
    const words = [rng.nextU32(), rng.nextU32(), rng.nextU32()];
    const base = mix(...words);
    for (let i = 0; i < 96; i++) {
      const flipped = [...words];
      flipped[i >> 5] = ((flipped[i >> 5] as number) ^ (1 << (i & 31))) >>> 0;
      const diff = (mix(...flipped) ^ base) >>> 0;
      for (let j = 0; j < 32; j++) if ((diff >>> j) & 1) flips[32 * i + j] = (flips[32 * i + j] ?? 0) + 1;
    }
  }
  let sum = 0;
  let worst = 0;
  for (const f of flips) {
    sum += f / samples;
    worst = Math.max(worst, Math.abs(f / samples - 0.5));
  }
  return { mean: sum / flips.length, worst };
}

describe('fmix32 and hashText', () => {
  it('match MurmurHash3 fmix32 and 32-bit FNV-1a reference values', () => {
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7);
    expect(hashText('')).toBe(0x811c9dc5);
    expect(hashText('a')).toBe(0xe40c292c);
    expect(hashText('foobar')).toBe(0xbf9cf968);
  });
});

describe('mixSeed', () => {
  it('is deterministic and returns a u32', () => {
    const a = mixSeed(42, SEED_STREAM.dropoutStep, 3, 17);
    expect(mixSeed(42, SEED_STREAM.dropoutStep, 3, 17)).toBe(a);
    expect(Number.isInteger(a) && a >= 0 && a <= 0xffffffff).toBe(true);
  });

  it('gives distinct seeds for adjacent indices, seeds and epochs', () => {
    for (const vary of [(k: number) => mixSeed(7, 5, 0, k), (k: number) => mixSeed(k, 5, 0, 0), (k: number) => mixSeed(7, 5, k, 0)]) {
      expect(new Set(Array.from({ length: 20000 }, (_, k) => vary(k))).size).toBe(20000);
    }
  });

  it('depends on the order and the number of words', () => {
    const perms = [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1]];
    expect(new Set(perms.map((p) => mixSeed(...p))).size).toBe(6);
    expect(new Set([mixSeed(), mixSeed(0), mixSeed(0, 0), mixSeed(0, 0, 0), mixSeed(1), mixSeed(1, 0)]).size).toBe(6);
  });

  it('folds words outside u32 in: -1, 2³², 2³² + 1 differ from their low halves', () => {
    expect(mixSeed(-1)).not.toBe(mixSeed(0xffffffff));
    expect(mixSeed(2 ** 32)).not.toBe(mixSeed(0));
    expect(mixSeed(2 ** 32 + 1)).not.toBe(mixSeed(1));
  });

  it('refuses words that are not safe integers, naming the word', () => {
    expect(() => mixSeed(1, 0.5)).toThrow(/word 1 is 0.5/);
    expect(() => mixSeed(Number.NaN)).toThrow(RangeError);
    expect(() => mixSeed(2 ** 53)).toThrow(RangeError);
  });

  it('avalanches: each input bit flips each output bit with probability ≈ ½', () => {
    const { mean, worst } = avalanche(mixSeed, 4000);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    // 4,000 samples: one pair's sd is 0.008; the worst of 3,072 pairs measured 0.036 (the weak mixer below: 0.5).
    expect(worst).toBeLessThan(0.05);
  });

  it('the avalanche measure rejects a weak mixer (a multiply-xor without a finaliser)', () => {
    const weak = (...w: number[]) => w.reduce((h, x) => (Math.imul(h, 0x9e3779b1) ^ x) >>> 0, 0);
    expect(avalanche(weak, 400).worst).toBeGreaterThan(0.3);
  });
});

describe('SEED_STREAM', () => {
  it('gives every use of mixSeed its own tag', () => {
    const tags = Object.values(SEED_STREAM);
    expect(new Set(tags).size).toBe(tags.length);
  });
});
