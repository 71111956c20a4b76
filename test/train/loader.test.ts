/**
 * Streaming loaders: every patch of every image exactly once per epoch with the right pixels
 * (crop and colour references), the ExtractPatches counts, a sequence that is a pure function of
 * (seed, epoch), flat memory over an epoch with more images than the decode window, and
 * imagePatches in raster order, also of the whole image turned for test-time augmentation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cropPatchesRef, patchGrid } from '../../src/kernels/crop_patches.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { TINY_CONFIG, type ModelConfig } from '../../src/nn/config.ts';
import { augmentColourRef } from '../../src/train/augment.ts';
import type { DatasetImage } from '../../src/train/dataset.ts';
import { jitterShift } from '../../src/train/patch_plan.ts';
import { imagePatches, PatchBatches, variantPatchOrder, type PatchBatch, type PatchBatchOptions } from '../../src/train/loader.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';

/** 24² images, 8² patches: 5×5 = 25 Level-1 patches at stride 4, 3×3 = 9 at the Level-2 stride 8. */
const config: ModelConfig = { ...TINY_CONFIG, imageSize: 24, patch: { size: 8, stride: 4 }, level2: { ...TINY_CONFIG.level2, patchStride: 8 } };
const S = config.imageSize;
const P = 25;
const dir = mkdtempSync(join(tmpdir(), 'lungpath-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function noise(length: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  return Uint8Array.from({ length }, () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24);
}

const N = 10;
const pixels: Uint8Array[] = [];
const images: DatasetImage[] = [];
beforeAll(async () => {
  for (let i = 0; i < N; i++) {
    const rgb = noise(S * S * 3, i + 1);
    const path = join(dir, `img${i}.png`);
    await sharp(rgb, { raw: { width: S, height: S, channels: 3 } }).png().toFile(path);
    pixels.push(rgb);
    images.push({ path, label: i % 3 === 0 ? 1 : 0, className: i % 3 === 0 ? 'B' : 'A' });
  }
});

const options = (o: Partial<PatchBatchOptions> = {}): PatchBatchOptions => ({ batchSize: 16, seed: 5, epoch: 0, augment: false, groupImages: 3, prefetch: 3, onMismatch: 'refuse', ...o });

/** Reads every batch (x as f32), releasing the GPU buffers; `each` sees the batch before release. */
async function drain(loader: PatchBatches, each?: (b: PatchBatch, x: Float32Array) => void): Promise<{ batches: PatchBatch[]; xs: Float32Array[] }> {
  const batches: PatchBatch[] = [];
  const xs: Float32Array[] = [];
  for await (const batch of loader) {
    expect(Array.from(await batch.x.rt.readU32(batch.labels, batch.labelsCpu.length))).toEqual(Array.from(batch.labelsCpu));
    const x = await batch.x.read();
    each?.(batch, x);
    batch.x.release();
    batch.x.rt.release(batch.labels);
    batches.push(batch);
    xs.push(x);
  }
  return { batches, xs };
}

/** The expected pixels of patch k of image i (variant, colour factors and jitter when augmented). */
function expectedPatch(i: number, k: number, variant = 0, factors?: ArrayLike<number>, jitter?: ArrayLike<number>): Float64Array {
  const grid = { width: S, height: S, ...config.patch, perRow: patchGrid({ width: S, height: S }, config.patch).perRow };
  const shift = jitter ? jitterShift(k, jitter[0]!, jitter[1]!, grid) : { x: 0, y: 0 };
  const patch = cropPatchesRef(pixels[i]!, { width: S, height: S }, config.patch, { variant, first: k, count: 1, shift });
  return factors ? augmentColourRef(patch, 1, config.patch.size, factors) : patch;
}

function checkBatchPixels(b: PatchBatch, x: Float32Array): void {
  const n = 3 * config.patch.size ** 2;
  for (let j = 0; j < b.labelsCpu.length; j++) {
    const expected = expectedPatch(b.imageIndex[j]!, b.patchIndex[j]!, b.variant?.[j], b.factors?.subarray(3 * j, 3 * j + 3), b.jitter?.subarray(2 * j, 2 * j + 2));
    expectClose(x.subarray(j * n, (j + 1) * n), expected, { atol: 2e-6, rtol: 0 }, `patch ${j} (image ${b.imageIndex[j]}, patch ${b.patchIndex[j]})`);
  }
}

/** Each (image, patch) pair exactly once, with the image's label. */
function checkCoverage(batches: PatchBatch[]): void {
  const seen = new Set<number>();
  for (const b of batches) {
    b.imageIndex.forEach((i, j) => {
      seen.add(i * P + b.patchIndex[j]!);
      expect(b.labelsCpu[j]).toBe(images[i]!.label);
    });
  }
  expect(seen.size).toBe(N * P);
  expect(batches.reduce((acc, b) => acc + b.labelsCpu.length, 0)).toBe(N * P);
}

describe('PatchBatches', () => {
  it('without shuffling: images in order, patches in raster order, every patch as cropPatchesRef cuts it', async () => {
    const loader = new PatchBatches(await gpu(), images, config, options({ shuffle: false }));
    expect([loader.patchesPerImage, loader.batchesPerEpoch]).toEqual([patchGrid({ width: S, height: S }, config.patch).count, Math.ceil((N * P) / 16)]);
    const { batches } = await drain(loader, checkBatchPixels);
    expect(batches.map((b) => b.labelsCpu.length)).toEqual([...Array(15).fill(16), 10]);
    expect(batches.flatMap((b) => Array.from(b.imageIndex, (i, j) => i * P + b.patchIndex[j]!))).toEqual(Array.from({ length: N * P }, (_, q) => q));
    expect(batches[0]!.variant).toBeUndefined();
  });

  it('augmented and shuffled: each patch once, with its own variant and colour factors', async () => {
    const loader = new PatchBatches(await gpu(), images, config, options({ augment: true, batchSize: 7 }));
    const { batches } = await drain(loader, checkBatchPixels);
    expect(batches).toHaveLength(loader.batchesPerEpoch);
    checkCoverage(batches);
    const variants = new Set(batches.flatMap((b) => Array.from(b.variant!)));
    expect(variants.size).toBe(8);
    const factors = batches.flatMap((b) => Array.from(b.factors!));
    expect(Math.min(...factors) >= 1 && Math.max(...factors) < 2).toBe(true);
    // Shuffled across the window: the first batch mixes images.
    expect(new Set(batches[0]!.imageIndex).size).toBeGreaterThan(1);
  });

  it('is a pure function of (seed, epoch): same labels and the same bits; another epoch differs', async () => {
    const rt = await gpu();
    const run = (o: Partial<PatchBatchOptions>) => drain(new PatchBatches(rt, images, config, options({ augment: true, batchSize: 12, ...o })));
    const a = await run({ epoch: 3 });
    const b = await run({ epoch: 3, prefetch: 1 });
    expect(b.batches.map((x) => Array.from(x.labelsCpu))).toEqual(a.batches.map((x) => Array.from(x.labelsCpu)));
    expect(b.batches.map((x) => Array.from(x.imageIndex))).toEqual(a.batches.map((x) => Array.from(x.imageIndex)));
    a.xs.forEach((x, i) => expectBitwiseEqual(b.xs[i]!, x, `batch ${i}`));
    const c = await run({ epoch: 4 });
    expect(c.batches.map((x) => Array.from(x.imageIndex))).not.toEqual(a.batches.map((x) => Array.from(x.imageIndex)));
  });

  it('startBatch gives the same batches as the tail of a whole epoch, without decoding images it does not need', async () => {
    const rt = await gpu();
    const o = options({ augment: true, batchSize: 7, epoch: 2, groupImages: 2, prefetch: 1 });
    const whole = await drain(new PatchBatches(rt, images, config, o));
    // 7·k patches skipped: inside the first window (k = 3), in the third (k = 16), the last batch, past the end.
    for (const start of [3, 16, whole.batches.length - 1, whole.batches.length]) {
      const before = rt.poolStats().inUseBytes;
      const loader = new PatchBatches(rt, images, config, { ...o, startBatch: start });
      const tail = await drain(loader);
      expect(rt.poolStats().inUseBytes, `start ${start}: buffers released`).toBe(before);
      expect(tail.batches.map((b) => Array.from(b.imageIndex)), `start ${start}`).toEqual(whole.batches.slice(start).map((b) => Array.from(b.imageIndex)));
      expect(tail.batches.map((b) => Array.from(b.patchIndex))).toEqual(whole.batches.slice(start).map((b) => Array.from(b.patchIndex)));
      expect(tail.batches.map((b) => Array.from(b.factors!))).toEqual(whole.batches.slice(start).map((b) => Array.from(b.factors!)));
      tail.xs.forEach((x, i) => expectBitwiseEqual(x, whole.xs[start + i]!, `start ${start}, batch ${start + i}`));
      // Only the images that still have a patch to cut are decoded.
      const needed = new Set(whole.batches.slice(start).flatMap((b) => Array.from(b.imageIndex))).size;
      expect(loader.stats.imagesDecoded, `start ${start}: images decoded`).toBe(needed);
      if (start >= 16) expect(needed).toBeLessThan(N);
    }
  });

  it('keeps memory flat over an epoch with more images than the decode window', async () => {
    const rt = await gpu();
    const imageBytes = S * S * 3;
    const loader = new PatchBatches(rt, [...images, ...images, ...images], config, options({ augment: true, batchSize: 9, groupImages: 2, prefetch: 2 }));
    const before = rt.poolStats().inUseBytes;
    const inUse: number[] = [];
    let batches = 0;
    for await (const batch of loader) {
      inUse.push(rt.poolStats().inUseBytes - before);
      batch.x.release();
      rt.release(batch.labels);
      batches++;
    }
    expect(batches).toBe(loader.batchesPerEpoch);
    expect(rt.poolStats().inUseBytes).toBe(before);
    const s = loader.stats;
    expect(s.imagesDecoded).toBe(3 * N);
    expect([s.decodesInFlight, s.decodedBytes, s.residentImageBytes]).toEqual([0, 0, 0]);
    expect(s.peakDecodesInFlight).toBeLessThanOrEqual(2 + 1);
    expect(s.peakDecodedBytes).toBeLessThanOrEqual((2 + 1) * imageBytes);
    // At most one window plus the images of the patches left over from the previous one.
    expect(s.peakResidentImageBytes).toBeLessThanOrEqual(4 * Math.ceil(imageBytes / 16) * 16);
    const batchBytes = 9 * 3 * 64 * 4 + 64;
    expect(Math.max(...inUse)).toBeLessThanOrEqual(s.peakResidentImageBytes + batchBytes);
    expect(Math.max(...inUse.slice(-10))).toBeLessThanOrEqual(Math.max(...inUse.slice(0, 10)));
  });

  it('pool order: each patch once with the right pixels, resumable, at most pool + batch images resident', async () => {
    const rt = await gpu();
    const o = options({ augment: true, batchSize: 7, epoch: 1, poolImages: 3, prefetch: 2 });
    const whole = await drain(new PatchBatches(rt, images, config, o), checkBatchPixels);
    checkCoverage(whole.batches);
    const imageBytes = Math.ceil((S * S * 3) / 16) * 16;
    for (const start of [5, 20]) {
      const loader = new PatchBatches(rt, images, config, { ...o, startBatch: start });
      const tail = await drain(loader);
      expect(tail.batches.map((b) => Array.from(b.imageIndex))).toEqual(whole.batches.slice(start).map((b) => Array.from(b.imageIndex)));
      tail.xs.forEach((x, i) => expectBitwiseEqual(x, whole.xs[start + i]!, `start ${start}, batch ${start + i}`));
      expect(loader.stats.peakResidentImageBytes).toBeLessThanOrEqual((3 + 7) * imageBytes);
    }
    // Batches mix the pool: more distinct images per batch than a window of 3 images would allow early on.
    expect(new Set(whole.batches[0]!.imageIndex).size).toBeGreaterThan(1);
  });

  it('random crops (jitter): each patch moved by its drawn shift, kept inside the image; resumable; without augmentation the grid', async () => {
    const rt = await gpu();
    // 24² images, 8² patches at stride 4: origins 0..16, so a jitter of 6 reaches past the border and is clamped.
    const o = options({ augment: true, batchSize: 7, epoch: 2, poolImages: 4, jitter: 6 });
    const whole = await drain(new PatchBatches(rt, images, config, o), checkBatchPixels);
    checkCoverage(whole.batches);
    const drawn = whole.batches.flatMap((b) => Array.from(b.jitter!));
    expect([Math.min(...drawn), Math.max(...drawn)]).toEqual([-6, 6]);
    const tail = await drain(new PatchBatches(rt, images, config, { ...o, startBatch: 9 }));
    tail.xs.forEach((x, i) => expectBitwiseEqual(x, whole.xs[9 + i]!, `batch ${9 + i}`));
    // The same plan without jitter: the same patches and variants, different pixels where a patch moved.
    const still = await drain(new PatchBatches(rt, images, config, { ...o, jitter: 0 }));
    expect(still.batches.map((b) => Array.from(b.variant!))).toEqual(whole.batches.map((b) => Array.from(b.variant!)));
    expect(still.batches[0]!.jitter).toBeUndefined();
    expect(still.xs.some((x, i) => x.some((v, k) => v !== whole.xs[i]![k]))).toBe(true);
    const plain = await drain(new PatchBatches(rt, images, config, options({ augment: false, shuffle: false, jitter: 6 })), checkBatchPixels);
    expect(plain.batches[0]!.jitter).toBeUndefined();
  });

  it('releases its image buffers when the consumer stops early', async () => {
    const rt = await gpu();
    const before = rt.poolStats().inUseBytes;
    for await (const batch of new PatchBatches(rt, images, config, options({ batchSize: 4 }))) {
      batch.x.release();
      rt.release(batch.labels);
      break;
    }
    expect(rt.poolStats().inUseBytes).toBe(before);
  });

  it('rethrows a decode error with the file name; passes resize warnings on', async () => {
    const rt = await gpu();
    const broken = join(dir, 'broken.png');
    writeFileSync(broken, (await sharp(pixels[0]!, { raw: { width: S, height: S, channels: 3 } }).png().toBuffer()).subarray(0, 500));
    const bad = [images[0]!, images[1]!, { path: broken, label: 0, className: 'A' }, images[2]!];
    await expect(drain(new PatchBatches(rt, bad, config, options({ shuffle: false, groupImages: 1, prefetch: 2 })))).rejects.toThrow(`${broken}: corrupt or truncated image`);
    const wide = join(dir, 'wide.png');
    await sharp(noise(30 * 26 * 3, 9), { raw: { width: 30, height: 26, channels: 3 } }).png().toFile(wide);
    const warnings: string[] = [];
    const { batches } = await drain(new PatchBatches(rt, [{ path: wide, label: 1, className: 'B' }], config, options({ onMismatch: 'resize', warn: (m) => warnings.push(m) })));
    expect(batches.reduce((acc, b) => acc + b.labelsCpu.length, 0)).toBe(P);
    expect(warnings).toEqual([`${wide}: image is 30×26, resized to 24×24`]);
  });
});

describe('imagePatches', () => {
  async function collect(rt: Runtime, o: Parameters<typeof imagePatches>[3]) {
    const out: { index: number; patches: Float32Array; level1?: Float32Array; shape: readonly number[] }[] = [];
    for await (const item of imagePatches(rt, images.slice(0, 3), config, { onMismatch: 'refuse', ...o })) {
      out.push({ index: item.index, patches: await item.patches.read(), level1: await item.level1Patches?.read(), shape: item.patches.shape });
      item.patches.release();
      item.level1Patches?.release();
    }
    return out;
  }

  it('yields each image\'s Level-2 patches (and Level-1 patches) in raster order', async () => {
    const rt = await gpu();
    const before = rt.poolStats().inUseBytes;
    const out = await collect(rt, { level1: true, prefetch: 1 });
    expect(out.map((o) => o.index)).toEqual([0, 1, 2]);
    for (const o of out) {
      expect(o.shape).toEqual([9, 3, 8, 8]);
      expectClose(o.patches, cropPatchesRef(pixels[o.index]!, { width: S, height: S }, { size: 8, stride: 8 }), { atol: 1e-7, rtol: 0 });
      expectClose(o.level1!, cropPatchesRef(pixels[o.index]!, { width: S, height: S }, config.patch), { atol: 1e-7, rtol: 0 });
    }
    expect(rt.poolStats().inUseBytes).toBe(before);
  });

  it.each([1, 2, 3, 4, 6, 7])('variant %i gives the patches of the whole image turned the same way', async (variant) => {
    const out = await collect(await gpu(), { variant, stride: 8 });
    for (const o of out) {
      // The whole image turned by the reference (one patch the size of the image), back to RGB8.
      const planar = cropPatchesRef(pixels[o.index]!, { width: S, height: S }, { size: S, stride: S }, { variant });
      const turned = Uint8Array.from({ length: S * S * 3 }, (_, q) => Math.round(planar[(q % 3) * S * S + Math.floor(q / 3)]! * 255));
      expectClose(o.patches, cropPatchesRef(turned, { width: S, height: S }, { size: 8, stride: 8 }), { atol: 1e-7, rtol: 0 }, `variant ${variant}`);
    }
  });

  it('variantPatchOrder is a permutation; identity for variant 0; asymmetric grids are refused', async () => {
    for (let v = 0; v < 8; v++) expect([...variantPatchOrder(4, v)].sort((a, b) => a - b)).toEqual([...Array(16).keys()]);
    expect([...variantPatchOrder(3, 0)]).toEqual([...Array(9).keys()]);
    await expect(collect(await gpu(), { variant: 1, stride: 7 })).rejects.toThrow(/divisible by the stride 7/);
  });
});
