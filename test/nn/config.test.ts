import { describe, expect, it } from 'vitest';
import { derivedSizes, SEED_CONFIG, TINY_CONFIG, validateConfig, type ModelConfig } from '../../src/nn/config.ts';

function withChange(change: (c: ModelConfig) => void): ModelConfig {
  const c = structuredClone(SEED_CONFIG);
  change(c);
  return c;
}

describe('model config', () => {
  it('derives the seed sizes of MODEL-SPEC', () => {
    expect(derivedSizes(SEED_CONFIG)).toEqual({ featureMapSize: 64, level1Patches: 81, level2Patches: 25, level2MapSize: 16 });
    expect(validateConfig(TINY_CONFIG)).toBe(TINY_CONFIG);
  });

  const refusals: [string, (c: ModelConfig) => void, RegExp][] = [
    ['patch larger than the image', (c) => (c.patch.size = 4096), /patch.size 4096 is larger than imageSize 2560/],
    ['downsampling below one pixel', (c) => (c.level1 = { widths: Array(10).fill(8), downsample: Array(10).fill(true) }), /below one pixel/],
    ['level 2 below one pixel', (c) => ((c.patch.size = 64), (c.level1.downsample = [true, true, true, true, true])), /level2 downsamples the 2-pixel feature map 2 times, below one pixel/],
    ['fewer than two classes', (c) => (c.classes = ['NORM']), /at least two names/],
    ['duplicate classes', (c) => (c.classes = ['A', 'A']), /duplicate/],
    ['lengths that disagree', (c) => (c.level1.downsample = [true, true]), /level1.widths has 5 entries but level1.downsample has 2/],
    ['a zero width', (c) => (c.level2.widths = [64, 0]), /level2.widths\[1\] must be a positive integer/],
    ['dropout of 1', (c) => (c.level2.dropout = 1), /level2.dropout must be in \[0, 1\)/],
    ['an unknown linear init', (c) => ((c.level2 as { linearInit?: string }).linearInit = 'xavier'), /level2.linearInit must be one of normal-0.01, kaiming-normal, got "xavier"/],
    ['missing stride', (c) => delete (c.patch as Partial<ModelConfig['patch']>).stride, /patch.stride must be a positive integer/],
  ];
  it.each(refusals)('refuses %s', (_what, change, message) => {
    expect(() => validateConfig(withChange(change))).toThrow(message);
  });
});
