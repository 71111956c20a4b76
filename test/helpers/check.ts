/**
 * The one closeness checker (after llm.c's validate_result): |actual − expected| ≤ atol + rtol·|expected|
 * element by element (src/kernels/check.ts); on failure, the message lists the first mismatching
 * indices and values.
 */
import { expect } from 'vitest';
import { closeMismatches, type Tolerance } from '../../src/kernels/check.ts';

export { closeMismatches, type Tolerance } from '../../src/kernels/check.ts';

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
