/**
 * BatchNorm2d: GPU kernels against the float64 reference (train/eval forward, running stats,
 * backward in both modes) on awkward shapes, chunking over the batch with a lowered binding
 * limit, bitwise repeatability, and the reference backward against central finite differences.
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
import { BindingLimitError, type Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { dot, numericGradient } from '../helpers/gradcheck.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const TOL = { atol: 1e-4, rtol: 1e-4 };
const size = (s: BatchNormShape) => s.n * s.c * s.h * s.w;

interface Inputs {
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
  dy: Float32Array;
}

/** Seeded inputs; x uniform in [center − 1, center + 1). */
function inputs(s: BatchNormShape, seed: number, center = 0): Inputs {
  return {
    x: randomArray(size(s), seed, center - 1, center + 1),
    gamma: randomArray(s.c, seed + 1, 0.5, 1.5),
    beta: randomArray(s.c, seed + 2, -0.5, 0.5),
    runningMean: randomArray(s.c, seed + 3, -0.2, 0.2),
    runningVar: randomArray(s.c, seed + 4, 0.5, 1.5),
    dy: randomArray(size(s), seed + 5),
  };
}

/** Everything the GPU computes for one shape: train forward + backward, eval stats + forward + backward. */
async function runAll(rt: Runtime, s: BatchNormShape, d: Inputs) {
  const up = (a: Float32Array) => rt.upload(a);
  const [x, gamma, beta, rm, rv, dy] = [d.x, d.gamma, d.beta, d.runningMean, d.runningVar, d.dy].map(up) as GPUBuffer[] & { length: 6 };
  const [rm0, rv0] = [up(d.runningMean), up(d.runningVar)];
  const train = batchNorm2dForwardTrain(rt, x!, gamma!, beta!, rm!, rv!, s);
  const trainGrad = batchNorm2dBackward(rt, dy!, x!, gamma!, train.mean, train.invStd, s, true);
  const evalY = batchNorm2dForwardEval(rt, x!, gamma!, beta!, rm0, rv0, s);
  const evalStats = batchNorm2dEvalStats(rt, rm0, rv0, s.c);
  const evalGrad = batchNorm2dBackward(rt, dy!, x!, gamma!, evalStats.mean, evalStats.invStd, s, false);
  const n = size(s);
  const read = (b: GPUBuffer, len: number) => rt.readF32(b, len);
  const out = {
    y: await read(train.y, n),
    mean: await read(train.mean, s.c),
    invStd: await read(train.invStd, s.c),
    runningMean: await read(rm!, s.c),
    runningVar: await read(rv!, s.c),
    dx: await read(trainGrad.dx, n),
    dGamma: await read(trainGrad.dGamma, s.c),
    dBeta: await read(trainGrad.dBeta, s.c),
    evalY: await read(evalY, n),
    evalMean: await read(evalStats.mean, s.c),
    evalInvStd: await read(evalStats.invStd, s.c),
    evalDx: await read(evalGrad.dx, n),
    evalDGamma: await read(evalGrad.dGamma, s.c),
    evalDBeta: await read(evalGrad.dBeta, s.c),
  };
  const owned = [x, gamma, beta, rm, rv, dy, rm0, rv0, train.y, train.mean, train.invStd, evalY, evalStats.mean, evalStats.invStd];
  for (const b of [...owned, ...Object.values(trainGrad), ...Object.values(evalGrad)]) rt.release(b!);
  return out;
}

/** Runs every GPU op on `s` and checks each output against the float64 reference. */
async function checkShape(rt: Runtime, s: BatchNormShape, seed: number, center = 0) {
  const d = inputs(s, seed, center);
  const got = await runAll(rt, s, d);
  const ref = batchNorm2dForwardTrainRef(d.x, d.gamma, d.beta, d.runningMean, d.runningVar, s);
  expectClose(got.y, ref.y, TOL, 'train y');
  expectClose(got.mean, ref.mean, TOL, 'train mean');
  expectClose(got.invStd, ref.invStd, TOL, 'train invStd');
  expectClose(got.runningMean, ref.runningMean, TOL, 'running mean');
  expectClose(got.runningVar, ref.runningVar, TOL, 'running var');
  const grad = batchNorm2dBackwardRef(d.dy, d.x, d.gamma, got.mean, got.invStd, s, true);
  expectClose(got.dx, grad.dx, TOL, 'train dx');
  expectClose(got.dGamma, grad.dGamma, TOL, 'train dGamma');
  expectClose(got.dBeta, grad.dBeta, TOL, 'train dBeta');
  const stats = batchNorm2dEvalStatsRef(d.runningMean, d.runningVar, s.c);
  expectClose(got.evalMean, stats.mean, TOL, 'eval mean');
  expectClose(got.evalInvStd, stats.invStd, TOL, 'eval invStd');
  expectClose(got.evalY, batchNorm2dForwardEvalRef(d.x, d.gamma, d.beta, d.runningMean, d.runningVar, s), TOL, 'eval y');
  const evalGrad = batchNorm2dBackwardRef(d.dy, d.x, d.gamma, stats.mean, stats.invStd, s, false);
  expectClose(got.evalDx, evalGrad.dx, TOL, 'eval dx');
  expectClose(got.evalDGamma, evalGrad.dGamma, TOL, 'eval dGamma');
  expectClose(got.evalDBeta, evalGrad.dBeta, TOL, 'eval dBeta');
  return got;
}

const shape = (n: number, c: number, h: number, w: number): BatchNormShape => ({ n, c, h, w });

describe('batchNorm2d GPU vs float64 reference (train/eval forward, running stats, backward)', () => {
  it.each([
    ['odd 7×9', shape(2, 3, 7, 9), 0],
    ['batch 1 (m = H·W)', shape(1, 4, 5, 6), 0],
    ['one channel, vec4 loads', shape(3, 1, 8, 8), 0],
    ['1×1 spatial, many channels', shape(5, 37, 1, 1), 0],
    ['planes of several tiles, f32 loads', shape(2, 2, 65, 67), 0],
    ['planes of several tiles, vec4 loads', shape(2, 2, 64, 72), 0],
    ['mean 1000 (naive E[x²] − E[x]² fails), f32 loads', shape(4, 3, 17, 19), 1000],
    ['mean 1000, vec4 loads', shape(3, 2, 12, 20), 1000],
  ] as const)('%s %o', async (_name, s, center) => {
    await checkShape(await gpu(), s, 11 * size(s), center);
  });

  it('running stats use the unbiased variance (hand-computed: x = 1,2,3,4)', async () => {
    const rt = await gpu();
    const s = shape(1, 1, 2, 2);
    const x = rt.upload(new Float32Array([1, 2, 3, 4]));
    const [gamma, rv] = [0, 1].map(() => rt.upload(new Float32Array([1])));
    const [beta, rm] = [0, 1].map(() => rt.upload(new Float32Array([0])));
    const out = batchNorm2dForwardTrain(rt, x, gamma!, beta!, rm!, rv!, s);
    const expected = { mean: 2.5, invStd: 1 / Math.sqrt(1.25 + 1e-5), rm: 0.25, rv: 0.9 + 0.1 * (5 / 3) };
    const ref = batchNorm2dForwardTrainRef([1, 2, 3, 4], [1], [0], [0], [1], s);
    expectClose([ref.mean[0]!, ref.invStd[0]!, ref.runningMean[0]!, ref.runningVar[0]!], Object.values(expected), { atol: 1e-12, rtol: 1e-12 });
    const got = [out.mean, out.invStd, rm!, rv!].map((b) => rt.readF32(b, 1));
    expectClose((await Promise.all(got)).map((a) => a[0]!), Object.values(expected), { atol: 1e-6, rtol: 1e-6 });
    for (const b of [x, gamma!, beta!, rm!, rv!, out.y, out.mean, out.invStd]) rt.release(b);
  });

  it('training refuses one value per channel, as PyTorch does', async () => {
    const rt = await gpu();
    const b = rt.alloc(16);
    expect(() => batchNorm2dForwardTrain(rt, b, b, b, b, b, shape(1, 1, 1, 1))).toThrow(/more than one value per channel/);
    rt.release(b);
  });

  it('repeated runs are bitwise identical', async () => {
    const rt = await gpu();
    for (const s of [shape(3, 2, 65, 67), shape(3, 2, 64, 72)]) {
      const d = inputs(s, 5);
      const [a, b] = [await runAll(rt, s, d), await runAll(rt, s, d)];
      for (const key of Object.keys(a) as (keyof typeof a)[]) expectBitwiseEqual(a[key], b[key], key);
    }
  });
});

describe('batchNorm2d over the binding limit (lowered to 4 KiB): chunks over the batch', () => {
  it.each([
    ['unaligned samples of 189 floats: chunks of 5, 5, 1', shape(11, 3, 7, 9), 3],
    ['aligned samples of 256 floats: chunks of 4, 1', shape(5, 2, 8, 16), 2],
    ['vec4 samples of 44 floats: chunks of 21, 21, 3 at unaligned starts', shape(45, 1, 4, 11), 3],
  ] as const)('%s', async (_name, s, chunks) => {
    const small = await gpu({ maxBindingBytes: 4096 });
    const before = small.counters.dispatches;
    const chunked = await checkShape(small, s, 3);
    // train fwd: stats + normalize per chunk, finalize; 2 bwd: partial + dx per chunk, finalize; eval fwd: stats, normalize per chunk; eval stats
    expect(small.counters.dispatches - before).toBe(2 * chunks + 1 + 2 * (2 * chunks + 1) + (1 + chunks) + 1);
    const whole = await runAll(await gpu(), s, inputs(s, 3));
    for (const key of Object.keys(whole) as (keyof typeof whole)[]) expectBitwiseEqual(chunked[key], whole[key], `chunked ${key}`);
  });

  it('refuses a single sample larger than one binding with a BindingLimitError', async () => {
    const small = await gpu({ maxBindingBytes: 4096 });
    const s = shape(2, 2, 32, 32);
    const b = small.alloc(size(s) * 4);
    expect(() => batchNorm2dForwardTrain(small, b, b, b, b, b, s)).toThrow(BindingLimitError);
    expect(() => batchNorm2dForwardEval(small, b, b, b, b, b, s)).toThrow(/BatchNorm2d input sample \(2×32×32/);
    small.release(b);
  });
});

describe('batchNorm2d reference backward vs central finite differences (float64)', () => {
  type Param = 'x' | 'gamma' | 'beta';
  const check = (s: BatchNormShape, training: boolean, wrt: Param) => {
    const d = inputs(s, 21 * size(s) + s.c);
    const x = Float64Array.from(d.x);
    const gamma = Float64Array.from(d.gamma);
    const beta = Float64Array.from(d.beta);
    const g = Float64Array.from(d.dy);
    const forward = (xs: Float64Array, gs: Float64Array, bs: Float64Array) =>
      training
        ? batchNorm2dForwardTrainRef(xs, gs, bs, d.runningMean, d.runningVar, s).y
        : batchNorm2dForwardEvalRef(xs, gs, bs, d.runningMean, d.runningVar, s);
    const loss = {
      x: (v: Float64Array) => dot(forward(v, gamma, beta), g),
      gamma: (v: Float64Array) => dot(forward(x, v, beta), g),
      beta: (v: Float64Array) => dot(forward(x, gamma, v), g),
    }[wrt];
    const stats = training ? batchNorm2dForwardTrainRef(x, gamma, beta, d.runningMean, d.runningVar, s) : batchNorm2dEvalStatsRef(d.runningMean, d.runningVar, s.c);
    const grad = batchNorm2dBackwardRef(g, x, gamma, stats.mean, stats.invStd, s, training);
    const analytic = { x: grad.dx, gamma: grad.dGamma, beta: grad.dBeta }[wrt];
    expectClose(analytic, numericGradient(loss, { x, gamma, beta }[wrt].slice()), { atol: 1e-6, rtol: 1e-5 }, `d${wrt}`);
  };
  const shapes = [shape(2, 3, 3, 2), shape(1, 2, 2, 3), shape(4, 2, 1, 1)];
  it.each(shapes.flatMap((s) => [true, false].flatMap((training) => (['x', 'gamma', 'beta'] as const).map((wrt) => [s, training, wrt] as const))))(
    'shape %o training=%s d%s',
    (s, training, wrt) => check(s, training, wrt),
  );
});
