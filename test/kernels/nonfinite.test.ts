/**
 * The non-finite check against its CPU reference: NaN, +Inf, −Inf at the first, a middle and the
 * last element of arrays whose sizes fit no segment, the largest finite float (not flagged), many
 * arrays in one call, and arrays split into chunks over a lowered binding limit.
 */
import { describe, expect, it } from 'vitest';
import { NONFINITE, nonFiniteFlags, nonFiniteFlagsRef } from '../../src/kernels/nonfinite.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

/** Each case: an array size and the values planted at indices (negative = from the end). */
const CASES: [string, number, [number, number][]][] = [
  ['clean', 1000, []],
  ['largest finite and denormals', 777, [[3, 3.4028234663852886e38], [-1, -3.4028234663852886e38], [5, 1e-45]]],
  ['NaN first', 1, [[0, NaN]]],
  ['NaN last', 4097, [[-1, NaN]]],
  ['+Inf middle', 70001, [[35000, Infinity]]],
  ['-Inf last', 4096 * 3 + 5, [[-1, -Infinity]]],
  ['NaN and Inf', 300, [[10, NaN], [299, Infinity]]],
];

function build(n: number, planted: [number, number][], seed: number): Float32Array {
  const a = randomArray(n, seed, -1e3, 1e3);
  for (const [i, v] of planted) a[i < 0 ? n + i : i] = v;
  return a;
}

async function gpuFlags(rt: Runtime, arrays: Float32Array[]): Promise<Uint32Array> {
  const buffers = arrays.map((a) => rt.upload(a));
  const flags = nonFiniteFlags(rt, buffers.map((buffer, k) => ({ buffer, n: (arrays[k] as Float32Array).length })));
  const out = await rt.readU32(flags, arrays.length);
  [...buffers, flags].forEach((b) => rt.release(b));
  return out;
}

describe('nonFiniteFlags', () => {
  it('flags every case as the reference does, all in one call', async () => {
    const rt = await gpu();
    const arrays = CASES.map(([, n, planted], k) => build(n, planted, k + 1));
    const expected = nonFiniteFlagsRef(arrays);
    expect([...expected]).toEqual([0, 0, NONFINITE.NaN, NONFINITE.NaN, NONFINITE.Inf, NONFINITE.Inf, NONFINITE.NaN | NONFINITE.Inf]);
    expect([...(await gpuFlags(rt, arrays))]).toEqual([...expected]);
  });

  it('ORs the chunks of an array larger than one binding into its flag', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    const arrays = [build(5000, [[4999, NaN]], 9), build(5000, [[0, -Infinity]], 10), build(5000, [], 11)];
    expect([...(await gpuFlags(rt, arrays))]).toEqual([NONFINITE.NaN, NONFINITE.Inf, 0]);
  });
});
