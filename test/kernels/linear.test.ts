/** Linear forward and its three gradients against the float64 references; the references against finite differences. */
import { describe, expect, it } from 'vitest';
import {
  linearBackwardBias,
  linearBackwardBiasRef,
  linearBackwardData,
  linearBackwardDataRef,
  linearBackwardWeight,
  linearBackwardWeightRef,
  linearForward,
  linearForwardRef,
  linearSplits,
  type LinearGemmVariant,
  type LinearShape,
} from '../../src/kernels/linear.ts';
import { BindingLimitError } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { dot, numericGradient } from '../helpers/gradcheck.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const shape = (n: number, inFeatures: number, outFeatures: number): LinearShape => ({ n, inFeatures, outFeatures });

/** Runs all four launchers on one shape with one GEMM version and compares each with its reference. */
async function checkLinear(variant: LinearGemmVariant, s: LinearShape, withBias: boolean): Promise<void> {
  const rt = await gpu();
  const seed = s.n * 1000003 + s.inFeatures * 101 + s.outFeatures;
  const xs = randomArray(s.n * s.inFeatures, seed);
  const ws = randomArray(s.outFeatures * s.inFeatures, seed + 1);
  const bs = randomArray(s.outFeatures, seed + 2);
  const dys = randomArray(s.n * s.outFeatures, seed + 3);
  const [x, w, b, dy] = [xs, ws, bs, dys].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  const y = linearForward(rt, x, w, withBias ? b : null, s, variant);
  const dx = linearBackwardData(rt, dy, w, s, variant);
  const dW = linearBackwardWeight(rt, x, dy, s, variant);
  const db = linearBackwardBias(rt, dy, s);
  const tol = (k: number) => ({ atol: 2e-6 * Math.sqrt(k), rtol: 1e-5 });
  expectClose(await rt.readF32(y, s.n * s.outFeatures), linearForwardRef(xs, ws, withBias ? bs : null, s), tol(s.inFeatures), 'y');
  expectClose(await rt.readF32(dx, s.n * s.inFeatures), linearBackwardDataRef(dys, ws, s), tol(s.outFeatures), 'dx');
  expectClose(await rt.readF32(dW, s.outFeatures * s.inFeatures), linearBackwardWeightRef(xs, dys, s), tol(s.n), 'dW');
  expectClose(await rt.readF32(db, s.outFeatures), linearBackwardBiasRef(dys, s), tol(s.n), 'db');
  [x, w, b, dy, y, dx, dW, db].forEach((buf) => rt.release(buf));
}

/** Checks the reference gradients of L = ⟨linear(x, W, b), g⟩ against central differences. */
function checkReferenceGradients(s: LinearShape): void {
  const x = Float64Array.from(randomArray(s.n * s.inFeatures, 11));
  const w = Float64Array.from(randomArray(s.outFeatures * s.inFeatures, 12));
  const b = Float64Array.from(randomArray(s.outFeatures, 13));
  const g = Float64Array.from(randomArray(s.n * s.outFeatures, 14));
  const tol = { atol: 1e-7, rtol: 1e-6 };
  expectClose(linearBackwardDataRef(g, w, s), numericGradient((v) => dot(linearForwardRef(v, w, b, s), g), x), tol, 'dx');
  expectClose(linearBackwardWeightRef(x, g, s), numericGradient((v) => dot(linearForwardRef(x, v, b, s), g), w), tol, 'dW');
  expectClose(linearBackwardBiasRef(g, s), numericGradient((v) => dot(linearForwardRef(x, w, v, s), g), b), tol, 'db');
}

const cases: [LinearShape, boolean][] = [
  [shape(1, 1, 1), true],
  [shape(1, 5, 3), false],
  [shape(5, 7, 3), true],
  [shape(17, 1, 5), true],
  [shape(4, 130, 1), true],
  [shape(2, 33, 17), false],
  [shape(3, 4096, 4), true],
  [shape(16, 4096, 4), true],
  [shape(2, 2000, 3), false],
  [shape(16, 256, 128), true],
  [shape(19, 64, 4), true],
];

describe.each<LinearGemmVariant>(['tiled', 'cols'])('linear, %s GEMM', (variant) => {
  it.each(cases)('forward, dx, dW, db match the reference: %o bias=%s', (s, withBias) => checkLinear(variant, s, withBias));
});

describe('linear', () => {
  it.each([shape(1, 1, 1), shape(2, 3, 4), shape(5, 7, 3), shape(3, 1, 2)])('reference gradients match finite differences: %o', checkReferenceGradients);

  it('splits the 4096-long reduction, releases its partials and stays bitwise repeatable', async () => {
    const rt = await gpu();
    const s = shape(16, 4096, 4);
    expect(linearSplits(rt, s.n, s.outFeatures, s.inFeatures).splits).toBeGreaterThan(1);
    const inUse = rt.poolStats().inUseBytes;
    const x = rt.upload(randomArray(s.n * s.inFeatures, 5));
    const w = rt.upload(randomArray(s.outFeatures * s.inFeatures, 6));
    const b = rt.upload(randomArray(s.outFeatures, 7));
    const runs = [0, 1].map(() => linearForward(rt, x, w, b, s));
    const dWs = [0, 1].map(() => linearBackwardWeight(rt, x, x, shape(s.n, s.inFeatures, s.inFeatures / 64)));
    expectBitwiseEqual(await rt.readF32(runs[0]!, 64), await rt.readF32(runs[1]!, 64), 'y');
    expectBitwiseEqual(await rt.readF32(dWs[0]!, 64 * 4096), await rt.readF32(dWs[1]!, 64 * 4096), 'dW');
    [x, w, b, ...runs, ...dWs].forEach((buf) => rt.release(buf));
    expect(rt.poolStats().inUseBytes, 'split-k partials released').toBe(inUse);
  });

  it('refuses tensors over the binding limit, naming them', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    const x = rt.alloc(3 * 4096 * 4);
    const w = rt.alloc(4 * 4096 * 4);
    expect(() => linearForward(rt, x, w, null, shape(3, 4096, 4))).toThrow(BindingLimitError);
    expect(() => linearForward(rt, x, w, null, shape(3, 4096, 4))).toThrow(/linear input x is 48\.0 KiB/);
    expect(() => linearBackwardWeight(rt, x, x, shape(3, 4096, 4))).toThrow(/linear input x/);
    expect(() => linearForward(rt, x, w, null, shape(0, 4, 4))).toThrow(/n must be a positive integer/);
    rt.release(x);
    rt.release(w);
  });

  it('keeps split-k partials within the binding limit', () => {
    const limits = (maxBindingBytes: number) => ({ maxBindingBytes, maxWorkgroupsPerDimension: 65535 });
    expect(linearSplits(limits(1 << 27), 16, 16, 1000)).toEqual({ splits: 8, kSplit: 128 });
    expect(linearSplits(limits(4096), 16, 16, 1000)).toEqual({ splits: 4, kSplit: 256 });
    expect(linearSplits(limits(1024), 16, 16, 1000).splits).toBe(1);
    expect(linearSplits(limits(1 << 27), 128, 256, 16).splits).toBe(1);
  });
});
