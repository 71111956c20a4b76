import { describe, expect, it } from 'vitest';
import { conv2dBackwardBiasRef, conv2dBackwardWeightRef, conv2dForwardRef } from '../../src/kernels/conv2d_ref.ts';
import { conv2dOutputSize, type Conv2dShape } from '../../src/kernels/conv2d_shape.ts';
import {
  chooseConv2dWeightGradVariant,
  CONV2D_WEIGHT_GRAD_VARIANTS,
  conv2dBackwardBias,
  conv2dBackwardWeight,
  conv2dWeightGradSupports,
  type Conv2dWeightGradVariant,
} from '../../src/kernels/conv2d_weight_grad.ts';
import { hasSubgroupsOf8 } from '../../src/kernels/conv2d_direct.ts';
import { isCpuAdapter } from '../../src/kernels/conv2d_forward.ts';
import { BindingLimitError, type Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { dot, numericGradient } from '../helpers/gradcheck.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

/** n, cIn, h, w, cOut, kernel (kh, kw), stride, pad. */
function shape(n: number, cIn: number, h: number, w: number, cOut: number, k: number | [number, number], stride = 1, pad = 0): Conv2dShape {
  const [kh, kw] = typeof k === 'number' ? [k, k] : k;
  return { n, cIn, h, w, cOut, kh, kw, stride, pad };
}

function inputs(s: Conv2dShape, seed: number) {
  const { ho, wo } = conv2dOutputSize(s);
  return { xs: randomArray(s.n * s.cIn * s.h * s.w, seed), dys: randomArray(s.n * s.cOut * ho * wo, seed + 1) };
}

/** Tolerance for sums of n·ho·wo products of values in [-1, 1). */
function tolerance(s: Conv2dShape) {
  const { ho, wo } = conv2dOutputSize(s);
  return { atol: 1e-4 * Math.sqrt(s.n * ho * wo), rtol: 1e-4 };
}

async function runDW(rt: Runtime, s: Conv2dShape, xs: Float32Array, dys: Float32Array, variant?: Conv2dWeightGradVariant) {
  const x = rt.upload(xs);
  const dy = rt.upload(dys);
  const dW = conv2dBackwardWeight(rt, x, dy, s, { variant });
  const out = await rt.readF32(dW, s.cOut * s.cIn * s.kh * s.kw);
  [x, dy, dW].forEach((b) => rt.release(b));
  return out;
}

async function runDB(rt: Runtime, s: Conv2dShape, dys: Float32Array) {
  const dy = rt.upload(dys);
  const db = conv2dBackwardBias(rt, dy, s);
  const out = await rt.readF32(db, s.cOut);
  [dy, db].forEach((b) => rt.release(b));
  return out;
}

async function checkDW(variant: Conv2dWeightGradVariant, s: Conv2dShape, rt?: Runtime): Promise<void> {
  expect(conv2dWeightGradSupports(variant, s)).toBe(true);
  const { xs, dys } = inputs(s, s.n * 31 + s.cIn * 7 + s.h);
  const got = await runDW(rt ?? (await gpu()), s, xs, dys, variant);
  expectClose(got, conv2dBackwardWeightRef(xs, dys, s), tolerance(s), `dW ${variant} ${JSON.stringify(s)}`);
}

async function checkDB(s: Conv2dShape, rt?: Runtime): Promise<void> {
  const { dys } = inputs(s, s.cOut + 5);
  expectClose(await runDB(rt ?? (await gpu()), s, dys), conv2dBackwardBiasRef(dys, s), tolerance(s), `db ${JSON.stringify(s)}`);
}

// The shapes with 43 input channels (and the 1×1 one with 33×35 pixels) give each stream
// several tasks and leave the last stream group part-empty.
const dwCases: [Conv2dWeightGradVariant, Conv2dShape][] = [
  ['3x3s1p1', shape(1, 1, 7, 9, 1, 3, 1, 1)],
  ['3x3s1p1', shape(2, 5, 7, 9, 11, 3, 1, 1)],
  ['3x3s1p1', shape(3, 3, 37, 20, 17, 3, 1, 1)],
  ['3x3s1p1', shape(1, 2, 1, 1, 3, 3, 1, 1)],
  ['3x3s1p1', shape(2, 43, 19, 21, 17, 3, 1, 1)],
  ['2x2s2', shape(2, 3, 9, 7, 9, 2, 2, 0)],
  ['2x2s2', shape(1, 1, 5, 5, 1, 2, 2, 0)],
  ['2x2s2', shape(2, 6, 37, 21, 10, 2, 2, 0)],
  ['2x2s2', shape(2, 43, 41, 67, 17, 2, 2, 0)],
  ['1x1', shape(3, 19, 33, 35, 1, 1)],
  ['1x1', shape(1, 1, 7, 9, 1, 1)],
  ['1x1', shape(2, 11, 7, 9, 5, 1)],
  ['1x1', shape(2, 37, 5, 3, 9, 1)],
  ['1x1', shape(2, 43, 19, 21, 9, 1)],
  ['general', shape(1, 1, 7, 9, 1, 3, 1, 1)],
  ['general', shape(2, 3, 11, 13, 5, 5, 2, 2)],
  ['general', shape(2, 5, 7, 9, 11, 3, 1, 1)],
  ['general', shape(2, 43, 19, 21, 17, 3, 1, 1)],
  ['general', shape(2, 3, 9, 7, 9, 2, 2, 0)],
  ['general', shape(3, 19, 33, 35, 1, 1)],
  ['general', shape(2, 4, 19, 8, 3, [4, 3], 1, 2)],
  ['general', shape(2, 3, 10, 11, 2, 3, 2, 0)],
  ['general', shape(1, 2, 9, 7, 3, 1, 2, 0)],
  // '3x3_sg16' (lanes over 8 input channels, 16 output channels per workgroup, dy shared by
  // subgroupBroadcast): f32 rows (W not a multiple of 4, a part strip) and vec4 rows (W = 12, 20, 64),
  // channels short of the 8 / 16 blocks and over them (partial blocks both ways), batch 1 and 3,
  // heights over one 16-row task (several row blocks, the window's edges), 1×1 images, cIn < 8.
  ['3x3_sg16', shape(1, 1, 7, 9, 1, 3, 1, 1)],
  ['3x3_sg16', shape(3, 5, 7, 9, 11, 3, 1, 1)],
  ['3x3_sg16', shape(2, 19, 37, 20, 17, 3, 1, 1)],
  ['3x3_sg16', shape(1, 9, 1, 1, 3, 3, 1, 1)],
  ['3x3_sg16', shape(3, 43, 19, 21, 33, 3, 1, 1)],
  ['3x3_sg16', shape(1, 16, 33, 12, 16, 3, 1, 1)],
  ['3x3_sg16', shape(1, 8, 17, 64, 24, 3, 1, 1)],
  // The register-blocked split-K GEMMs: partial tiles both ways (cOut 70 > 64, K = 17·9 = 153 > 128),
  // several splits of N·Ho·Wo (3200 pixels), strides, odd kernels, a 1×1.
  ...(['gemm_rb128', 'gemm_rb64', 'gemm_rb_n32'] as const).flatMap((v) => [
    [v, shape(1, 1, 7, 9, 1, 3, 1, 1)],
    [v, shape(2, 3, 11, 13, 5, 5, 2, 2)],
    [v, shape(1, 17, 12, 12, 70, 3, 1, 1)],
    [v, shape(2, 5, 40, 40, 7, 3, 1, 1)],
    [v, shape(2, 4, 19, 8, 3, [4, 3], 1, 2)],
    [v, shape(2, 6, 37, 21, 10, 2, 2, 0)],
    [v, shape(3, 19, 33, 35, 1, 1)],
  ] as [Conv2dWeightGradVariant, Conv2dShape][]),
];

describe('conv2d dW on the GPU matches conv2dBackwardWeightRef', () => {
  it.each(dwCases)('%s %o', async (variant, s) => checkDW(variant, s));
});

describe('conv2d dW split-K GEMM', () => {
  it('is bitwise repeatable (fixed-order sums of the splits, no atomics)', async () => {
    const rt = await gpu();
    const s = shape(2, 5, 40, 40, 7, 3, 1, 1);
    const { xs, dys } = inputs(s, 3);
    const a = await runDW(rt, s, xs, dys, 'gemm_rb64');
    const b = await runDW(rt, s, xs, dys, 'gemm_rb64');
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});

describe('conv2d db on the GPU matches conv2dBackwardBiasRef', () => {
  it.each([
    shape(1, 1, 7, 9, 1, 3, 1, 1),
    shape(2, 3, 9, 7, 9, 2, 2, 0),
    shape(2, 1, 65, 67, 3, 1),
    shape(3, 2, 5, 5, 70, 3, 1, 1),
  ])('%o', async (s) => checkDB(s));
});

describe('conv2d weight-grad choice', () => {
  it('picks the specialised kernel for the network shapes and general otherwise', async () => {
    const rt = await gpu();
    const subgroupKernel = isCpuAdapter(rt) && hasSubgroupsOf8(rt);
    expect(chooseConv2dWeightGradVariant(rt, shape(8, 64, 128, 128, 64, 3, 1, 1))).toBe(subgroupKernel ? '3x3_sg16' : '3x3s1p1');
    expect(chooseConv2dWeightGradVariant(rt, shape(16, 3, 64, 64, 8, 3, 1, 1))).toBe('3x3s1p1');
    expect(chooseConv2dWeightGradVariant(rt, shape(8, 64, 128, 128, 64, 2, 2, 0))).toBe('2x2s2');
    expect(chooseConv2dWeightGradVariant(rt, shape(8, 256, 64, 64, 1, 1))).toBe('1x1');
    expect(chooseConv2dWeightGradVariant(rt, shape(1, 3, 11, 13, 5, 5, 2, 2))).toBe('general');
    expect(CONV2D_WEIGHT_GRAD_VARIANTS.filter((v) => conv2dWeightGradSupports(v, shape(1, 1, 9, 9, 1, 3, 2, 1)))).toEqual(['general', 'gemm_rb128', 'gemm_rb64', 'gemm_rb_n32']);
    const x = rt.alloc(64);
    expect(() => conv2dBackwardWeight(rt, x, x, shape(1, 1, 4, 4, 1, 3, 1, 0), { variant: '3x3s1p1' })).toThrow(/does not support/);
    expect(() => conv2dBackwardWeight(rt, x, x, shape(1, 1, 4, 4, 1, 3, 1, 0), { variant: '3x3_sg16' })).toThrow(/does not support/);
    rt.release(x);
  });

  it("'3x3_sg16' names what it needs on a device without subgroups of 8, and is not chosen there", async () => {
    const real = await gpu();
    const rt = Object.create(real, { adapter: { value: { ...real.adapter, subgroupMinSize: 4 } } }) as Runtime;
    const s = shape(1, 8, 8, 8, 16, 3, 1, 1);
    const x = real.alloc(4 * 16 * 64);
    expect(chooseConv2dWeightGradVariant(rt, shape(1, 256, 64, 64, 256, 3, 1, 1))).toBe('3x3s1p1');
    expect(() => conv2dBackwardWeight(rt, x, x, s, { variant: '3x3_sg16' })).toThrow(/conv2dBackwardWeight: variant '3x3_sg16' needs the WebGPU 'subgroups' feature/);
    real.release(x);
  });
});

describe('conv2d CPU references agree with finite differences of conv2dForwardRef', () => {
  const cases = [shape(2, 2, 5, 4, 3, 3, 2, 1), shape(1, 3, 5, 5, 2, 2, 2, 0), shape(2, 2, 3, 4, 2, [1, 2], 1, 1)];
  it.each(cases)('dW and db for %o', (s) => {
    const { ho, wo } = conv2dOutputSize(s);
    const x = Float64Array.from(randomArray(s.n * s.cIn * s.h * s.w, 11));
    const w = Float64Array.from(randomArray(s.cOut * s.cIn * s.kh * s.kw, 12));
    const b = Float64Array.from(randomArray(s.cOut, 13));
    const g = Float64Array.from(randomArray(s.n * s.cOut * ho * wo, 14));
    const dW = numericGradient((wv) => dot(conv2dForwardRef(x, wv, b, s), g), w);
    const db = numericGradient((bv) => dot(conv2dForwardRef(x, w, bv, s), g), b);
    expectClose(conv2dBackwardWeightRef(x, g, s), dW, { atol: 1e-6, rtol: 1e-6 }, 'dW ref');
    expectClose(conv2dBackwardBiasRef(g, s), db, { atol: 1e-6, rtol: 1e-6 }, 'db ref');
  });
});

describe('conv2d dW and db are deterministic', () => {
  it.each(CONV2D_WEIGHT_GRAD_VARIANTS.map((v) => [v]))('%s gives bitwise-identical repeated runs', async (variant) => {
    const rt = await gpu();
    const s = variant === '1x1' ? shape(3, 19, 33, 35, 1, 1) : variant === '2x2s2' ? shape(2, 6, 37, 21, 10, 2, 2, 0) : shape(3, 3, 37, 20, 17, 3, 1, 1);
    const { xs, dys } = inputs(s, 99);
    expectBitwiseEqual(await runDW(rt, s, xs, dys, variant), await runDW(rt, s, xs, dys, variant), `dW ${variant}`);
  });

  it('db gives bitwise-identical repeated runs', async () => {
    const rt = await gpu();
    const s = shape(2, 1, 65, 67, 3, 1);
    const { dys } = inputs(s, 98);
    expectBitwiseEqual(await runDB(rt, s, dys), await runDB(rt, s, dys), 'db');
  });
});

describe('conv2d dW and db over the binding limit (lowered to 16 KiB)', () => {
  const limit = 16384;
  it.each([
    ['3x3s1p1', shape(5, 3, 17, 19, 4, 3, 1, 1)],
    ['general', shape(5, 3, 17, 19, 4, 3, 1, 1)],
    ['2x2s2', shape(5, 3, 17, 19, 4, 2, 2, 0)],
    ['1x1', shape(7, 5, 13, 15, 1, 1)],
    ['3x3_sg16', shape(5, 3, 17, 19, 4, 3, 1, 1)],
  ] as [Conv2dWeightGradVariant, Conv2dShape][])('%s %o is processed in batch chunks', async (variant, s) => {
    const rt = await gpu({ maxBindingBytes: limit });
    const before = rt.counters.dispatches;
    await checkDW(variant, s, rt);
    expect(rt.counters.dispatches - before).toBe(4);
  });

  it('db is processed in batch chunks', async () => {
    const rt = await gpu({ maxBindingBytes: limit });
    const before = rt.counters.dispatches;
    await checkDB(shape(5, 3, 17, 19, 4, 3, 1, 1), rt);
    expect(rt.counters.dispatches - before).toBe(4);
  });

  it('refuses with a BindingLimitError when one batch item is too big', async () => {
    const rt = await gpu({ maxBindingBytes: limit });
    const s = shape(2, 4, 40, 40, 2, 3, 1, 1);
    const x = rt.alloc(s.n * s.cIn * s.h * s.w * 4);
    const dy = rt.alloc(s.n * s.cOut * s.h * s.w * 4);
    expect(() => conv2dBackwardWeight(rt, x, dy, s)).toThrow(BindingLimitError);
    expect(() => conv2dBackwardWeight(rt, x, dy, s)).toThrow(/conv2d dW input x \(one batch item\) is 25\.0 KiB/);
    const wide = shape(1, 1, 40, 40, 4, 3, 1, 1);
    expect(() => conv2dBackwardBias(rt, dy, wide)).toThrow(/conv2d db dy \(one batch item\) is 25\.0 KiB/);
    rt.release(x);
    rt.release(dy);
  });
});
