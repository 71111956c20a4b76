/**
 * The kernel-version table (rt.kernels) and autotune: the heuristic by default, a table's entry
 * used for exactly its shape and every other shape falling back to the heuristic, entries checked
 * on install, the file format, the closeness check, and autotune on small shapes choosing a version
 * that can run the shape and agrees with the CPU reference.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  applicableVersions,
  tunedVersions,
  autotune,
  checkKernelChoice,
  currentVersion,
  formatKernelChoicesFile,
  heuristicVersion,
  installKernelChoices,
  KERNELS_FILE_FORMAT,
  mismatch,
  parseKernelChoicesFile,
  type KernelRequest,
} from '../../src/kernels/autotune.ts';
import { conv2dBackwardWeight, conv2dWeightGradSupports } from '../../src/kernels/conv2d_weight_grad.ts';
import { conv2dForward, conv2dForwardRef, conv2dOutputSize, type Conv2dShape } from '../../src/kernels/conv2d.ts';
import { hasSubgroupsOf8 } from '../../src/kernels/conv2d_direct.ts';
import { isCpuAdapter } from '../../src/kernels/conv2d_forward.ts';
import { conv2dBackwardWeightRef } from '../../src/kernels/conv2d_ref.ts';
import { kernelKey, type KernelChoice } from '../../src/kernels/kernel_choices.ts';
import { linearForward, linearForwardRef, type LinearShape } from '../../src/kernels/linear.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const conv = (n: number, cIn: number, h: number, w: number, cOut: number, k: number, stride: number, pad: number): Conv2dShape => ({ n, cIn, h, w, cOut, kh: k, kw: k, stride, pad });
const A = conv(2, 5, 7, 9, 6, 3, 1, 1);
const B = conv(3, 5, 7, 9, 6, 3, 1, 1); // A with another batch: another key

afterEach(async () => (await gpu()).kernels.replace([]));

async function forward(s: Conv2dShape, variant?: 'gemm' | '3x3'): Promise<{ got: Float32Array; ref: Float64Array }> {
  const rt = await gpu();
  const xs = randomArray(s.n * s.cIn * s.h * s.w, 1);
  const ws = randomArray(s.cOut * s.cIn * s.kh * s.kw, 2);
  const bs = randomArray(s.cOut, 3);
  const [x, w, b] = [xs, ws, bs].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer, GPUBuffer];
  const y = conv2dForward(rt, x, w, b, s, variant ? { variant } : {});
  const ref = conv2dForwardRef(xs, ws, bs, s);
  const got = await rt.readF32(y, ref.length);
  [x, w, b, y].forEach((buf) => rt.release(buf));
  return { got, ref };
}

describe('the kernel-version table', () => {
  it('is empty by default: launches run the heuristic and are logged as such', async () => {
    const rt = await gpu();
    await forward(A);
    expect(rt.kernels.used()).toEqual([{ op: 'conv2d.forward', shape: A, variant: heuristicVersion(rt, 'conv2d.forward', A), from: 'heuristic' }]);
    expect(rt.kernels.misses()).toHaveLength(1);
  });

  it('runs a table entry for exactly its shape; another shape falls back to the heuristic', async () => {
    const rt = await gpu();
    const other = applicableVersions('conv2d.forward', A).find((v) => v !== heuristicVersion(rt, 'conv2d.forward', A)) as 'gemm' | '3x3';
    installKernelChoices(rt, [{ op: 'conv2d.forward', shape: A, variant: other }]);
    expect(currentVersion(rt, 'conv2d.forward', A)).toBe(other);
    expect(currentVersion(rt, 'conv2d.forward', B)).toBe(heuristicVersion(rt, 'conv2d.forward', B));
    const tabled = await forward(A);
    expectBitwiseEqual(tabled.got, (await forward(A, other)).got, 'table entry = the forced version');
    expectClose(tabled.got, tabled.ref, { atol: 1e-4, rtol: 1e-4 });
    await forward(B);
    const used = Object.fromEntries(rt.kernels.used().map((u) => [kernelKey(u.op, u.shape), `${u.variant} from ${u.from}`]));
    expect(used).toEqual({
      [kernelKey('conv2d.forward', A)]: `${other} from table`,
      [kernelKey('conv2d.forward', B)]: `${heuristicVersion(rt, 'conv2d.forward', B)} from heuristic`,
    });
  });

  it.each([
    ['an unknown op', { op: 'conv3d.forward', shape: A, variant: 'gemm' }, /unknown op "conv3d.forward"/],
    ['a missing shape field', { op: 'conv2d.forward', shape: { ...A, pad: undefined }, variant: 'gemm' }, /has no numeric 'pad'/],
    ['an invalid shape', { op: 'conv2d.forward', shape: { ...A, n: 0 }, variant: 'gemm' }, /n must be a positive integer/],
    ['an unknown version', { op: 'conv2d.dw', shape: A, variant: 'winograd' }, /conv2d.dw has no version "winograd"/],
    ['a version that cannot run the shape', { op: 'conv2d.forward', shape: A, variant: '2x2s2' }, /version '2x2s2' of conv2d.forward cannot run conv2d.forward n=2/],
    ['a linear version on a bad shape', { op: 'linear.dx', shape: { n: 4, inFeatures: 2.5, outFeatures: 3 }, variant: 'cols' }, /inFeatures must be a positive integer/],
  ])('refuses %s', (_name, raw, message) => {
    expect(() => checkKernelChoice(raw, 'f.json: choices[0]')).toThrow(message);
    expect(() => checkKernelChoice(raw, 'f.json: choices[0]')).toThrow(/^f\.json: choices\[0\]: /);
  });

  it('keeps only the key fields of a shape', () => {
    expect(checkKernelChoice({ op: 'linear.forward', shape: { n: 2, inFeatures: 3, outFeatures: 4, extra: 9 }, variant: 'tiled' }, 'x').shape).toEqual({ n: 2, inFeatures: 3, outFeatures: 4 });
  });
});

describe('the kernels file format', () => {
  const choices: KernelChoice[] = [
    { op: 'conv2d.forward', shape: A, variant: 'gemm' },
    { op: 'linear.dw', shape: { n: 5, inFeatures: 64, outFeatures: 4 }, variant: 'tiled' },
  ];
  const file = { format: KERNELS_FILE_FORMAT, kernelSet: '1-abc', adapter: { vendor: 'v', architecture: 'a', device: 'd', description: 'x' }, mode: 'heuristic', choices } as const;

  it('round-trips', () => {
    const text = formatKernelChoicesFile({ ...file, choices: [...choices] });
    expect(text.endsWith('}\n')).toBe(true);
    expect(parseKernelChoicesFile(text, 'k.json')).toEqual(file);
  });

  it('accepts a hand-written file with only choices, and names the file and entry of a bad one', () => {
    expect(parseKernelChoicesFile(JSON.stringify({ choices }), 'k.json').choices).toEqual(choices);
    expect(() => parseKernelChoicesFile('{"choices": [', 'k.json')).toThrow(/^k\.json: not valid JSON/);
    expect(() => parseKernelChoicesFile('{"choices": {}}', 'k.json')).toThrow(/k\.json: expected a JSON object with a "choices" array/);
    expect(() => parseKernelChoicesFile(JSON.stringify({ format: 'other', choices }), 'k.json')).toThrow(/format "other"/);
    expect(() => parseKernelChoicesFile(JSON.stringify({ choices: [choices[0], { ...choices[1], variant: 'x' }] }), 'k.json')).toThrow(/^k\.json: choices\[1\]: linear\.dw has no version "x"/);
  });
});

describe('the closeness check', () => {
  const ref = Float64Array.from({ length: 100 }, (_, i) => Math.sin(i) * 50);
  it.each([
    ['agrees with itself', Float32Array.from(ref), true],
    ['tolerates summation-order noise', Float32Array.from(ref, (v) => v * (1 + 1e-6)), true],
    ['catches one wrong value', Float32Array.from(ref, (v, i) => (i === 37 ? v + 0.2 : v)), false],
    ['catches a NaN', Float32Array.from(ref, (v, i) => (i === 3 ? NaN : v)), false],
    ['catches a length difference', new Float32Array(99), false],
  ])('%s', (_name, got, ok) => {
    expect(mismatch(got, ref) === null).toBe(ok);
  });
});

describe('autotune', () => {
  const requests: KernelRequest[] = [
    { op: 'conv2d.forward', shape: A },
    { op: 'conv2d.forward', shape: A }, // a duplicate is decided once
    { op: 'conv2d.dw', shape: conv(2, 3, 9, 7, 9, 2, 2, 0) },
    { op: 'linear.forward', shape: { n: 5, inFeatures: 64, outFeatures: 4 } },
    { op: 'conv2d.dw', shape: conv(1, 2, 9, 7, 3, 3, 2, 1) }, // only 'general' runs it
  ];

  it('times every version that applies, picks a valid one, and leaves the table alone', async () => {
    const rt = await gpu();
    const lines: string[] = [];
    const tuned = await autotune(rt, requests, { reps: 3, log: (m) => lines.push(m) });
    expect(tuned.map((c) => kernelKey(c.op, c.shape))).toEqual([0, 2, 3, 4].map((i) => kernelKey((requests[i] as KernelRequest).op, (requests[i] as KernelRequest).shape)));
    expect(lines).toHaveLength(4);
    expect(rt.kernels.entries()).toEqual([]);
    for (const c of tuned) {
      const versions = tunedVersions(rt, c.op, c.shape);
      expect(versions).toContain(c.variant);
      if (versions.length === 1) {
        expect(c.timings).toEqual({ [c.variant]: 'only version' });
        continue;
      }
      expect(Object.keys(c.timings).sort()).toEqual([...versions].sort());
      for (const v of versions) expect(typeof c.timings[v], `${c.op} ${v}: ${c.timings[v]}`).toBe('number');
      const heuristic = heuristicVersion(rt, c.op, c.shape);
      if (c.variant !== heuristic) expect((c.timings[c.variant] as number) * 1.05).toBeLessThan(c.timings[heuristic] as number);
      else expect(c.timings[heuristic] as number).toBeLessThanOrEqual(Math.min(...versions.map((v) => c.timings[v] as number)) * 1.05);
    }
  });

  it('times both 2×2 s2 versions (and gemm) for the forward and dx, and installs choices that agree with the CPU reference', async () => {
    const rt = await gpu();
    const s = conv(2, 12, 9, 16, 20, 2, 2, 0);
    expect(applicableVersions('conv2d.forward', s).sort()).toEqual(['2x2s2', '2x2s2_sg', 'gemm', 'gemm_rb128', 'gemm_rb64', 'gemm_rb_n32']);
    // The register-blocked GEMMs are for discrete GPUs: not timed on a CPU adapter.
    expect(tunedVersions(rt, 'conv2d.forward', s).sort()).toEqual(isCpuAdapter(rt) ? ['2x2s2', '2x2s2_sg', 'gemm'] : applicableVersions('conv2d.forward', s).sort());
    const tuned = await autotune(rt, [{ op: 'conv2d.forward', shape: s }, { op: 'conv2d.dx', shape: s }], { reps: 2 });
    for (const c of tuned) {
      expect(Object.keys(c.timings).sort(), c.op).toEqual(tunedVersions(rt, c.op, c.shape).sort());
      for (const v of ['2x2s2', 'gemm']) expect(typeof c.timings[v], `${c.op} ${v}: ${c.timings[v]}`).toBe('number');
      // Without subgroups of 8 lanes the subgroup version errors out and is never chosen.
      if (hasSubgroupsOf8(rt)) expect(typeof c.timings['2x2s2_sg'], `${c.op}: ${c.timings['2x2s2_sg']}`).toBe('number');
      else expect(c.timings['2x2s2_sg']).toMatch(/^error: .*needs the WebGPU 'subgroups' feature/);
    }
    installKernelChoices(rt, tuned);
    const { got, ref } = await forward(s);
    expectClose(got, ref, { atol: 1e-4, rtol: 1e-4 });
    expect(rt.kernels.used()).toEqual([{ op: 'conv2d.forward', shape: s, variant: tuned[0]?.variant, from: 'table' }]);
  });

  it('the chosen versions, installed, agree with the CPU reference', async () => {
    const rt = await gpu();
    const tuned = await autotune(rt, requests.slice(2, 4), { reps: 2 });
    installKernelChoices(rt, tuned);
    const dwShape = (requests[2] as KernelRequest<'conv2d.dw'>).shape;
    expect(conv2dWeightGradSupports(currentVersion(rt, 'conv2d.dw', dwShape) as '2x2s2', dwShape)).toBe(true);
    const { ho, wo } = conv2dOutputSize(dwShape);
    const xs = randomArray(dwShape.n * dwShape.cIn * dwShape.h * dwShape.w, 4);
    const dys = randomArray(dwShape.n * dwShape.cOut * ho * wo, 5);
    const [x, dy] = [xs, dys].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer];
    const dW = conv2dBackwardWeight(rt, x, dy, dwShape);
    expectClose(await rt.readF32(dW, dwShape.cOut * dwShape.cIn * 4), conv2dBackwardWeightRef(xs, dys, dwShape), { atol: 1e-4, rtol: 1e-4 }, 'dW');
    const ls = (requests[3] as KernelRequest<'linear.forward'>).shape as LinearShape;
    const lx = randomArray(ls.n * ls.inFeatures, 6);
    const lw = randomArray(ls.outFeatures * ls.inFeatures, 7);
    const [bx, bw] = [lx, lw].map((a) => rt.upload(a)) as [GPUBuffer, GPUBuffer];
    const y = linearForward(rt, bx, bw, null, ls);
    expectClose(await rt.readF32(y, ls.n * ls.outFeatures), linearForwardRef(lx, lw, null, ls), { atol: 1e-4, rtol: 1e-4 }, 'linear y');
    expect(rt.kernels.misses()).toEqual([]);
    [x, dy, dW, bx, bw, y].forEach((b) => rt.release(b));
  });
});
