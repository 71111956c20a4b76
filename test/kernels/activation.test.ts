/**
 * ReLU and dropout: GPU kernels against the references (exact for ReLU), the dropout mask CPU vs
 * GPU bit for bit, its keep rate and counter semantics, chunking over a lowered binding limit,
 * and the reference backwards against central finite differences.
 */
import { describe, expect, it } from 'vitest';
import { dropoutBackward, dropoutBackwardRef, dropoutForward, dropoutForwardRef, dropoutMaskRef } from '../../src/kernels/dropout.ts';
import { reluBackward, reluBackwardRef, reluForward, reluForwardRef } from '../../src/kernels/relu.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { dot, numericGradient } from '../helpers/gradcheck.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const EXACT = { atol: 0, rtol: 0 };

/** ReLU forward and backward on the GPU against the reference; both are exact (no rounding). */
async function checkRelu(rt: Runtime, n: number) {
  const xs = randomArray(n, n);
  const dys = randomArray(n, n + 1);
  xs[0] = 0;
  const x = rt.upload(xs);
  const dy = rt.upload(dys);
  const y = reluForward(rt, x, n);
  const dx = reluBackward(rt, dy, y, n);
  const yRef = reluForwardRef(xs);
  expectClose(await rt.readF32(y, n), yRef, EXACT, 'relu y');
  expectClose(await rt.readF32(dx, n), reluBackwardRef(dys, yRef), EXACT, 'relu dx');
  [x, dy, y, dx].forEach((b) => rt.release(b));
}

/** The GPU's keep mask, read off the forward of all-ones (kept → 1/(1 − p) > 0, dropped → 0). */
async function gpuMask(rt: Runtime, n: number, p: number, seed: number, offset = 0): Promise<Uint8Array> {
  const ones = rt.upload(new Float32Array(n).fill(1));
  const y = dropoutForward(rt, ones, n, p, seed, offset);
  const out = await rt.readF32(y, n);
  rt.release(ones);
  rt.release(y);
  return Uint8Array.from(out, (v) => (v > 0 ? 1 : 0));
}

function differing(a: Uint8Array, b: Uint8Array): number {
  let count = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) count++;
  return count;
}

/** Fails with the first differing index unless the two masks are the same (fast on 1M elements). */
function expectSameMask(got: Uint8Array, expected: Uint8Array, what = 'mask'): void {
  expect(got.length, `${what}: length`).toBe(expected.length);
  const first = got.findIndex((v, i) => v !== expected[i]);
  if (first >= 0) expect.fail(`${what}: ${differing(got, expected)} elements differ, first at [${first}]: ${got[first]} vs ${expected[first]}`);
}

/** Dropout forward and backward on the GPU against the reference. */
async function checkDropout(rt: Runtime, n: number, p: number, seed: number, offset: number) {
  const xs = randomArray(n, seed);
  const dys = randomArray(n, seed + 1);
  const x = rt.upload(xs);
  const dy = rt.upload(dys);
  const y = dropoutForward(rt, x, n, p, seed, offset);
  const dx = dropoutBackward(rt, dy, n, p, seed, offset);
  expectClose(await rt.readF32(y, n), dropoutForwardRef(xs, n, p, seed, offset), { atol: 0, rtol: 1e-6 }, 'dropout y');
  expectClose(await rt.readF32(dx, n), dropoutBackwardRef(dys, n, p, seed, offset), { atol: 0, rtol: 1e-6 }, 'dropout dx');
  expectSameMask(await gpuMask(rt, n, p, seed, offset), dropoutMaskRef(n, p, seed, offset));
  [x, dy, y, dx].forEach((b) => rt.release(b));
}

describe('relu', () => {
  it.each([1, 3, 7, 63, 1000, 70001])('GPU forward/backward match the reference, n=%i', async (n) => checkRelu(await gpu(), n));

  it('processes arrays over the binding limit in chunks (limit lowered to 4 KiB, n = 5003)', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    const before = rt.counters.dispatches;
    await checkRelu(rt, 5003);
    expect(rt.counters.dispatches - before).toBe(2 * 5);
  });

  it('reference backward matches central finite differences', () => {
    const x = Float64Array.from(randomArray(40, 9));
    const g = Float64Array.from(randomArray(40, 10));
    expect(Math.min(...x.map(Math.abs))).toBeGreaterThan(1e-4);
    const numeric = numericGradient((v) => dot(reluForwardRef(v), g), x);
    expectClose(reluBackwardRef(g, reluForwardRef(x)), numeric, { atol: 1e-8, rtol: 1e-6 });
  });
});

describe('dropout', () => {
  it.each([
    [1, 0.5, 1, 0],
    [7, 0.3, 2, 5],
    [63, 0.9, 3, 1],
    [1000, 0.5, 4, 0xfffffff0],
    [70001, 0.1, 0xdeadbeef, 123],
  ])('GPU forward/backward and mask match the reference, n=%i p=%f seed=%i offset=%i', async (n, p, seed, offset) =>
    checkDropout(await gpu(), n, p, seed, offset),
  );

  it('the CPU and GPU masks are identical and keep ≈ 1 − p of a large array', async () => {
    const rt = await gpu();
    const n = 1 << 20;
    for (const p of [0.1, 0.5, 0.75]) {
      const mask = await gpuMask(rt, n, p, 42);
      expectSameMask(mask, dropoutMaskRef(n, p, 42), `mask p=${p}`);
      const kept = mask.reduce((a, v) => a + v, 0) / n;
      expect(Math.abs(kept - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    }
  });

  it('p = 0 is the identity, bitwise', async () => {
    const rt = await gpu();
    const xs = randomArray(1001, 77);
    const x = rt.upload(xs);
    const [y, dx] = [dropoutForward(rt, x, 1001, 0, 5), dropoutBackward(rt, x, 1001, 0, 5)];
    expectBitwiseEqual(await rt.readF32(y, 1001), xs, 'y');
    expectBitwiseEqual(await rt.readF32(dx, 1001), xs, 'dx');
    [x, y, dx].forEach((b) => rt.release(b));
  });

  it('same (seed, offset) → same mask; another seed or offset → another mask; counters shift with the offset', async () => {
    const rt = await gpu();
    const n = 4096;
    const base = await gpuMask(rt, n, 0.5, 7, 0);
    expectSameMask(await gpuMask(rt, n, 0.5, 7, 0), base);
    expect(differing(base, await gpuMask(rt, n, 0.5, 8, 0))).toBeGreaterThan(n / 2 - 200);
    expect(differing(base, await gpuMask(rt, n, 0.5, 7, n))).toBeGreaterThan(n / 2 - 200);
    const shifted = await gpuMask(rt, n - 3, 0.5, 7, 3);
    expectSameMask(shifted, base.subarray(3), 'mask at offset 3');
  });

  it('repeated runs are bitwise identical', async () => {
    const rt = await gpu();
    const x = rt.upload(randomArray(5000, 3));
    const [a, b] = [dropoutForward(rt, x, 5000, 0.4, 11, 9), dropoutForward(rt, x, 5000, 0.4, 11, 9)];
    expectBitwiseEqual(await rt.readF32(a, 5000), await rt.readF32(b, 5000));
    [x, a, b].forEach((buf) => rt.release(buf));
  });

  it('continues the counters across chunks over the binding limit (limit 4 KiB, n = 5003)', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    await checkDropout(rt, 5003, 0.3, 99, 17);
  });

  it('rejects p outside [0, 1) and non-u32 seeds', async () => {
    const rt = await gpu();
    const x = rt.alloc(16);
    expect(() => dropoutForward(rt, x, 4, 1, 0)).toThrow(/not in \[0, 1\)/);
    expect(() => dropoutBackward(rt, x, 4, -0.1, 0)).toThrow(/not in \[0, 1\)/);
    expect(() => dropoutForward(rt, x, 4, 0.5, -1)).toThrow(/seed/);
    expect(() => dropoutMaskRef(4, 0.5, 1.5)).toThrow(/seed/);
    rt.release(x);
  });

  it('reference forward and backward match central finite differences', () => {
    const n = 50;
    const x = Float64Array.from(randomArray(n, 12));
    const g = Float64Array.from(randomArray(n, 13));
    const numeric = numericGradient((v) => dot(dropoutForwardRef(v, n, 0.4, 6, 2), g), x);
    expectClose(dropoutBackwardRef(g, n, 0.4, 6, 2), numeric, { atol: 1e-8, rtol: 1e-6 });
    expect(dropoutMaskRef(n, 0.4, 6, 2).some((v) => v === 0)).toBe(true);
  });
});
