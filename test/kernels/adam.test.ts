/** Adam on the GPU against the float64 reference of torch.optim.Adam's formula, over several steps. */
import { describe, expect, it } from 'vitest';
import { adamStep, adamStepRef, type AdamOptions } from '../../src/kernels/adam.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

type Hyper = Omit<AdamOptions, 'step'>;

/**
 * Gradients with |g| in [0.25, 0.5] and random signs: with params in [−2, 2] and weight decay
 * ≤ 0.1, g + wd·param stays away from 0, where f32 rounding of the sum alone would decide the step.
 */
function gradFor(n: number, seed: number): Float32Array {
  const sign = randomArray(n, seed + 1);
  return randomArray(n, seed, 0.25, 0.5).map((g, i) => ((sign[i] as number) < 0 ? -g : g));
}

/** Runs `steps` Adam steps from step `first` on GPU and in float64; returns the GPU param, m, v. */
async function runAdam(rt: Runtime, n: number, hyper: Hyper, steps: number, first = 1): Promise<Float32Array[]> {
  const p0 = randomArray(n, n + 1, -2, 2);
  const param = rt.upload(p0);
  const m = rt.upload(new Float32Array(n));
  const v = rt.upload(new Float32Array(n));
  const ref = { param: Float64Array.from(p0), m: new Float64Array(n), v: new Float64Array(n) };
  for (let step = first; step < first + steps; step++) {
    const g = gradFor(n, 1000 * step + n);
    const grad = rt.upload(g);
    adamStep(rt, param, grad, m, v, n, { ...hyper, step });
    adamStepRef(ref.param, g, ref.m, ref.v, n, { ...hyper, step });
    rt.release(grad);
  }
  const out = [await rt.readF32(param, n), await rt.readF32(m, n), await rt.readF32(v, n)];
  expectClose(out[0]!, ref.param, { atol: 1e-7, rtol: 1e-6 }, 'param');
  expectClose(out[1]!, ref.m, { atol: 3e-8, rtol: 1e-6 }, 'm');
  expectClose(out[2]!, ref.v, { atol: 1e-12, rtol: 1e-6 }, 'v');
  const moved = out[0]!.reduce((acc, w, i) => Math.max(acc, Math.abs(w - (p0[i] as number))), 0);
  expect(moved, 'the parameters moved').toBeGreaterThan(hyper.lr * 0.5);
  [param, m, v].forEach((buf) => rt.release(buf));
  return out;
}

describe('adam', () => {
  it.each<[number, Hyper, number, number]>([
    [1, { lr: 1e-3 }, 5, 1],
    [7, { lr: 0.1 }, 4, 1],
    [1000, { lr: 0.01, weightDecay: 0.01 }, 5, 1],
    [70001, { lr: 1e-3, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 }, 3, 1],
    [513, { lr: 0.05, eps: 1e-3 }, 3, 100],
  ])('matches the float64 reference: n=%i %o, %i steps from step %i', async (n, hyper, steps, first) => {
    await runAdam(await gpu(), n, hyper, steps, first);
  });

  it('chunks over elements under a lowered binding limit (4 KiB: 5 dispatches for 5000)', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    const before = rt.counters.dispatches;
    await runAdam(rt, 5000, { lr: 0.01, weightDecay: 0.05 }, 2);
    expect(rt.counters.dispatches - before).toBe(10);
  });

  it('is bitwise repeatable', async () => {
    const rt = await gpu();
    const [a, b] = [await runAdam(rt, 3001, { lr: 0.01 }, 3), await runAdam(rt, 3001, { lr: 0.01 }, 3)];
    a!.forEach((arr, k) => expectBitwiseEqual(arr, b![k]!, ['param', 'm', 'v'][k]));
  });

  it('rejects invalid hyper-parameters', async () => {
    const rt = await gpu();
    const x = rt.alloc(16);
    expect(() => adamStep(rt, x, x, x, x, 4, { lr: 1e-3, step: 0 })).toThrow(/step must be an integer ≥ 1/);
    expect(() => adamStep(rt, x, x, x, x, 4, { lr: 1e-3, beta1: 1, step: 1 })).toThrow(/betas/);
    rt.release(x);
  });
});
