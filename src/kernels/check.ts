/**
 * Checking a kernel against its CPU reference, for tests, benchmarks and programs that add kernels:
 * the one closeness checker (after llm.c's validate_result: |actual − expected| ≤ atol + rtol·|expected|
 * element by element, reporting the first mismatching indices and values) and seeded input data
 * (mulberry32), so every run sees the same inputs. test/helpers/ wraps these for vitest.
 */

/** Absolute and relative tolerance of closeMismatches (defaults 1e-5 and 1e-4). */
export interface Tolerance {
  atol?: number;
  rtol?: number;
}

/** The elements of `actual` not within atol + rtol·|expected|: how many, a report of the first ten, and the largest error. */
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

/** A seeded generator of uniform numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` values uniform in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}
