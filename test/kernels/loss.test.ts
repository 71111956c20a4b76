/**
 * Log-softmax, NLL loss (plain and label-smoothed) and the fused backward against the float64
 * references; the backward reference against finite differences.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  logSoftmaxForward,
  logSoftmaxForwardRef,
  logSoftmaxNllBackward,
  logSoftmaxNllBackwardRef,
  nllLossForward,
  nllLossForwardRef,
  type ClassShape,
} from '../../src/kernels/log_softmax_nll.ts';
import { BindingLimitError } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { numericGradient } from '../helpers/gradcheck.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray, rng } from '../helpers/random.ts';

function targetsFor(s: ClassShape, seed: number): Uint32Array {
  const next = rng(seed);
  return Uint32Array.from({ length: s.n }, () => Math.floor(next() * s.classes));
}

/** Logits in [−scale, scale), plus ±1000 spikes when `spikes` is set. */
function logitsFor(s: ClassShape, scale: number, spikes: boolean): Float32Array {
  const z = randomArray(s.n * s.classes, s.n * 31 + s.classes, -scale, scale);
  if (spikes) z.forEach((_, k) => (z[k] = k % 3 === 0 ? 1000 : k % 3 === 1 ? -1000 : (z[k] as number)));
  return z;
}

/** Forward, loss and fused backward on the GPU against the references, twice for bitwise repeatability. */
async function checkHead(s: ClassShape, scale: number, spikes: boolean, dLoss: number, smoothing = 0): Promise<void> {
  const rt = await gpu();
  const inUse = rt.poolStats().inUseBytes;
  const zs = logitsFor(s, scale, spikes);
  const ts = targetsFor(s, s.n + s.classes);
  const z = rt.upload(zs);
  const t = rt.upload(ts);
  const logp = logSoftmaxForward(rt, z, s);
  const loss = [nllLossForward(rt, logp, t, s, smoothing), nllLossForward(rt, logp, t, s, smoothing)];
  const dz = [logSoftmaxNllBackward(rt, logp, t, s, dLoss, smoothing), logSoftmaxNllBackward(rt, logp, t, s, dLoss, smoothing)];
  const logpGpu = await rt.readF32(logp, s.n * s.classes);
  const logpRef = logSoftmaxForwardRef(zs, s);
  expect(logpGpu.every(Number.isFinite), 'logp finite').toBe(true);
  expectClose(logpGpu, logpRef, { atol: 2e-6, rtol: 1e-6 }, 'logp');
  const [l0, l1] = [await rt.readF32(loss[0]!, 1), await rt.readF32(loss[1]!, 1)];
  // Smoothing sums every class's logp: with ±1000 spikes the row sum reaches ~1e3·classes, so the
  // float32 sum's rounding scales with it.
  const lossAtol = smoothing && spikes ? 2e-6 * 1000 * s.classes : 2e-6;
  expectClose(l0, nllLossForwardRef(logpRef, ts, s, smoothing), { atol: lossAtol, rtol: 1e-6 }, 'loss');
  expectBitwiseEqual(l0, l1, 'loss');
  const [d0, d1] = [await rt.readF32(dz[0]!, s.n * s.classes), await rt.readF32(dz[1]!, s.n * s.classes)];
  expectClose(d0, logSoftmaxNllBackwardRef(logpRef, ts, s, dLoss, smoothing), { atol: 1e-7, rtol: 1e-5 }, 'dz');
  expectBitwiseEqual(d0, d1, 'dz');
  [z, t, logp, ...loss, ...dz].forEach((buf) => rt.release(buf));
  expect(rt.poolStats().inUseBytes, 'temporaries released').toBe(inUse);
}

/** The fused backward reference against central differences of dLoss·NLL(log_softmax(z)), optionally label-smoothed. */
function checkReferenceGradient(s: ClassShape, dLoss: number, smoothing = 0): void {
  const z = Float64Array.from(logitsFor(s, 3, false));
  const t = targetsFor(s, 7 * s.n + s.classes);
  const loss = (v: Float64Array) => dLoss * (nllLossForwardRef(logSoftmaxForwardRef(v, s), t, s, smoothing)[0] as number);
  const analytic = logSoftmaxNllBackwardRef(logSoftmaxForwardRef(z, s), t, s, dLoss, smoothing);
  expectClose(analytic, numericGradient(loss, z), { atol: 1e-8, rtol: 1e-6 }, 'dz');
}

const cls = (n: number, classes: number): ClassShape => ({ n, classes });

describe('log-softmax and NLL loss', () => {
  it.each([
    [cls(1, 1), 4, false, 1],
    [cls(1, 4), 4, false, 1],
    [cls(16, 4), 4, false, 1],
    [cls(5, 7), 10, false, 0.37],
    [cls(3, 1000), 20, false, 1],
    [cls(130, 3), 2, false, -2],
    [cls(16, 4), 0, true, 1],
    [cls(9, 5), 50, true, 1],
  ])('forward, loss and fused backward match the reference: %o scale=%s spikes=%s dLoss=%s', checkHead);

  it.each([
    [cls(1, 1), 1],
    [cls(1, 4), 1],
    [cls(3, 2), 0.5],
    [cls(4, 5), 1.7],
  ])('fused backward reference matches finite differences: %o dLoss=%s', checkReferenceGradient);

  it.each([
    [cls(1, 4), 4, false, 1, 0.1],
    [cls(16, 4), 4, false, 1, 0.1],
    [cls(5, 7), 10, false, 0.37, 0.25],
    [cls(3, 1000), 20, false, 1, 0.05],
    [cls(130, 3), 2, false, -2, 0.9],
    [cls(9, 5), 50, true, 1, 0.1],
  ])('label-smoothed loss and fused backward match the reference: %o scale=%s spikes=%s dLoss=%s smoothing=%s', checkHead);

  it.each([
    [cls(1, 4), 1, 0.1],
    [cls(3, 2), 0.5, 0.3],
    [cls(4, 5), 1.7, 0.99],
  ])('label-smoothed backward reference matches finite differences: %o dLoss=%s smoothing=%s', checkReferenceGradient);

  it('label-smoothed loss and gradient match torch\'s cross_entropy(label_smoothing=ε) (fixture from tools/make-loss-golden.py)', async () => {
    const rt = await gpu();
    const fixture = JSON.parse(readFileSync(new URL('../fixtures/label-smoothing-torch.json', import.meta.url), 'utf8')) as {
      cases: { n: number; classes: number; smoothing: number; logits: number[]; targets: number[]; loss: number; grad: number[] }[];
    };
    expect(fixture.cases.length).toBeGreaterThan(0);
    for (const c of fixture.cases) {
      const s = cls(c.n, c.classes);
      const z = rt.upload(Float32Array.from(c.logits));
      const t = rt.upload(Uint32Array.from(c.targets));
      const logp = logSoftmaxForward(rt, z, s);
      const loss = nllLossForward(rt, logp, t, s, c.smoothing);
      const dz = logSoftmaxNllBackward(rt, logp, t, s, 1, c.smoothing);
      expectClose(await rt.readF32(loss, 1), [c.loss], { atol: 1e-5, rtol: 1e-5 }, `loss, ${JSON.stringify(s)} ε=${c.smoothing}`);
      expectClose(await rt.readF32(dz, c.n * c.classes), c.grad, { atol: 1e-6, rtol: 1e-5 }, `dz, ${JSON.stringify(s)} ε=${c.smoothing}`);
      [z, t, logp, loss, dz].forEach((buf) => rt.release(buf));
    }
  });

  it('label smoothing ε: the loss is (1 − ε)·NLL + ε·mean of −logp over classes; an explicit 0 equals the default; outside [0, 1) refused', async () => {
    const rt = await gpu();
    const s = cls(6, 4);
    const ts = targetsFor(s, 3);
    const z = rt.upload(logitsFor(s, 5, false));
    const t = rt.upload(ts);
    const logp = logSoftmaxForward(rt, z, s);
    const logpValues = await rt.readF32(logp, s.n * s.classes);
    const plainNll = nllLossForwardRef(logpValues, ts, s)[0] as number;
    const meanNegLogp = -logpValues.reduce((a, v) => a + v, 0) / (s.n * s.classes);
    const smoothed = nllLossForward(rt, logp, t, s, 0.2);
    expect((await rt.readF32(smoothed, 1))[0]).toBeCloseTo(0.8 * plainNll + 0.2 * meanNegLogp, 5);
    const [plain, zero] = [nllLossForward(rt, logp, t, s), nllLossForward(rt, logp, t, s, 0)];
    expectBitwiseEqual(await rt.readF32(zero, 1), await rt.readF32(plain, 1), 'loss at ε = 0');
    const [dPlain, dZero] = [logSoftmaxNllBackward(rt, logp, t, s), logSoftmaxNllBackward(rt, logp, t, s, 1, 0)];
    expectBitwiseEqual(await rt.readF32(dZero, 24), await rt.readF32(dPlain, 24), 'dz at ε = 0');
    for (const bad of [-0.1, 1, NaN]) {
      expect(() => nllLossForward(rt, logp, t, s, bad)).toThrow(/label smoothing must be in \[0, 1\)/);
      expect(() => logSoftmaxNllBackward(rt, logp, t, s, 1, bad)).toThrow(/label smoothing must be in \[0, 1\)/);
    }
    [z, t, logp, smoothed, plain, zero, dPlain, dZero].forEach((buf) => rt.release(buf));
  });

  it('gives NaN for a target outside the classes', async () => {
    const rt = await gpu();
    const s = cls(3, 4);
    const z = rt.upload(randomArray(12, 1));
    const t = rt.upload(Uint32Array.of(0, 4, 1));
    const logp = logSoftmaxForward(rt, z, s);
    const loss = nllLossForward(rt, logp, t, s);
    const dz = logSoftmaxNllBackward(rt, logp, t, s);
    expect(Number.isNaN((await rt.readF32(loss, 1))[0])).toBe(true);
    const grad = await rt.readF32(dz, 12);
    expect([...grad].map(Number.isNaN)).toEqual([false, false, false, false, true, true, true, true, false, false, false, false]);
    expect(Number.isNaN(nllLossForwardRef(new Float64Array(12), [0, 4, 1], s)[0])).toBe(true);
    [z, t, logp, loss, dz].forEach((buf) => rt.release(buf));
  });

  it('refuses logits over the binding limit, naming them', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    const z = rt.alloc(2000 * 4);
    expect(() => logSoftmaxForward(rt, z, cls(500, 4))).toThrow(BindingLimitError);
    expect(() => logSoftmaxForward(rt, z, cls(500, 4))).toThrow(/log-softmax logits \[500, 4\] is 7\.8 KiB/);
    expect(() => logSoftmaxForward(rt, z, cls(4, 0))).toThrow(/classes must be a positive integer/);
    rt.release(z);
  });
});
