/**
 * conv2d forward and data gradient: every kernel variant against the CPU reference (conv2d_ref.ts)
 * on awkward shapes, bitwise repeatability, batch chunking over a lowered binding limit, the
 * heuristic's choice between the 2×2 s2 versions, and the reference data gradient against central
 * finite differences of the reference forward.
 */
import { describe, expect, it } from 'vitest';
import {
  CONV2D_FORWARD_VARIANTS,
  chooseConv2dBackwardDataVariant,
  chooseConv2dForwardVariant,
  conv2dBackwardData,
  conv2dBackwardDataRef,
  conv2dForward,
  conv2dForwardRef,
  conv2dOutputSize,
  conv2dVariantApplies,
  type Conv2dForwardVariant,
  type Conv2dShape,
} from '../../src/kernels/conv2d.ts';
import { batchChunks, hasSubgroupsOf8 } from '../../src/kernels/conv2d_direct.ts';
import { isCpuAdapter } from '../../src/kernels/conv2d_forward.ts';
import { BindingLimitError, type Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { dot, numericGradient } from '../helpers/gradcheck.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const TOL = { atol: 1e-4, rtol: 1e-4 };

/** Square kernel k, stride, pad; `kw` overrides the kernel width. */
function S(n: number, cIn: number, h: number, w: number, cOut: number, k: number, stride: number, pad: number, kw = k): Conv2dShape {
  return { n, cIn, h, w, cOut, kh: k, kw, stride, pad };
}

const CASES: [string, Conv2dShape][] = [
  ['3x3 n1 1→1 7×9', S(1, 1, 7, 9, 1, 3, 1, 1)],
  ['3x3 5→6 7×9', S(2, 5, 7, 9, 6, 3, 1, 1)],
  ['3x3 19→70 5×11 (several output tiles)', S(1, 19, 5, 11, 70, 3, 1, 1)],
  ['3x3 130→13 4×5 (forward: two input blocks)', S(1, 130, 4, 5, 13, 3, 1, 1)],
  ['3x3 13→130 4×9 (dx: two input blocks)', S(1, 13, 4, 9, 130, 3, 1, 1)],
  // For '3x3_px16' (lanes over pixels): rows read as vec4 when W is a multiple of 4
  // (W = 12: a segment of 8 + one of 4), more than 8 segments in a row (two lane blocks), channels
  // not a multiple of the 16 per tile, batch 3. The 3×3 cases above run them with f32 rows.
  ['3x3 3→11 6×12 b3 (vec4 rows, a half segment)', S(3, 3, 6, 12, 11, 3, 1, 1)],
  ['3x3 9→17 3×68 (vec4 rows, 9 segments: two lane blocks)', S(1, 9, 3, 68, 17, 3, 1, 1)],
  ['3x3 4→3 2×70 b3 (f32 rows, 9 segments)', S(3, 4, 2, 70, 3, 3, 1, 1)],
  ['2x2s2 3→5 7×9 (odd input: floor)', S(2, 3, 7, 9, 5, 2, 2, 0)],
  ['2x2s2 n1 1→1 5×5', S(1, 1, 5, 5, 1, 2, 2, 0)],
  ['2x2s2 17→9 6×37', S(1, 17, 6, 37, 9, 2, 2, 0)],
  ['2x2s2 260→13 4×5 (forward: two input blocks)', S(1, 260, 4, 5, 13, 2, 2, 0)],
  ['2x2s2 13→260 5×18 (dx: two input blocks)', S(1, 13, 5, 18, 260, 2, 2, 0)],
  // For '2x2s2_sg': x read as vec4 (W a multiple of 4) or f32, the same for dy (its width); 1, 2 or
  // 4 segments of 8 pixels per workgroup (by the channels produced: > 16, 9–16, ≤ 8), tiles of 32,
  // 16 or 8 channels, dx blocks of 8 dy channels. The cases above run it too.
  ['2x2s2 5→16 5×12 (vec4 x, 2 segments per workgroup)', S(2, 5, 5, 12, 16, 2, 2, 0)],
  ['2x2s2 6→37 9×20 (vec4 x, two 32-channel tiles, 10-pixel rows)', S(2, 6, 9, 20, 37, 2, 2, 0)],
  ['2x2s2 11→20 7×17 (vec4 dy, odd dx row and column, 20 dy channels)', S(2, 11, 7, 17, 20, 2, 2, 0)],
  ['2x2s2 300→40 4×8 (vec4 x and dy, forward: three input blocks)', S(1, 300, 4, 8, 40, 2, 2, 0)],
  ['2x2s2 40→7 6×24 (vec4 x and dy, 7 output channels)', S(3, 40, 6, 24, 7, 2, 2, 0)],
  ['1x1 7→1 5×3', S(3, 7, 5, 3, 1, 1, 1, 0)],
  ['1x1 1→33 3×7', S(2, 1, 3, 7, 33, 1, 1, 0)],
  ['1x1 20→12 9×9', S(1, 20, 9, 9, 12, 1, 1, 0)],
  ['1x1 1030→16 2×3 (forward: two input blocks)', S(1, 1030, 2, 3, 16, 1, 1, 0)],
  ['1x1 16→1030 3×3 (dx: two input blocks)', S(1, 16, 3, 3, 1030, 1, 1, 0)],
  ['5x5 s2 p2 3→5 9×11', S(2, 3, 9, 11, 5, 5, 2, 2)],
  ['3x3 s2 p1 6→7 9×9', S(1, 6, 9, 9, 7, 3, 2, 1)],
  ['3x1 s3 p1 4→66 8×10 (kh ≠ kw)', S(1, 4, 8, 10, 66, 3, 3, 1, 1)],
  ['4x4 s3 p2 2→3 10×7', S(2, 2, 10, 7, 3, 4, 3, 2)],
];

const ROWS = CASES.flatMap(([name, s]) => CONV2D_FORWARD_VARIANTS.filter((v) => conv2dVariantApplies(v, s)).map((v) => [`${name} [${v}]`, v, s] as const));

function data(s: Conv2dShape, seed: number) {
  const { ho, wo } = conv2dOutputSize(s);
  return {
    x: randomArray(s.n * s.cIn * s.h * s.w, seed),
    w: randomArray(s.cOut * s.cIn * s.kh * s.kw, seed + 1),
    b: randomArray(s.cOut, seed + 2),
    dy: randomArray(s.n * s.cOut * ho * wo, seed + 3),
  };
}

/** Runs `launch` twice: the two results must be bitwise equal; returns one of them. */
async function twice(rt: Runtime, length: number, launch: () => GPUBuffer, what: string): Promise<Float32Array> {
  const first = launch();
  const second = launch();
  const a = await rt.readF32(first, length);
  const b = await rt.readF32(second, length);
  expectBitwiseEqual(a, b, `${what} repeated`);
  rt.release(first);
  rt.release(second);
  return a;
}

/** Forward (with and without bias) and data gradient of `variant` against the reference. */
async function checkVariant(rt: Runtime, variant: Conv2dForwardVariant, s: Conv2dShape, seed = 1): Promise<void> {
  const h = data(s, seed);
  const [x, w, b, dy] = [h.x, h.w, h.b, h.dy].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
  const yRef = conv2dForwardRef(h.x, h.w, h.b, s);
  expectClose(await twice(rt, yRef.length, () => conv2dForward(rt, x, w, b, s, { variant }), 'y'), yRef, TOL, 'y');
  const yNoBias = conv2dForwardRef(h.x, h.w, null, s);
  expectClose(await twice(rt, yRef.length, () => conv2dForward(rt, x, w, null, s, { variant }), 'y (no bias)'), yNoBias, TOL, 'y (no bias)');
  const dxRef = conv2dBackwardDataRef(h.dy, h.w, s);
  expectClose(await twice(rt, dxRef.length, () => conv2dBackwardData(rt, dy, w, s, { variant }), 'dx'), dxRef, TOL, 'dx');
  [x, w, b, dy].forEach((buf) => rt.release(buf));
}

describe('conv2d variants match the CPU reference, bitwise repeatable', () => {
  it.each(ROWS)('%s', async (_name, variant, s) => {
    await checkVariant(await gpu(), variant, s);
  });
});

describe('conv2d choice and validation', () => {
  it('chooses an applicable variant for every case, and the default launch matches the reference', async () => {
    const rt = await gpu();
    for (const [name, s] of CASES) {
      expect(conv2dVariantApplies(chooseConv2dForwardVariant(rt, s), s), name).toBe(true);
      expect(conv2dVariantApplies(chooseConv2dBackwardDataVariant(rt, s), s), name).toBe(true);
    }
    const s = S(2, 5, 7, 9, 6, 3, 1, 1);
    const h = data(s, 9);
    const [x, w, b] = [h.x, h.w, h.b].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer, GPUBuffer];
    const y = conv2dForward(rt, x, w, b, s);
    const yRef = conv2dForwardRef(h.x, h.w, h.b, s);
    expectClose(await rt.readF32(y, yRef.length), yRef, TOL);
    [x, w, b, y].forEach((buf) => rt.release(buf));
  });

  it.each([
    ['forward 64→64 128² b8 (the bench shape)', 'forward', S(8, 64, 128, 128, 64, 2, 2, 0), '2x2s2_sg'],
    ['forward 16→16 512² b8', 'forward', S(8, 16, 512, 512, 16, 2, 2, 0), '2x2s2_sg'],
    ['forward 8→8 64² b16 (the tiny preset)', 'forward', S(16, 8, 64, 64, 8, 2, 2, 0), '2x2s2_sg'],
    ['dx 64→64 128² b8', 'dx', S(8, 64, 128, 128, 64, 2, 2, 0), '2x2s2_sg'],
    ['dx 32→32 256² b8', 'dx', S(8, 32, 256, 256, 32, 2, 2, 0), '2x2s2_sg'],
    ['dx 16→16 512² b8 (16 input channels)', 'dx', S(8, 16, 512, 512, 16, 2, 2, 0), '2x2s2'],
  ] as const)('chooses between the 2×2 s2 versions as measured on lavapipe: %s', async (_name, op, s, onCpuWithSubgroups) => {
    const rt = await gpu();
    const chosen = op === 'forward' ? chooseConv2dForwardVariant(rt, s) : chooseConv2dBackwardDataVariant(rt, s);
    expect(chosen).toBe(!isCpuAdapter(rt) ? 'gemm' : hasSubgroupsOf8(rt) ? onCpuWithSubgroups : '2x2s2');
  });

  it.each([
    ['forward 256→256 64² (the seed\'s widest)', 'forward', S(1, 256, 64, 64, 256, 3, 1, 1), '3x3_px16'],
    ['dx 128→256 64² (128 dx channels)', 'dx', S(1, 128, 64, 64, 256, 3, 1, 1), '3x3_px16'],
    ['forward 3→16 512² (the seed\'s first layer)', 'forward', S(1, 3, 512, 512, 16, 3, 1, 1), '3x3_px16'],
    ['dx 3→16 512² (3 dx channels)', 'dx', S(1, 3, 512, 512, 16, 3, 1, 1), '3x3'],
    ['forward 8→8 64² b16 (the tiny preset)', 'forward', S(16, 8, 64, 64, 8, 3, 1, 1), '3x3'],
    ['forward 16→16 32² b16 (the tile preset, unmeasured)', 'forward', S(16, 16, 32, 32, 16, 3, 1, 1), '3x3'],
  ] as const)('chooses between the 3×3 versions as measured on lavapipe: %s', async (_name, op, s, onCpu) => {
    const rt = await gpu();
    const chosen = op === 'forward' ? chooseConv2dForwardVariant(rt, s) : chooseConv2dBackwardDataVariant(rt, s);
    expect(chosen).toBe(isCpuAdapter(rt) ? onCpu : 'gemm');
  });

  it("'2x2s2_sg' names what it needs on a device without subgroups of 8", async () => {
    const real = await gpu();
    const rt = Object.create(real, { adapter: { value: { ...real.adapter, subgroupMinSize: 4 } } }) as Runtime;
    const s = S(1, 4, 6, 8, 4, 2, 2, 0);
    const x = real.alloc(4 * 4 * 6 * 8);
    expect(hasSubgroupsOf8(rt)).toBe(false);
    expect(chooseConv2dForwardVariant(rt, S(8, 64, 128, 128, 64, 2, 2, 0))).not.toBe('2x2s2_sg');
    expect(chooseConv2dBackwardDataVariant(rt, S(8, 64, 128, 128, 64, 2, 2, 0))).not.toBe('2x2s2_sg');
    expect(() => conv2dForward(rt, x, x, null, s, { variant: '2x2s2_sg' })).toThrow(/conv2dForward: variant '2x2s2_sg' needs the WebGPU 'subgroups' feature with subgroups of at least 8 lanes/);
    expect(() => conv2dBackwardData(rt, x, x, s, { variant: '2x2s2_sg' })).toThrow(/conv2dBackwardData: variant '2x2s2_sg' needs/);
    real.release(x);
  });

  it('refuses a variant that cannot run the shape', async () => {
    const rt = await gpu();
    const x = rt.alloc(4 * 63);
    expect(() => conv2dForward(rt, x, x, null, S(1, 1, 7, 9, 1, 3, 2, 1), { variant: '3x3' })).toThrow(/variant '3x3' cannot run a 3×3 stride 2 pad 1/);
    expect(() => conv2dBackwardData(rt, x, x, S(1, 1, 7, 9, 1, 3, 1, 1), { variant: '2x2s2' })).toThrow(RangeError);
    rt.release(x);
  });
});

describe("'2x2s2_sg' against '2x2s2'", () => {
  // Both add each output's terms in the same order (input channel, then ky, then kx): switching the
  // heuristic to '2x2s2_sg' changes no bits while the summed channels fit one weight block
  // (≤ 128 at 32 channels per tile) — every 2×2 s2 conv of the seed and tiny networks.
  it.each([
    ['64→64 32² (vec4 loads)', S(2, 64, 32, 32, 64, 2, 2, 0)],
    ['16→16 20×24 (2 segments per workgroup)', S(2, 16, 20, 24, 16, 2, 2, 0)],
    ['17→9 6×37 (f32 loads)', S(1, 17, 6, 37, 9, 2, 2, 0)],
    ['128→128 16×16 (one full block)', S(1, 128, 16, 16, 128, 2, 2, 0)],
  ] as const)('gives the same bits, forward and dx: %s', async (_name, s) => {
    const rt = await gpu();
    if (!hasSubgroupsOf8(rt)) return;
    const h = data(s, 31);
    const [x, w, b, dy] = [h.x, h.w, h.b, h.dy].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
    const read = async (out: GPUBuffer, n: number) => {
      const v = await rt.readF32(out, n);
      rt.release(out);
      return v;
    };
    const ny = conv2dForwardRef(h.x, h.w, h.b, s).length;
    const nx = h.x.length;
    expectBitwiseEqual(await read(conv2dForward(rt, x, w, b, s, { variant: '2x2s2_sg' }), ny), await read(conv2dForward(rt, x, w, b, s, { variant: '2x2s2' }), ny), 'y');
    expectBitwiseEqual(await read(conv2dBackwardData(rt, dy, w, s, { variant: '2x2s2_sg' }), nx), await read(conv2dBackwardData(rt, dy, w, s, { variant: '2x2s2' }), nx), 'dx');
    [x, w, b, dy].forEach((buf) => rt.release(buf));
  });
});

describe("'3x3_px16' against '3x3'", () => {
  // Both add each output's terms in the same order (input-channel block, then channel, ky, kx, by
  // fma) over the same blocks (16 output channels per tile, the same input blocks): '3x3_px16' gives
  // the same bits as '3x3', so which of the two autotune picks changes no weight. Checked in a real
  // Level-1 training step too (issue 11: activations, gradients and the Adam update bitwise equal).
  // The tiny preset's 3×3 shapes (Level 1 at 64², 32², 16², 8²; Level 2 at 8² and 4²) and awkward ones.
  it.each([
    ['3→8 64² b4 (tiny Level 1, first layer)', S(4, 3, 64, 64, 8, 3, 1, 1)],
    ['8→8 32² b12 (tiny, validation\'s last batch)', S(12, 8, 32, 32, 8, 3, 1, 1)],
    ['8→16 16² b4', S(4, 8, 16, 16, 16, 3, 1, 1)],
    ['16→16 8² b16 (tiny Level 1 and 2)', S(16, 16, 8, 8, 16, 3, 1, 1)],
    ['16→16 4² b16 (tiny Level 2)', S(16, 16, 4, 4, 16, 3, 1, 1)],
    ['19→70 5×11 (f32 rows, several output tiles)', S(1, 19, 5, 11, 70, 3, 1, 1)],
    ['130→13 4×8 (forward: two input blocks)', S(1, 130, 4, 8, 13, 3, 1, 1)],
    ['13→130 4×12 (dx: two input blocks)', S(1, 13, 4, 12, 130, 3, 1, 1)],
  ] as const)('gives the same bits, forward and dx: %s', async (_name, s) => {
    const rt = await gpu();
    const h = data(s, 37);
    const [x, w, b, dy] = [h.x, h.w, h.b, h.dy].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
    const read = async (out: GPUBuffer, n: number) => {
      const v = await rt.readF32(out, n);
      rt.release(out);
      return v;
    };
    const ny = h.dy.length;
    const nx = h.x.length;
    expectBitwiseEqual(await read(conv2dForward(rt, x, w, b, s, { variant: '3x3_px16' }), ny), await read(conv2dForward(rt, x, w, b, s, { variant: '3x3' }), ny), 'y');
    expectBitwiseEqual(await read(conv2dBackwardData(rt, dy, w, s, { variant: '3x3_px16' }), nx), await read(conv2dBackwardData(rt, dy, w, s, { variant: '3x3' }), nx), 'dx');
    [x, w, b, dy].forEach((buf) => rt.release(buf));
  });
});

describe('conv2d over the binding limit (lowered to 64 KiB)', () => {
  const CHUNKED: [string, Conv2dShape][] = [
    ['3x3 20×(8×17×15)', S(20, 8, 17, 15, 8, 3, 1, 1)],
    ['2x2s2 7×(8×33×31)', S(7, 8, 33, 31, 4, 2, 2, 0)],
    ['2x2s2 7×(8×33×20) (vec4 x, items not 256-byte aligned)', S(7, 8, 33, 20, 12, 2, 2, 0)],
    ['2x2s2 9×(8×31×16) (vec4 x and dy, dy items not 256-byte aligned)', S(9, 8, 31, 16, 13, 2, 2, 0)],
    ['1x1 5×(16×31×17)', S(5, 16, 31, 17, 3, 1, 1, 0)],
  ];
  const rows = CHUNKED.flatMap(([name, s]) => CONV2D_FORWARD_VARIANTS.filter((v) => conv2dVariantApplies(v, s)).map((v) => [`${name} [${v}]`, v, s] as const));

  it.each(rows)('processes the batch in chunks: %s', async (_name, variant, s) => {
    const rt = await gpu({ maxBindingBytes: 64 * 1024 });
    expect(batchChunks(rt, s.n, [{ what: 'x', itemFloats: s.cIn * s.h * s.w }]).length).toBeGreaterThanOrEqual(3);
    await checkVariant(rt, variant, s, 5);
  });

  it.each(CONV2D_FORWARD_VARIANTS)('throws a BindingLimitError naming the tensor when one item is too big [%s]', async (variant) => {
    const rt = await gpu({ maxBindingBytes: 64 * 1024 });
    const s = variant.startsWith('3x3') || variant === 'gemm' ? S(2, 16, 65, 65, 4, 3, 1, 1) : variant.startsWith('2x2s2') ? S(2, 16, 66, 66, 4, 2, 2, 0) : S(2, 16, 65, 65, 4, 1, 1, 0);
    const buf = rt.alloc(4 * 16 * 66 * 66 * 2);
    const inUse = rt.poolStats().inUseBytes;
    expect(() => conv2dForward(rt, buf, buf, null, s, { variant })).toThrow(BindingLimitError);
    expect(() => conv2dForward(rt, buf, buf, null, s, { variant })).toThrow(/conv2d input x \(one batch item\) is 2\d\d\.\d KiB/);
    const small = { ...s, cIn: 1, cOut: 16 };
    expect(() => conv2dBackwardData(rt, buf, buf, small, { variant })).toThrow(/conv2d output gradient dy \(one batch item\)/);
    expect(rt.poolStats().inUseBytes).toBe(inUse);
    rt.release(buf);
  });
});

describe('conv2dBackwardDataRef against finite differences of conv2dForwardRef', () => {
  it.each([
    ['3x3 s1 p1', S(1, 2, 4, 5, 3, 3, 1, 1)],
    ['2x2 s2 odd input', S(1, 2, 5, 5, 2, 2, 2, 0)],
    ['3x3 s2 p1 odd input', S(2, 2, 5, 5, 2, 3, 2, 1)],
  ] as const)('%s', (_name, s) => {
    const h = data(s, 21);
    const x = Float64Array.from(h.x);
    const w = Float64Array.from(h.w);
    const g = Float64Array.from(h.dy);
    const numeric = numericGradient((xx) => dot(conv2dForwardRef(xx, w, h.b, s), g), x);
    expectClose(conv2dBackwardDataRef(g, w, s), numeric, { atol: 1e-6, rtol: 1e-5 }, 'dx');
  });
});
