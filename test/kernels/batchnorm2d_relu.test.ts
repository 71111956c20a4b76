/**
 * BatchNorm2d with a fused ReLU (`relu: true` forward, `reluOutput` backward): the GPU kernels
 * against the float64 reference on awkward shapes (train and eval), chunked over the batch, the
 * fused kernels against the unfused pair (batchnorm then relu; reluBackward then batchnorm
 * backward) bit for bit, and the fused reference backward against central finite differences.
 */
import { describe, expect, it } from 'vitest';
import {
  batchNorm2dBackward,
  batchNorm2dBackwardRef,
  batchNorm2dEvalStats,
  batchNorm2dEvalStatsRef,
  batchNorm2dForwardEval,
  batchNorm2dForwardEvalRef,
  batchNorm2dForwardTrain,
  batchNorm2dForwardTrainRef,
  type BatchNormShape,
} from '../../src/kernels/batchnorm2d.ts';
import { reluBackward, reluForward } from '../../src/kernels/relu.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { dot, numericGradient } from '../helpers/gradcheck.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const TOL = { atol: 1e-4, rtol: 1e-4 };
const size = (s: BatchNormShape) => s.n * s.c * s.h * s.w;
const shape = (n: number, c: number, h: number, w: number): BatchNormShape => ({ n, c, h, w });

/** Seeded inputs; β spans ±0.5, so about half of every channel's outputs are clipped. */
function inputs(s: BatchNormShape, seed: number) {
  return {
    x: randomArray(size(s), seed, -1, 1),
    gamma: randomArray(s.c, seed + 1, 0.5, 1.5),
    beta: randomArray(s.c, seed + 2, -0.5, 0.5),
    runningMean: randomArray(s.c, seed + 3, -0.2, 0.2),
    runningVar: randomArray(s.c, seed + 4, 0.5, 1.5),
    dy: randomArray(size(s), seed + 5),
  };
}
type Inputs = ReturnType<typeof inputs>;

/**
 * Train and eval forward + backward on the GPU, fused (`fused`) or as the unfused pair; returns
 * every output read back. Each run starts from fresh running statistics.
 */
async function run(rt: Runtime, s: BatchNormShape, d: Inputs, fused: boolean) {
  const n = size(s);
  const [x, gamma, beta, rm, rv, dy, rm0, rv0] = [d.x, d.gamma, d.beta, d.runningMean, d.runningVar, d.dy, d.runningMean, d.runningVar].map((a) => rt.upload(a)) as GPUBuffer[];
  const owned: GPUBuffer[] = [x!, gamma!, beta!, rm!, rv!, dy!, rm0!, rv0!];
  const keep = (b: GPUBuffer) => (owned.push(b), b);
  /** y = ReLU(BN(x)) and the backward of dy through both, fused or not. */
  const pass = (training: boolean) => {
    let y: GPUBuffer;
    let stats: { mean: GPUBuffer; invStd: GPUBuffer };
    if (training) {
      const out = batchNorm2dForwardTrain(rt, x!, gamma!, beta!, rm!, rv!, s, { relu: fused });
      y = out.y;
      stats = out;
    } else {
      y = batchNorm2dForwardEval(rt, x!, gamma!, beta!, rm0!, rv0!, s, { relu: fused });
      stats = batchNorm2dEvalStats(rt, rm0!, rv0!, s.c);
    }
    [stats.mean, stats.invStd].forEach(keep);
    if (!fused) {
      const bnOut = keep(y);
      y = reluForward(rt, bnOut, n);
    }
    keep(y);
    const g = fused
      ? batchNorm2dBackward(rt, dy!, x!, gamma!, stats.mean, stats.invStd, s, training, y)
      : batchNorm2dBackward(rt, keep(reluBackward(rt, dy!, y, n)), x!, gamma!, stats.mean, stats.invStd, s, training);
    [g.dx, g.dGamma, g.dBeta].forEach(keep);
    return { y, mean: stats.mean, invStd: stats.invStd, ...g };
  };
  const [train, evalMode] = [pass(true), pass(false)];
  const out: Record<string, Float32Array> = {};
  for (const [mode, r] of [['train', train], ['eval', evalMode]] as const) {
    out[`${mode} y`] = await rt.readF32(r.y, n);
    out[`${mode} mean`] = await rt.readF32(r.mean, s.c);
    out[`${mode} invStd`] = await rt.readF32(r.invStd, s.c);
    out[`${mode} dx`] = await rt.readF32(r.dx, n);
    out[`${mode} dGamma`] = await rt.readF32(r.dGamma, s.c);
    out[`${mode} dBeta`] = await rt.readF32(r.dBeta, s.c);
  }
  out['running mean'] = await rt.readF32(rm!, s.c);
  out['running var'] = await rt.readF32(rv!, s.c);
  owned.forEach((b) => rt.release(b));
  return out;
}

/** The fused GPU path against the float64 reference with `relu` / `reluOutput`. */
async function checkShape(rt: Runtime, s: BatchNormShape, seed: number) {
  const d = inputs(s, seed);
  const got = await run(rt, s, d, true);
  const ref = batchNorm2dForwardTrainRef(d.x, d.gamma, d.beta, d.runningMean, d.runningVar, s, { relu: true });
  expectClose(got['train y']!, ref.y, TOL, 'train y');
  expect(got['train y']!.some((v) => v === 0) && got['train y']!.some((v) => v > 0), 'both sides of the ReLU are exercised').toBe(true);
  expectClose(got['running mean']!, ref.runningMean, TOL, 'running mean');
  expectClose(got['running var']!, ref.runningVar, TOL, 'running var');
  // The reference backward takes the GPU's own output as the mask, so a value rounding across 0 cannot flip it.
  const grad = batchNorm2dBackwardRef(d.dy, d.x, d.gamma, got['train mean']!, got['train invStd']!, s, true, got['train y']!);
  expectClose(got['train dx']!, grad.dx, TOL, 'train dx');
  expectClose(got['train dGamma']!, grad.dGamma, TOL, 'train dGamma');
  expectClose(got['train dBeta']!, grad.dBeta, TOL, 'train dBeta');
  expectClose(got['eval y']!, batchNorm2dForwardEvalRef(d.x, d.gamma, d.beta, d.runningMean, d.runningVar, s, { relu: true }), TOL, 'eval y');
  const stats = batchNorm2dEvalStatsRef(d.runningMean, d.runningVar, s.c);
  const evalGrad = batchNorm2dBackwardRef(d.dy, d.x, d.gamma, stats.mean, stats.invStd, s, false, got['eval y']!);
  expectClose(got['eval dx']!, evalGrad.dx, TOL, 'eval dx');
  expectClose(got['eval dGamma']!, evalGrad.dGamma, TOL, 'eval dGamma');
  expectClose(got['eval dBeta']!, evalGrad.dBeta, TOL, 'eval dBeta');
  return got;
}

/** Fused and unfused GPU paths give the same bits (ReLU and its mask are exact). */
async function checkSameBits(rt: Runtime, s: BatchNormShape, seed: number) {
  const d = inputs(s, seed);
  const [fused, unfused] = [await run(rt, s, d, true), await run(rt, s, d, false)];
  for (const key of Object.keys(fused)) expectBitwiseEqual(fused[key]!, unfused[key]!, `fused vs unfused ${key}`);
}

const SHAPES = [
  ['odd 7×9 (f32 loads)', shape(2, 3, 7, 9)],
  ['batch 1', shape(1, 4, 5, 6)],
  ['one channel, vec4 loads', shape(3, 1, 8, 8)],
  ['1×1 spatial, many channels', shape(5, 37, 1, 1)],
  ['planes of several tiles, f32 loads', shape(2, 2, 65, 67)],
  ['planes of several tiles, vec4 loads', shape(2, 2, 64, 72)],
] as const;

describe('batchNorm2d + ReLU fused: GPU vs float64 reference (train/eval forward, backward)', () => {
  it.each(SHAPES)('%s %o', async (_name, s) => {
    await checkShape(await gpu(), s, 13 * size(s));
  });
});

describe('batchNorm2d + ReLU fused vs batchNorm2d then relu: bitwise identical', () => {
  it.each(SHAPES)('%s %o', async (_name, s) => {
    await checkSameBits(await gpu(), s, 7 * size(s));
  });

  it.each([
    ['unaligned samples of 189 floats: chunks of 5, 5, 1', shape(11, 3, 7, 9)],
    ['vec4 samples of 44 floats at unaligned starts', shape(45, 1, 4, 11)],
  ] as const)('over the binding limit (4 KiB), chunked: %s', async (_name, s) => {
    const small = await gpu({ maxBindingBytes: 4096 });
    const chunked = await checkShape(small, s, 3);
    await checkSameBits(small, s, 3);
    const whole = await run(await gpu(), s, inputs(s, 3), true);
    for (const key of Object.keys(whole)) expectBitwiseEqual(chunked[key]!, whole[key]!, `chunked ${key}`);
  });
});

describe('batchNorm2d + ReLU fused: reference backward vs central finite differences (float64)', () => {
  type Param = 'x' | 'gamma' | 'beta';
  const check = (s: BatchNormShape, training: boolean, wrt: Param) => {
    const d = inputs(s, 23 * size(s) + s.c);
    const x = Float64Array.from(d.x);
    const gamma = Float64Array.from(d.gamma);
    const beta = Float64Array.from(d.beta);
    const g = Float64Array.from(d.dy);
    const forward = (xs: Float64Array, gs: Float64Array, bs: Float64Array) =>
      training
        ? batchNorm2dForwardTrainRef(xs, gs, bs, d.runningMean, d.runningVar, s, { relu: true }).y
        : batchNorm2dForwardEvalRef(xs, gs, bs, d.runningMean, d.runningVar, s, { relu: true });
    const loss = {
      x: (v: Float64Array) => dot(forward(v, gamma, beta), g),
      gamma: (v: Float64Array) => dot(forward(x, v, beta), g),
      beta: (v: Float64Array) => dot(forward(x, gamma, v), g),
    }[wrt];
    const y = forward(x, gamma, beta);
    // Finite differences are wrong at ReLU's kink: no output may sit within the step of 0.
    expect(Math.min(...Array.from(y, (v) => (v === 0 ? Infinity : Math.abs(v))))).toBeGreaterThan(1e-4);
    const stats = training ? batchNorm2dForwardTrainRef(x, gamma, beta, d.runningMean, d.runningVar, s) : batchNorm2dEvalStatsRef(d.runningMean, d.runningVar, s.c);
    const grad = batchNorm2dBackwardRef(g, x, gamma, stats.mean, stats.invStd, s, training, y);
    const analytic = { x: grad.dx, gamma: grad.dGamma, beta: grad.dBeta }[wrt];
    expectClose(analytic, numericGradient(loss, { x, gamma, beta }[wrt].slice()), { atol: 1e-6, rtol: 1e-5 }, `d${wrt}`);
  };
  const shapes = [shape(2, 3, 3, 2), shape(1, 2, 2, 3), shape(4, 2, 1, 1)];
  it.each(shapes.flatMap((s) => [true, false].flatMap((training) => (['x', 'gamma', 'beta'] as const).map((wrt) => [s, training, wrt] as const))))(
    'shape %o training=%s d%s',
    (s, training, wrt) => check(s, training, wrt),
  );
});
