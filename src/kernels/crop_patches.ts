/**
 * Cuts square patches out of an RGB8 image on the GPU (wgsl/crop_patches.wgsl), as the write-up's
 * ExtractPatches (MODEL-SPEC "Patch extraction"): patches per row floor((W − size)/stride) + 1, per
 * column likewise, listed y outer, x inner; output [count, 3, size, size] f32 in [0, 1] (byte / 255),
 * optionally in one of the 8 dihedral variants used for augmentation and test-time voting.
 * The output is written in chunks of whole patches that fit one storage binding.
 */
import { defineKernel, flatWorkgroups, Uniforms } from './kernel.ts';
import { roundUp } from './pool.ts';
import type { Runtime } from './runtime.ts';

/** Image size in pixels. */
export interface ImageSize {
  width: number;
  height: number;
}

/** Patch side and step between patch origins, in pixels. */
export interface PatchSpec {
  size: number;
  stride: number;
}

/** Which patches and which dihedral variant: v & 3 quarter turns counter-clockwise, v & 4 then a horizontal flip. */
export interface CropOptions {
  variant?: number;
  first?: number;
  count?: number;
  /** Pixels added to every patch's grid origin (random-crop augmentation); each moved patch must lie inside the image. */
  shift?: { x: number; y: number };
}

const WG = 256;
const cropKernel = defineKernel({ name: 'crop_patches', shader: 'crop_patches', bindings: ['read', 'write'], uniforms: true, constants: { WG } });

function positiveInteger(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`crop: ${what} must be a positive integer, got ${value}`);
}

/** The patch grid of ExtractPatches: patches per row (along x), per column (along y) and in all. */
export function patchGrid(img: ImageSize, p: PatchSpec): { perRow: number; perColumn: number; count: number } {
  positiveInteger('width', img.width);
  positiveInteger('height', img.height);
  positiveInteger('patch size', p.size);
  positiveInteger('stride', p.stride);
  const perRow = Math.max(0, Math.floor((img.width - p.size) / p.stride) + 1);
  const perColumn = Math.max(0, Math.floor((img.height - p.size) / p.stride) + 1);
  return { perRow, perColumn, count: perRow * perColumn };
}

/** Top-left pixel of patch `q` of a grid with `perRow` patches per row (y outer, x inner). */
export function patchOrigin(q: number, perRow: number, stride: number): { x: number; y: number } {
  return { x: (q % perRow) * stride, y: Math.floor(q / perRow) * stride };
}

function resolve(img: ImageSize, p: PatchSpec, opts: CropOptions): { perRow: number; variant: number; first: number; count: number; shift: { x: number; y: number } } {
  const grid = patchGrid(img, p);
  const { variant = 0, first = 0, shift = { x: 0, y: 0 } } = opts;
  const count = opts.count ?? grid.count - first;
  if (!Number.isInteger(variant) || variant < 0 || variant > 7) throw new RangeError(`crop: variant must be 0..7, got ${variant}`);
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > grid.count) {
    throw new RangeError(`crop: patches [${first}, ${first + count}) are outside the ${grid.count} patches of a ${img.width}×${img.height} image`);
  }
  if (!Number.isInteger(shift.x) || !Number.isInteger(shift.y)) throw new RangeError(`crop: shift must be whole pixels, got (${shift.x}, ${shift.y})`);
  if (shift.x !== 0 || shift.y !== 0) {
    for (let q = first; q < first + count; q++) {
      const origin = patchOrigin(q, grid.perRow, p.stride);
      const [x, y] = [origin.x + shift.x, origin.y + shift.y];
      if (x < 0 || y < 0 || x + p.size > img.width || y + p.size > img.height) {
        throw new RangeError(`crop: patch ${q} shifted by (${shift.x}, ${shift.y}) lies at (${x}, ${y}), outside the ${img.width}×${img.height} image`);
      }
    }
  }
  return { perRow: grid.perRow, variant, first, count, shift };
}

/**
 * Patches `first .. first + count` (default: all) of an RGB8 interleaved image (a buffer of
 * width·height·3 bytes, padded to 4) as f32 [count, 3, size, size]. Returns a new buffer.
 */
export function cropPatches(rt: Runtime, image: GPUBuffer, img: ImageSize, p: PatchSpec, opts: CropOptions = {}): GPUBuffer {
  const { perRow, variant, first, count, shift } = resolve(img, p, opts);
  const imageBytes = roundUp(img.width * img.height * 3, 4);
  rt.assertBindable(`crop image ${img.width}×${img.height} RGB8`, imageBytes);
  const patchBytes = 12 * p.size * p.size;
  const slack = patchBytes % 256 === 0 ? 0 : 252;
  rt.assertBindable(`crop output patch [3, ${p.size}, ${p.size}]`, patchBytes + slack);
  const perChunk = Math.floor((rt.maxBindingBytes - slack) / patchBytes);
  const out = rt.alloc(count * patchBytes, `crop patches [${count}, 3, ${p.size}, ${p.size}]`);
  for (let start = 0; start < count; start += perChunk) {
    const n = Math.min(perChunk, count - start);
    const byteStart = start * patchBytes;
    const offset = Math.floor(byteStart / 256) * 256;
    rt.dispatch(cropKernel, {
      bindings: [{ buffer: image, size: imageBytes }, { buffer: out, offset, size: byteStart - offset + n * patchBytes }],
      uniforms: new Uniforms()
        .u32(img.width, img.height, p.size, p.stride, perRow, first + start, n, variant, (byteStart - offset) / 4)
        .i32(shift.x, shift.y)
        .u32(0),
      workgroups: flatWorkgroups(Math.ceil((n * p.size * p.size) / WG), rt.maxWorkgroupsPerDimension),
    });
  }
  return out;
}

/** The same patches in float64 from the image bytes: the reference for cropPatches. */
export function cropPatchesRef(image: Uint8Array, img: ImageSize, p: PatchSpec, opts: CropOptions = {}): Float64Array {
  const { perRow, variant, first, count, shift } = resolve(img, p, opts);
  const s = p.size;
  const out = new Float64Array(count * 3 * s * s);
  for (let k = 0; k < count; k++) {
    const origin = patchOrigin(first + k, perRow, p.stride);
    const [x0, y0] = [origin.x + shift.x, origin.y + shift.y];
    for (let i = 0; i < s; i++) {
      for (let jOut = 0; jOut < s; jOut++) {
        const j = variant & 4 ? s - 1 - jOut : jOut;
        const [r, c] = [
          [i, j],
          [j, s - 1 - i],
          [s - 1 - i, s - 1 - j],
          [s - 1 - j, i],
        ][variant & 3] as [number, number];
        const src = ((y0 + r) * img.width + x0 + c) * 3;
        for (let ch = 0; ch < 3; ch++) out[((k * 3 + ch) * s + i) * s + jOut] = (image[src + ch] as number) / 255;
      }
    }
  }
  return out;
}
