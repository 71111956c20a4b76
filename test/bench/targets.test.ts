/** The benchmark's target check (bench/targets.ts): ratios from row times, backward as dx + dW. */
import { describe, expect, it } from 'vitest';
import { checkTargets, type TimedRow } from '../../bench/targets.ts';

const row = (name: string, oursMs: number | null, tfjsMs: number | null, shape = 's'): TimedRow => ({ name, shape, oursMs, tfjsMs });

describe('benchmark targets', () => {
  it('forward: TF.js time over ours; backward: the sum of dx and dW on each side', () => {
    const results = checkTargets([row('conv 3x3 forward', 1, 2.5), row('conv 3x3 dx', 1, 2), row('conv 3x3 dW', 1, 20)]);
    expect(results).toEqual([
      { target: '3x3 conv forward', shape: 's', goal: 2, ratio: 2.5, met: true },
      { target: '3x3 conv backward (dx + dW)', shape: 's', goal: 6, ratio: 11, met: true },
    ]);
  });

  it('a ratio under the goal is not met; a side not measured is neither', () => {
    const results = checkTargets([row('conv 2x2s2 forward', 2, 3), row('train step tiny patch net', 1, null)]);
    expect(results.map((r) => [r.target, r.ratio, r.met])).toEqual([
      ['2x2 s2 conv forward', 1.5, false],
      ['tiny patch net training step', null, null],
    ]);
  });

  it('one result per shape measured, each from the rows of its own shape', () => {
    const results = checkTargets([row('conv 3x3 forward', 1, 3, 'a'), row('conv 3x3 forward', 1, 1, 'b')]);
    expect(results.map((r) => [r.shape, r.met])).toEqual([['a', true], ['b', false]]);
  });
});
