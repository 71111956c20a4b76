/**
 * The one closeness checker (after llm.c's validate_result): |actual − expected| ≤ atol + rtol·|expected|
 * element by element; on failure, the message lists the first mismatching indices and values.
 */
import { expect } from 'vitest';

export interface Tolerance {
  atol?: number;
  rtol?: number;
}

export function closeMismatches(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-4 }: Tolerance = {},
): { count: number; report: string; maxAbsError: number } {
  if (actual.length !== expected.length) {
    return { count: Math.max(actual.length, expected.length), report: `length ${actual.length} ≠ expected ${expected.length}`, maxAbsError: Infinity };
  }
  const lines: string[] = [];
  let count = 0;
  let maxAbsError = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    const err = Math.abs(a - e);
    maxAbsError = Math.max(maxAbsError, Number.isNaN(err) ? Infinity : err);
    if (!(err <= atol + rtol * Math.abs(e))) {
      count++;
      if (lines.length < 10) lines.push(`  [${i}] got ${a}, expected ${e} (|diff| ${err.toExponential(3)})`);
    }
  }
  const report = count ? `${count} of ${expected.length} elements differ (atol ${atol}, rtol ${rtol}); first:\n${lines.join('\n')}` : '';
  return { count, report, maxAbsError };
}

/** Fails the test with the first mismatches when `actual` is not close to `expected`. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: Tolerance = {}, what = 'values'): void {
  const { count, report } = closeMismatches(actual, expected, tolerance);
  if (count > 0) expect.fail(`${what}: ${report}`);
}

/** Fails unless the two arrays hold the same bits. */
export function expectBitwiseEqual(a: Float32Array, b: Float32Array, what = 'values'): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  expect(ua.length, `${what}: length`).toBe(ub.length);
  const first = ua.findIndex((v, i) => v !== ub[i]);
  if (first >= 0) expect.fail(`${what}: not bitwise equal; first difference at [${first}]: ${a[first]} vs ${b[first]}`);
}
