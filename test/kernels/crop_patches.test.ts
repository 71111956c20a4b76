/** Patch cropping with the 8 dihedral variants against the reference; the reference against numpy.rot90 / flip semantics. */
import { describe, expect, it } from 'vitest';
import { cropPatches, cropPatchesRef, patchGrid, type CropOptions, type ImageSize, type PatchSpec } from '../../src/kernels/crop_patches.ts';
import { BindingLimitError, type Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { rng } from '../helpers/random.ts';

function randomImage(img: ImageSize, seed: number): Uint8Array {
  const next = rng(seed);
  return Uint8Array.from({ length: img.width * img.height * 3 }, () => Math.floor(next() * 256));
}

const small: ImageSize = { width: 37, height: 29 };
const smallImage = randomImage(small, 3);

/** Crops on the GPU and compares with the reference; returns the GPU patches. */
async function checkCrop(rt: Runtime, img: ImageSize, bytes: Uint8Array, p: PatchSpec, opts: CropOptions = {}): Promise<Float32Array> {
  const image = rt.upload(bytes);
  const expected = cropPatchesRef(bytes, img, p, opts);
  const out = cropPatches(rt, image, img, p, opts);
  const got = await rt.readF32(out, expected.length);
  expectClose(got, expected, { atol: 1e-7, rtol: 0 }, `patches ${JSON.stringify({ p, opts })}`);
  rt.release(image);
  rt.release(out);
  return got;
}

/** One channel of a patch as rows, for readable expectations. */
function plane(data: ArrayLike<number>, size: number, offset = 0): number[][] {
  return Array.from({ length: size }, (_, i) => Array.from({ length: size }, (_, j) => data[offset + i * size + j] as number));
}

/** numpy.rot90(m) (counter-clockwise): the last column becomes the first row. */
const rot90 = (m: number[][]) => m[0]!.map((_, c) => m.map((row) => row[row.length - 1 - c]!));
const flipW = (m: number[][]) => m.map((row) => [...row].reverse());

describe('patchGrid', () => {
  it.each([
    [{ width: 2560, height: 2560 }, { size: 512, stride: 256 }, 9, 9, 81],
    [{ width: 2560, height: 2560 }, { size: 512, stride: 512 }, 5, 5, 25],
    [{ width: 37, height: 29 }, { size: 8, stride: 5 }, 6, 5, 30],
    [{ width: 8, height: 8 }, { size: 8, stride: 3 }, 1, 1, 1],
    [{ width: 7, height: 30 }, { size: 8, stride: 2 }, 0, 12, 0],
  ])('%o with %o: %i per row, %i per column, %i patches', (img, p, perRow, perColumn, count) => {
    expect(patchGrid(img, p)).toEqual({ perRow, perColumn, count });
  });
});

describe('cropPatches', () => {
  it('reference variants follow numpy.rot90 and a horizontal flip', () => {
    // One-channel view of a 2×2 image whose red bytes are 1, 2 / 3, 4.
    const bytes = Uint8Array.from([1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0]);
    const red = (variant: number) => plane(cropPatchesRef(bytes, { width: 2, height: 2 }, { size: 2, stride: 1 }, { variant }).map((v) => v * 255), 2);
    expect(red(1)).toEqual([[2, 4], [1, 3]]);
    expect(red(4)).toEqual([[2, 1], [4, 3]]);
    expect(red(5)).toEqual([[4, 2], [3, 1]]);
    const base = plane(cropPatchesRef(smallImage, small, { size: 8, stride: 5 }, { first: 7, count: 1 }), 8, 64);
    for (let v = 0; v < 8; v++) {
      let expected = base;
      for (let k = 0; k < (v & 3); k++) expected = rot90(expected);
      if (v & 4) expected = flipW(expected);
      expect(plane(cropPatchesRef(smallImage, small, { size: 8, stride: 5 }, { variant: v, first: 7, count: 1 }), 8, 64), `variant ${v}`).toEqual(expected);
    }
  });

  it('reference patch (x, y) covers [x·stride, +size) × [y·stride, +size), y outer', () => {
    const patches = cropPatchesRef(smallImage, small, { size: 8, stride: 5 }, { first: 6 * 2 + 3, count: 1 });
    const [x0, y0, i, j] = [15, 10, 4, 6];
    expect(patches[(0 * 8 + i) * 8 + j]).toBe((smallImage[((y0 + i) * 37 + x0 + j) * 3] as number) / 255);
    expect(patches[(2 * 8 + i) * 8 + j]).toBe((smallImage[((y0 + i) * 37 + x0 + j) * 3 + 2] as number) / 255);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7])('all patches of a 37×29 image, size 8 stride 5, variant %i', async (variant) => {
    await checkCrop(await gpu(), small, smallImage, { size: 8, stride: 5 }, { variant });
  });

  it.each<[PatchSpec, CropOptions]>([
    [{ size: 5, stride: 3 }, { variant: 3, first: 17, count: 40 }],
    [{ size: 8, stride: 5 }, { first: 29 }],
    [{ size: 8, stride: 5 }, { variant: 6, first: 0, count: 1 }],
    [{ size: 1, stride: 1 }, { variant: 5, first: 100, count: 3 }],
    [{ size: 29, stride: 4 }, { variant: 1 }],
  ])('ranges and odd sizes: %o %o', async (p, opts) => {
    await checkCrop(await gpu(), small, smallImage, p, opts);
  });

  it('reference: a shift moves the patch origin by (x, y) pixels', () => {
    const shifted = cropPatchesRef(smallImage, small, { size: 8, stride: 5 }, { first: 6 * 2 + 3, count: 1, shift: { x: -4, y: 3 } });
    const [x0, y0, i, j] = [15 - 4, 10 + 3, 4, 6];
    expect(shifted[(1 * 8 + i) * 8 + j]).toBe((smallImage[((y0 + i) * 37 + x0 + j) * 3 + 1] as number) / 255);
  });

  it.each<[PatchSpec, CropOptions]>([
    [{ size: 8, stride: 5 }, { variant: 5, first: 15, count: 1, shift: { x: -4, y: 3 } }],
    [{ size: 8, stride: 5 }, { variant: 2, first: 0, count: 1, shift: { x: 4, y: 4 } }],
    [{ size: 8, stride: 5 }, { variant: 1, first: 29, count: 1, shift: { x: -25, y: -20 } }],
    [{ size: 5, stride: 3 }, { variant: 7, first: 20, count: 9, shift: { x: 1, y: -2 } }],
  ])('shifted patches: %o %o', async (p, opts) => {
    await checkCrop(await gpu(), small, smallImage, p, opts);
  });

  it('rejects a shift that moves a patch out of the image, naming it', async () => {
    const rt = await gpu();
    const image = rt.upload(smallImage);
    // 37×29, size 8 stride 5: the last patch of a row lies at x 25..32, of a column at y 20..27.
    expect(() => cropPatches(rt, image, small, { size: 8, stride: 5 }, { first: 5, count: 1, shift: { x: 5, y: 0 } })).toThrow(/patch 5 shifted by \(5, 0\) lies at \(30, 0\), outside the 37×29 image/);
    expect(() => cropPatches(rt, image, small, { size: 8, stride: 5 }, { first: 0, count: 1, shift: { x: 0, y: -1 } })).toThrow(/patch 0 shifted by \(0, -1\)/);
    expect(() => cropPatches(rt, image, small, { size: 8, stride: 5 }, { first: 24, count: 6, shift: { x: 0, y: 2 } })).toThrow(/patch 24 shifted by \(0, 2\) lies at \(0, 22\)/);
    expect(() => cropPatches(rt, image, small, { size: 8, stride: 5 }, { first: 0, count: 1, shift: { x: 0.5, y: 0 } })).toThrow(/shift must be whole pixels/);
    rt.release(cropPatches(rt, image, small, { size: 8, stride: 5 }, { first: 24, count: 6, shift: { x: 0, y: 1 } })); // the last row, 1 pixel down: fits
    rt.release(image);
  });

  it('chunks the output over patches under a lowered binding limit (4 KiB)', async () => {
    const rt = await gpu({ maxBindingBytes: 4096 });
    let before = rt.counters.dispatches;
    await checkCrop(rt, small, smallImage, { size: 8, stride: 5 }, { variant: 7 });
    expect(rt.counters.dispatches - before).toBe(6);
    before = rt.counters.dispatches;
    await checkCrop(rt, small, smallImage, { size: 5, stride: 3 }, { variant: 2, first: 3 });
    expect(rt.counters.dispatches - before).toBe(Math.ceil((patchGrid(small, { size: 5, stride: 3 }).count - 3) / 12));
    const image = rt.upload(smallImage);
    expect(() => cropPatches(rt, image, small, { size: 20, stride: 5 })).toThrow(BindingLimitError);
    expect(() => cropPatches(rt, image, small, { size: 20, stride: 5 })).toThrow(/crop output patch \[3, 20, 20\] is 4\.9 KiB/);
    rt.release(image);
  });

  it('is bitwise repeatable', async () => {
    const rt = await gpu();
    const a = await checkCrop(rt, small, smallImage, { size: 8, stride: 5 }, { variant: 5 });
    const b = await checkCrop(rt, small, smallImage, { size: 8, stride: 5 }, { variant: 5 });
    expectBitwiseEqual(a, b);
  });

  it('rejects bad variants and ranges', async () => {
    const rt = await gpu();
    const image = rt.upload(smallImage);
    expect(() => cropPatches(rt, image, small, { size: 8, stride: 5 }, { variant: 8 })).toThrow(/variant must be 0\.\.7/);
    expect(() => cropPatches(rt, image, small, { size: 8, stride: 5 }, { first: 25, count: 6 })).toThrow(/patches \[25, 31\) are outside the 30 patches/);
    expect(() => patchGrid(small, { size: 8, stride: 0 })).toThrow(/stride must be a positive integer/);
    rt.release(image);
  });
});
