import { describe, expect, it } from 'vitest';
import { axpy, axpyRef, fill, scale, scaleRef, sum, sumRef } from '../../src/kernels/elementwise.ts';
import { defineKernel, flatWorkgroups } from '../../src/kernels/kernel.ts';
import { BindingLimitError, ShaderError } from '../../src/kernels/runtime.ts';
import { createRuntimeFromGpu } from '../../src/kernels/device.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

describe('runtime', () => {
  it('reports the adapter and raises the buffer limits to the adapter maximum', async () => {
    const rt = await gpu();
    expect(rt.adapter.vendor.length + rt.adapter.description.length).toBeGreaterThan(0);
    expect(rt.device.limits.maxBufferSize).toBeGreaterThan(256 * 1024 * 1024);
  });

  it('says why and what to install when there is no adapter', async () => {
    const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
    await expect(createRuntimeFromGpu(noAdapter, {})).rejects.toThrow(/No WebGPU adapter.*lavapipe from Mesa >= 25.*npm run setup/s);
  });

  it('throws a ShaderError naming the kernel and the WGSL message', async () => {
    const rt = await gpu();
    const broken = defineKernel({ name: 'broken_kernel', shader: 'elementwise', entryPoint: 'axpy', bindings: ['write', 'read'], uniforms: true, defines: {}, constants: { NOT_AN_OVERRIDE: 1 } });
    await expect(rt.prepare(broken)).rejects.toThrow(/broken_kernel/);
    const bad = { ...broken, name: 'syntax_kernel', constants: {} };
    (rt as unknown as { shaders: Record<string, string> }).shaders['__bad'] = 'fn main( { }';
    await expect(rt.prepare({ ...bad, shader: '__bad' })).rejects.toThrow(ShaderError);
  });

  it('caches pipelines by source and constants', async () => {
    const rt = await gpu();
    const y = rt.alloc(64 * 4);
    fill(rt, y, 64, 1);
    const before = rt.counters.pipelines;
    fill(rt, y, 64, 2);
    expect(rt.counters.pipelines).toBe(before);
    rt.release(y);
  });

  it('records many dispatches per submit and reads back only when asked', async () => {
    const rt = await gpu();
    const y = rt.alloc(1000 * 4);
    const x = rt.upload(randomArray(1000, 1));
    await rt.sync();
    const submits = rt.counters.submits;
    fill(rt, y, 1000, 0);
    for (let i = 0; i < 10; i++) axpy(rt, y, x, 1000, 0.5);
    expect(rt.counters.submits).toBe(submits);
    const out = await rt.readF32(y, 1000);
    expect(rt.counters.submits).toBe(submits + 1);
    let expected: Float32Array = new Float32Array(1000);
    const xs = randomArray(1000, 1);
    for (let i = 0; i < 10; i++) expected = axpyRef(expected, xs, 0.5);
    expectClose(out, expected, { atol: 1e-6, rtol: 1e-6 });
    rt.release(x);
    rt.release(y);
  });

  it('readMany reads several buffers and ranges in one submit and one mapping', async () => {
    const rt = await gpu();
    const a = rt.upload(Float32Array.from([1, 2, 3, 4, 5]));
    const b = rt.upload(Uint32Array.from([7, 8, 9]));
    const before = { ...rt.counters };
    const [whole, range, odd] = await rt.readMany([{ buffer: a, bytes: 20 }, { buffer: b, bytes: 8, offset: 4 }, { buffer: a, bytes: 4, offset: 16 }]);
    expect([...new Float32Array(whole as ArrayBuffer)]).toEqual([1, 2, 3, 4, 5]);
    expect([...new Uint32Array(range as ArrayBuffer)]).toEqual([8, 9]);
    expect([...new Float32Array(odd as ArrayBuffer)]).toEqual([5]);
    expect(rt.counters.readbacks - before.readbacks).toBe(1);
    expect(rt.counters.submits - before.submits).toBe(1);
    rt.release(a);
    rt.release(b);
  });

  it('finds a kernel pipeline and bind group again instead of making them anew', async () => {
    const rt = await gpu();
    const x = rt.upload(randomArray(256, 3));
    const y = rt.alloc(256 * 4);
    scale(rt, y, x, 256, 2);
    const before = { ...rt.counters };
    for (let i = 0; i < 5; i++) scale(rt, y, x, 256, i); // same buffers, other uniforms
    expect(rt.counters.pipelines).toBe(before.pipelines);
    expect(rt.counters.bindGroups).toBe(before.bindGroups);
    // The uniform block travels by dynamic offset: each dispatch still sees its own alpha.
    expectClose(await rt.readF32(y, 256), scaleRef(randomArray(256, 3), 4), { atol: 0, rtol: 0 });
    const z = rt.alloc(256 * 4);
    scale(rt, z, x, 256, 1);
    expect(rt.counters.bindGroups).toBe(before.bindGroups + 1); // another buffer: another bind group
    [x, y, z].forEach((b) => rt.release(b));
  });

  it('reuses staging buffers for uploads and readbacks', async () => {
    const rt = await gpu();
    const a = rt.upload(randomArray(300, 4));
    await rt.readF32(a, 300);
    await rt.sync();
    await new Promise((resolve) => setTimeout(resolve, 50)); // the upload buffer is mapped again asynchronously
    const before = rt.stagingCreated();
    for (let i = 0; i < 4; i++) {
      rt.write(a, randomArray(300, 10 + i));
      expectClose(await rt.readF32(a, 300), randomArray(300, 10 + i), { atol: 0, rtol: 0 });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const after = rt.stagingCreated();
    expect(after.readback).toBe(before.readback);
    expect(after.upload).toBeLessThanOrEqual(before.upload + 1);
    rt.release(a);
  });

  it('pool hands out the oldest free buffer, whatever order they were released in', async () => {
    const rt = await gpu();
    const [a, b, c] = [rt.alloc(4096 + 16), rt.alloc(4096 + 16), rt.alloc(4096 + 16)];
    rt.release(c);
    rt.release(a);
    rt.release(b);
    const again = [rt.alloc(4096 + 16), rt.alloc(4096 + 16), rt.alloc(4096 + 16)];
    expect(again).toEqual([a, b, c]);
    again.forEach((buffer) => rt.release(buffer));
  });

  it('pool reuses buffers and tracks the high-water mark', async () => {
    const rt = await gpu();
    rt.pool.resetHighWater();
    const base = rt.poolStats().inUseBytes;
    const a = rt.alloc(4096);
    const b = rt.alloc(4096);
    expect(rt.poolStats().highWaterBytes - base).toBe(8192);
    rt.release(a);
    const c = rt.alloc(4096);
    expect(c).toBe(a);
    rt.release(b);
    rt.release(c);
    expect(rt.poolStats().inUseBytes).toBe(base);
    expect(() => rt.release(c)).toThrow(/released twice/);
  });

  it('splits workgroup grids that exceed 65,535 per dimension', () => {
    expect(flatWorkgroups(10)).toEqual([10, 1]);
    const [x, y] = flatWorkgroups(200000);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y).toBeGreaterThanOrEqual(200000);
  });
});

describe('elementwise and sum', () => {
  const sizes = [1, 7, 256, 1000, 70001];
  it.each(sizes)('axpy and scale match the reference, n=%i', async (n) => {
    const rt = await gpu();
    const xs = randomArray(n, n);
    const ys = randomArray(n, n + 1);
    const x = rt.upload(xs);
    const y = rt.upload(ys);
    axpy(rt, y, x, n, -0.75);
    expectClose(await rt.readF32(y, n), axpyRef(ys, xs, -0.75), { atol: 1e-6, rtol: 1e-6 });
    scale(rt, y, x, n, 3);
    expectClose(await rt.readF32(y, n), scaleRef(xs, 3), { atol: 1e-6, rtol: 1e-6 });
    rt.release(x);
    rt.release(y);
  });

  it.each(sizes)('sum matches the float64 reference and is bitwise repeatable, n=%i', async (n) => {
    const rt = await gpu();
    const xs = randomArray(n, 7 * n);
    const x = rt.upload(xs);
    const s1 = sum(rt, x, n);
    const s2 = sum(rt, x, n);
    const a = await rt.readF32(s1, 1);
    const b = await rt.readF32(s2, 1);
    expectClose(a, [sumRef(xs)], { atol: 1e-5 * Math.sqrt(n), rtol: 1e-5 });
    expectBitwiseEqual(a, b);
    [x, s1, s2].forEach((buf) => rt.release(buf));
  });

  it('processes arrays larger than one binding in chunks (binding limit lowered to 4 KiB)', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    const n = 5000; // 20 KB: five chunks
    const xs = randomArray(n, 3);
    const x = rt.upload(xs);
    const y = rt.alloc(n * 4);
    const dispatches = rt.counters.dispatches;
    scale(rt, y, x, n, 2);
    expect(rt.counters.dispatches - dispatches).toBe(5);
    expectClose(await rt.readF32(y, n), scaleRef(xs, 2), { atol: 0, rtol: 0 });
    expect(() => sum(rt, x, n)).toThrow(BindingLimitError);
    expect(() => sum(rt, x, n)).toThrow(/sum input is 19\.5 KiB \(20000 bytes\), over this device's maxStorageBufferBindingSize of 4\.0 KiB/);
    rt.release(x);
    rt.release(y);
  });
});
