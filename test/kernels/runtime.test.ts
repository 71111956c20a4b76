import { describe, expect, it } from 'vitest';
import { axpy, axpyRef, fill, scale, scaleRef, sum, sumRef } from '../../src/kernels/elementwise.ts';
import { BindGroupCache, mixKey } from '../../src/kernels/bind_group_cache.ts';
import { defineKernel, flatWorkgroups, Uniforms, type UniformBlock } from '../../src/kernels/kernel.ts';
import { BindingLimitError, ShaderError, type Runtime } from '../../src/kernels/runtime.ts';
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

  it('never shares a bind group between two binding lists, and reuses one for a repeated list', async () => {
    const rt = await gpu();
    const scaleRange = defineKernel({ name: 'test_scale_range', shader: 'elementwise', entryPoint: 'scale', bindings: ['write', 'read'], uniforms: true, constants: { WG: 256 } });
    const R = 64; // floats per region: 256 bytes, the storage offset alignment
    const bytes = 4 * R * 4 + 48; // a size no other test allocates: fresh pool buffers, so no bind group of theirs
    const xs = randomArray(4 * R, 5);
    const x = rt.upload(xs);
    const ys = [rt.alloc(bytes), rt.alloc(bytes)] as const;
    // [y buffer, y region, x region, x regions bound, zero words after the uniforms (4: a 32-byte block)]:
    // each differs from the first in one place.
    const lists: [0 | 1, number, number, number, 0 | 4][] = [[0, 0, 0, 1, 0], [1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 2, 0], [0, 0, 0, 1, 4]];
    const expected = [new Float64Array(4 * R), new Float64Array(4 * R)];
    const run = (alphaBase: number) =>
      lists.forEach(([yb, yr, xr, xn, pad], i) => {
        const uniforms = new Uniforms().u32(R).f32(alphaBase + i).u32(...new Array<number>(pad).fill(0));
        rt.dispatch(scaleRange, { bindings: [{ buffer: ys[yb], offset: yr * R * 4, size: R * 4 }, { buffer: x, offset: xr * R * 4, size: xn * R * 4 }], uniforms, workgroups: [1] });
        expected[yb]?.set(scaleRef(xs.subarray(xr * R, (xr + 1) * R), alphaBase + i), yr * R);
      });
    const before = rt.counters.bindGroups;
    run(1);
    expect(rt.counters.bindGroups - before).toBe(lists.length);
    run(10);
    expect(rt.counters.bindGroups - before).toBe(lists.length);
    // The same buffers bound whole: another list, another bind group.
    rt.dispatch(scaleRange, { bindings: [ys[0], x], uniforms: new Uniforms().u32(R).f32(0), workgroups: [1] });
    expect(rt.counters.bindGroups - before).toBe(lists.length + 1);
    run(100);
    expect(rt.counters.bindGroups - before).toBe(lists.length + 1);
    for (const [i, y] of ys.entries()) expectClose(await rt.readF32(y, 4 * R), expected[i] as Float64Array, { atol: 0, rtol: 0 });
    [x, ...ys].forEach((b) => rt.release(b));
  });

  it('bind-group cache: keys with the same hash keep their own entries', () => {
    const hash = (key: number[]) => key.reduce(mixKey, 0);
    // Offsets and sizes past 4 GiB differ from small ones only above the 32 bits the hash reads.
    const a = [3, 16, 7, 256, 1024];
    const b = [3, 16, 7, 256, 1024 + 2 ** 32];
    const c = [3, 16, 7, 256 + 2 ** 32, 1024];
    expect(new Set([hash(a), hash(b), hash(c)]).size).toBe(1);
    const cache = new BindGroupCache<string>();
    const write = (key: number[]) => {
      cache.begin();
      key.forEach((v) => cache.push(v));
    };
    for (const [key, value] of [[a, 'a'], [b, 'b']] as const) {
      write(key);
      expect(cache.find()).toBeUndefined();
      cache.add(value);
    }
    for (const [key, value] of [[a, 'a'], [b, 'b'], [c, undefined], [[3, 16, 7, 256], undefined]] as const) {
      write([...key]);
      expect(cache.find()).toBe(value);
    }
    expect(cache.size).toBe(2);
  });

  it('Uniforms.writeTo writes the bytes of .bytes() in place, padding included (u32, i32, f32, align)', () => {
    const cases: [string, Uniforms, (v: DataView) => void][] = [
      ['u32', new Uniforms().u32(1, 0xffffffff), (v) => [1, 0xffffffff].forEach((x, i) => v.setUint32(4 * i, x, true))],
      ['i32', new Uniforms().i32(-1, -0x80000000, 7), (v) => [-1, -0x80000000, 7].forEach((x, i) => v.setInt32(4 * i, x, true))],
      ['f32', new Uniforms().f32(0.1, -0, NaN, -Infinity, 1e-45), (v) => [0.1, -0, NaN, -Infinity, 1e-45].forEach((x, i) => v.setFloat32(4 * i, x, true))],
      ['align', new Uniforms().u32(5).align(16).i32(-2).f32(2.5).align(8), (v) => (v.setUint32(0, 5, true), v.setInt32(16, -2, true), v.setFloat32(20, 2.5, true))],
      ['empty', new Uniforms(), () => {}],
    ];
    for (const [name, u, fill] of cases) {
      const expected = new ArrayBuffer(u.byteLength);
      fill(new DataView(expected));
      expect([...new Uint32Array(u.bytes())], name).toEqual([...new Uint32Array(expected)]);
      const target = new Uint32Array(4 + u.byteLength / 4 + 4).fill(0xdeadbeef);
      u.writeTo(target, 4);
      expect([...target.subarray(4, 4 + u.byteLength / 4)], name).toEqual([...new Uint32Array(expected)]);
      expect([...target.subarray(0, 4), ...target.subarray(4 + u.byteLength / 4)], name).toEqual(new Array(8).fill(0xdeadbeef));
    }
    expect([new Uniforms().byteLength, new Uniforms().u32(1, 2, 3, 4).byteLength, new Uniforms().u32(1, 2, 3, 4, 5).byteLength]).toEqual([16, 16, 32]);
  });

  it('takes a uniform block as bytes, as a Uniforms, or as any object with writeTo (another copy of the module)', async () => {
    const rt = await gpu();
    const xs = randomArray(64, 6);
    const x = rt.upload(xs);
    const y = rt.alloc(64 * 4);
    const foreign: UniformBlock = { byteLength: 16, writeTo: (t, at) => new Uniforms().u32(64).f32(-3).writeTo(t, at) };
    for (const [alpha, uniforms] of [[2, new Uniforms().u32(64).f32(2).bytes()], [0.5, new Uniforms().u32(64).f32(0.5)], [-3, foreign]] as const) {
      scaleWith(rt, y, x, uniforms);
      expectClose(await rt.readF32(y, 64), scaleRef(xs, alpha), { atol: 0, rtol: 0 });
    }
    [x, y].forEach((b) => rt.release(b));
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

const scaleKernel = defineKernel({ name: 'test_scale', shader: 'elementwise', entryPoint: 'scale', bindings: ['write', 'read'], uniforms: true, constants: { WG: 256 } });

/** y = alpha·x over 64 floats with the uniform block (n = 64, alpha) given as it is. */
function scaleWith(rt: Runtime, y: GPUBuffer, x: GPUBuffer, uniforms: ArrayBuffer | UniformBlock): void {
  rt.dispatch(scaleKernel, { bindings: [y, x], uniforms, workgroups: [1] });
}

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
