/**
 * examples/custom-cnn.mjs — a CNN of our own on lungpath's kernels, ops, tape and Adam — must learn
 * its toy task: the loss falls and the held-out accuracy rises from chance to near 100%.
 * (examples/classify-folder.mjs runs against the installed tarball in test/package/package.test.ts.)
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript example without declarations
import { trainToyCnn } from '../../examples/custom-cnn.mjs';
import { gpu } from '../helpers/gpu.ts';

interface ToyResult {
  losses: number[];
  accuracyBefore: number;
  accuracyAfter: number;
}

describe('examples/custom-cnn.mjs', () => {
  it('learns the toy task: loss falls, held-out accuracy goes from chance to >= 95%', async () => {
    const rt = await gpu();
    const r = (await trainToyCnn({ rt, steps: 60, seed: 7 })) as ToyResult;
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(r.losses).toHaveLength(60);
    expect(r.losses.every(Number.isFinite)).toBe(true);
    const first = mean(r.losses.slice(0, 5));
    const last = mean(r.losses.slice(-10));
    expect(first).toBeGreaterThan(0.4); // near ln 2 at the start
    expect(last).toBeLessThan(first / 5);
    expect(r.accuracyBefore).toBeLessThan(0.8);
    expect(r.accuracyAfter).toBeGreaterThanOrEqual(0.95);
  });
});
