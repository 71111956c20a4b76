/**
 * The conv2d machinery the forward (conv2d_forward.ts) and data-gradient (conv2d_data_grad.ts)
 * launchers share: the uniform-memory ("direct") kernels and the GPU packing of weights for them,
 * the subgroup kernels, the lanes-over-pixels 1×1 kernel, and batch chunking over the storage
 * binding limit. Each wgsl/conv2d_*.wgsl header states its own index formula.
 */
import { defineKernel, flatWorkgroups, Uniforms, type KernelSpec } from './kernel.ts';
import { BindingLimitError, type Binding, type Runtime } from './runtime.ts';

const WG = 64;
/** Weights in uniform memory: one 64 KiB block of vec4 per dispatch. */
const UNIFORM_BLOCK_BYTES = 65536;
const UNIFORM_BLOCK_VEC4 = UNIFORM_BLOCK_BYTES / 16;
/**
 * Output-channel vec4 groups per tile. Measured on lavapipe (3×3 64→64 and 256→256, 2×2 s2): 4 beats
 * 16 or 64 — fewer groups fit more input channels in one 64 KiB block, so y is rewritten less often.
 */
const MAX_GROUPS = 4;
/** The subgroup kernels' workgroup: 8 lanes (one subgroup), 4 output channels each. */
const SG_LANES = 8;

const narrowKernel = defineKernel({ name: 'conv2d_fwd_1x1_narrow', shader: 'conv2d_fwd_1x1_narrow', bindings: ['read', 'read', 'read', 'write'], uniforms: true, constants: { WG } });
const packKernel = defineKernel({ name: 'conv2d_fwd_dx_pack', shader: 'conv2d_fwd_dx_pack', bindings: ['read', 'write'], uniforms: true, constants: { WG: 256 } });
/** The uniform block every direct (uniform-memory) kernel shares … */
const include = ['conv2d_direct_params'];
/** … and the output store of the forward kernels that write y with a bias. */
const forwardInclude = [...include, 'conv2d_direct_store'];
/** Uniform-memory kernels: bindings x, packed weights, bias, y (conv2d_dx_2x2s2 has no bias). */
export const directKernels = {
  fwd3x3: defineKernel({ name: 'conv2d_fwd_3x3', shader: 'conv2d_fwd_3x3', include: forwardInclude, bindings: ['read', 'uniform', 'read', 'write'], uniforms: true, constants: { WG } }),
  fwd2x2s2: defineKernel({ name: 'conv2d_fwd_2x2s2', shader: 'conv2d_fwd_2x2s2', include: forwardInclude, bindings: ['read', 'uniform', 'read', 'write'], uniforms: true, constants: { WG } }),
  fwd1x1: defineKernel({ name: 'conv2d_fwd_1x1', shader: 'conv2d_fwd_1x1', include, bindings: ['read', 'uniform', 'read', 'write'], uniforms: true, constants: { WG } }),
  dx2x2s2: defineKernel({ name: 'conv2d_dx_2x2s2', shader: 'conv2d_dx_2x2s2', include, bindings: ['read', 'uniform', 'write'], uniforms: true, constants: { WG } }),
};

/** How the subgroup kernels read their source: vec4 loads when its width is a multiple of 4, else f32. */
const SG_LOADS = {
  4: { XT: 'vec4<f32>', QUAD: 'x[(row + c.x) / 4u]' },
  1: { XT: 'f32', QUAD: 'vec4<f32>(x[row + c.x], x[row + c.y], x[row + c.z], x[row + c.w])' },
} as const;
/** 8-pixel segments per workgroup of a subgroup kernel: its 8 lanes split between them. */
type Segments = 1 | 2 | 4;
function subgroupKernel(name: string, bindings: KernelSpec['bindings'], includes: readonly string[], segments: Segments) {
  const variant = (width: 1 | 4) =>
    defineKernel({ name: `${name}${segments > 1 ? `_seg${segments}` : ''}${width === 4 ? '_vec4' : ''}`, shader: name, include: includes, bindings, uniforms: true, defines: { ...SG_LOADS[width], SEGS: segments } });
  return { 1: variant(1), 4: variant(4) } as const;
}
const bySegments = (name: string, bindings: KernelSpec['bindings'], includes: readonly string[]) =>
  ({ 1: subgroupKernel(name, bindings, includes, 1), 2: subgroupKernel(name, bindings, includes, 2), 4: subgroupKernel(name, bindings, includes, 4) });
/** The '2x2s2_sg' kernels (forward, data gradient) by segments per workgroup, each in its f32 and vec4 source-load forms. */
export const subgroupKernels = {
  fwd2x2s2: bySegments('conv2d_fwd_2x2s2_sg', ['read', 'uniform', 'read', 'write'], forwardInclude),
  dx2x2s2: bySegments('conv2d_dx_2x2s2_sg', ['read', 'uniform', 'write'], include),
};

/**
 * A subgroup kernel's segments per workgroup for `outC` channels produced: as many as leave no lane
 * idle (8 lanes = segments × vec4 channel groups); 1 from 17 channels up.
 */
export function subgroupSegments(outC: number): Segments {
  const groups = Math.ceil(outC / 4);
  return groups <= 2 ? 4 : groups <= 4 ? 2 : 1;
}

/**
 * Whether `rt` runs the subgroup kernels ('2x2s2_sg'): the WebGPU `subgroups` feature with subgroups
 * of at least 8 lanes (the 8 lanes of a workgroup must be one subgroup). lavapipe: 8.
 */
export function hasSubgroupsOf8(rt: Runtime): boolean {
  return rt.adapter.features.includes('subgroups') && (rt.adapter.subgroupMinSize ?? 0) >= SG_LANES;
}

/** Throws a RangeError naming the launcher when `rt` cannot run the subgroup kernels. */
export function assertSubgroupsOf8(rt: Runtime, launcher: string, variant: string): void {
  if (!hasSubgroupsOf8(rt)) {
    const size = rt.adapter.subgroupMinSize ? `, smallest subgroup ${rt.adapter.subgroupMinSize}` : '';
    throw new RangeError(`${launcher}: variant '${variant}' needs the WebGPU 'subgroups' feature with subgroups of at least ${SG_LANES} lanes (this device: ${rt.adapter.features.includes('subgroups') ? 'subgroups' : 'no subgroups'}${size})`);
  }
}

// ---- batch chunks ------------------------------------------------------------------------------

/** Batch items [n0, n0 + count) processed by one round of dispatches. */
export interface BatchChunk {
  n0: number;
  count: number;
}

/**
 * Splits a batch of `n` so that each tensor's slice of items (plus the ≤ 252 bytes that align its
 * binding offset down to 256) fits one storage binding. Throws a BindingLimitError naming the
 * tensor when one item alone does not fit.
 */
export function batchChunks(rt: Runtime, n: number, tensors: readonly { what: string; itemFloats: number }[]): BatchChunk[] {
  for (const t of tensors) rt.assertBindable(`${t.what} (one batch item)`, t.itemFloats * 4);
  const chunks: BatchChunk[] = [];
  for (let n0 = 0; n0 < n; ) {
    let count = n - n0;
    for (const t of tensors) {
      const itemBytes = t.itemFloats * 4;
      const slack = (n0 * itemBytes) % 256;
      count = Math.min(count, Math.floor((rt.maxBindingBytes - slack) / itemBytes));
      if (count < 1) throw new BindingLimitError(`${t.what} (one batch item, with 256-byte alignment)`, itemBytes + slack, rt.maxBindingBytes);
    }
    chunks.push({ n0, count });
    n0 += count;
  }
  return chunks;
}

/** The binding of items [n0, n0 + count) of an NCHW buffer, and the element offset of item n0 in it. */
export function itemsBinding(buffer: GPUBuffer, itemFloats: number, { n0, count }: BatchChunk): { binding: Binding; base: number } {
  const start = n0 * itemFloats * 4;
  const offset = Math.floor(start / 256) * 256;
  return { binding: { buffer, offset, size: start - offset + count * itemFloats * 4 }, base: (start - offset) / 4 };
}

/**
 * A new buffer of `n` items of `output`, made chunk by chunk (each chunk's items bindable in both
 * tensors): `each` dispatches one chunk, given the bindings of its items in `input` and the output.
 */
export function overBatchChunks(
  rt: Runtime,
  n: number,
  input: { buffer: GPUBuffer; itemFloats: number; what: string },
  output: { itemFloats: number; what: string },
  each: (inItems: { binding: Binding; base: number }, outItems: { binding: Binding; base: number }, chunk: BatchChunk) => void,
): GPUBuffer {
  const chunks = batchChunks(rt, n, [input, output]);
  const out = rt.alloc(n * output.itemFloats * 4, output.what);
  for (const chunk of chunks) each(itemsBinding(input.buffer, input.itemFloats, chunk), itemsBinding(out, output.itemFloats, chunk), chunk);
  return out;
}

// ---- uniform-memory kernels ----------------------------------------------------------------------

/** Weights rearranged by conv2d_fwd_dx_pack.wgsl into 64 KiB-bindable blocks [tile][chunk]. */
export interface PackedWeights {
  buffer: GPUBuffer;
  /** Output / input channels of the packed operator (swapped when transposed). */
  outC: number;
  inC: number;
  /** vec4 output-channel groups per tile (lanes per pixel group), tiles over output channels. */
  groups: number;
  tiles: number;
  /** Input channels per block, blocks per tile, bytes between blocks. */
  ciChunk: number;
  chunks: number;
  strideBytes: number;
}

/** OIHW weights w [cOut][cIn][taps] to pack; `transpose` swaps in and out channels (data gradient), `flip` reverses the taps (data gradient of s1 convs). */
export interface PackRequest {
  w: GPUBuffer;
  cOut: number;
  cIn: number;
  taps: number;
  transpose: boolean;
  flip: boolean;
}

/**
 * How a uniform-memory kernel uses its lanes: at most `maxGroups` vec4 output-channel groups per
 * tile, `pixelGroups(groups)` pixel groups per workgroup, input blocks a multiple of `ciMultiple`
 * channels (a kernel that reads channels in steps of 8 relies on zeros past the last one).
 */
export interface DirectLanes {
  maxGroups: number;
  pixelGroups(groups: number): number;
  ciMultiple: number;
}

/** conv2d_fwd_3x3 / _2x2s2 / _1x1 / conv2d_dx_2x2s2: 64 lanes, ≤ 4 lanes (vec4 groups) per pixel group. */
export const DIRECT_LANES: DirectLanes = { maxGroups: MAX_GROUPS, pixelGroups: (groups) => Math.floor(WG / groups), ciMultiple: 1 };
/**
 * The subgroup kernels: a workgroup of 8 lanes split between `segments` pixel groups, 8 / segments
 * vec4 groups each; input blocks a multiple of 8 channels (the data gradient reads 8 at a time).
 */
export function subgroupLanes(segments: 1 | 2 | 4): DirectLanes {
  return { maxGroups: SG_LANES / segments, pixelGroups: () => segments, ciMultiple: 8 };
}

/** Packs weights on the GPU for the uniform-memory kernels. The caller releases `buffer`. */
export function packWeights(rt: Runtime, { w, cOut, cIn, taps, transpose, flip }: PackRequest, lanes: DirectLanes = DIRECT_LANES): PackedWeights {
  const outC = transpose ? cIn : cOut;
  const inC = transpose ? cOut : cIn;
  const groupsTotal = Math.ceil(outC / 4);
  const groups = Math.min(groupsTotal, lanes.maxGroups);
  const tiles = Math.ceil(groupsTotal / groups);
  const maxCi = Math.floor(UNIFORM_BLOCK_VEC4 / (taps * groups) / lanes.ciMultiple) * lanes.ciMultiple;
  if (maxCi < 1) throw new RangeError(`packWeights: ${taps} taps × ${groups} groups do not fit a 64 KiB uniform block`);
  const m = lanes.ciMultiple;
  const ciChunk = Math.ceil(Math.ceil(inC / Math.ceil(inC / maxCi)) / m) * m;
  const chunks = Math.ceil(inC / ciChunk);
  const stride = Math.ceil((ciChunk * taps * groups) / 16) * 16;
  const total = tiles * chunks * stride;
  rt.assertBindable('conv2d packed weights', total * 16);
  rt.assertBindable('conv2d weight w', cOut * cIn * taps * 4);
  const buffer = rt.alloc((total - stride) * 16 + UNIFORM_BLOCK_BYTES, 'conv2d packed weights');
  rt.dispatch(packKernel, {
    bindings: [w, { buffer, offset: 0, size: total * 16 }],
    uniforms: new Uniforms()
      .u32(cOut, cIn, taps, transpose ? 1 : 0, flip ? 1 : 0, outC, inC, groups, ciChunk, chunks, stride, total),
    workgroups: flatWorkgroups(Math.ceil(total / 256), rt.maxWorkgroupsPerDimension),
  });
  return { buffer, outC, inC, groups, tiles, ciChunk, chunks, strideBytes: stride * 16 };
}

/** Source and result of a uniform-memory kernel: dims per batch item, and its pixel-group grid. */
export interface DirectGeometry {
  n: number;
  srcC: number;
  srcH: number;
  srcW: number;
  dstC: number;
  dstH: number;
  dstW: number;
  /** Pixel groups per item: rows × segs (a segment is 8 pixels). */
  rows: number;
  segs: number;
}

/** Names for BindingLimitError messages and the source buffer. */
export interface DirectIo {
  src: GPUBuffer;
  srcWhat: string;
  dstWhat: string;
}

/**
 * Packs the weights, then runs a uniform-memory kernel over the batch (chunked), every output-channel
 * tile and every input-channel block (the first block writes, later ones add: a fixed order).
 * Returns the new result.
 */
export function directConv(rt: Runtime, kernel: Readonly<KernelSpec>, pack: PackRequest, bias: GPUBuffer | null, g: DirectGeometry, io: DirectIo, lanes: DirectLanes = DIRECT_LANES): GPUBuffer {
  const srcFloats = g.srcC * g.srcH * g.srcW;
  const dstFloats = g.dstC * g.dstH * g.dstW;
  const chunks = batchChunks(rt, g.n, [{ what: io.srcWhat, itemFloats: srcFloats }, { what: io.dstWhat, itemFloats: dstFloats }]);
  const packed = packWeights(rt, pack, lanes);
  const dst = rt.alloc(g.n * dstFloats * 4, io.dstWhat);
  const perGroup = lanes.pixelGroups(packed.groups);
  const withBias = kernel.bindings.length === 4;
  for (const chunk of chunks) {
    const x = itemsBinding(io.src, srcFloats, chunk);
    const y = itemsBinding(dst, dstFloats, chunk);
    const workgroups = flatWorkgroups(Math.ceil((chunk.count * g.rows * g.segs) / perGroup), rt.maxWorkgroupsPerDimension);
    for (let tile = 0; tile < packed.tiles; tile++) {
      for (let c = 0; c < packed.chunks; c++) {
        const ci0 = c * packed.ciChunk;
        const uniforms = new Uniforms()
          .u32(g.srcC, g.srcH, g.srcW, g.dstC, g.dstH, g.dstW, x.base, y.base)
          .u32(chunk.count, g.rows, g.segs, ci0, Math.min(packed.ciChunk, packed.inC - ci0), tile * packed.groups * 4, packed.groups, c > 0 ? 1 : 0)
          .u32(bias ? 1 : 0, 0, 0, 0);
        const wts = { buffer: packed.buffer, offset: (tile * packed.chunks + c) * packed.strideBytes, size: UNIFORM_BLOCK_BYTES };
        const bindings = withBias ? [x.binding, wts, bias ?? x.binding, y.binding] : [x.binding, wts, y.binding];
        rt.dispatch(kernel, { bindings, uniforms, workgroups });
      }
    }
  }
  rt.release(packed.buffer);
  return dst;
}

// ---- the narrow 1×1 kernel -------------------------------------------------------------------

/** A 1×1 conv as y[o] = Σ_c w[o·wso + c·wsi] · x[c] per pixel; wso/wsi = cIn/1 forward, 1/cOut for Wᵀ. */
export interface NarrowShape {
  n: number;
  cIn: number;
  cOut: number;
  plane: number;
  wso: number;
  wsi: number;
}

/** The lanes-over-pixels 1×1 kernel (few output channels). Returns the new result. */
export function conv1x1Narrow(rt: Runtime, x: GPUBuffer, w: GPUBuffer, b: GPUBuffer | null, s: NarrowShape, io: DirectIo): GPUBuffer {
  const xFloats = s.cIn * s.plane;
  const yFloats = s.cOut * s.plane;
  rt.assertBindable('conv2d weight w', s.cIn * s.cOut * 4);
  const chunks = batchChunks(rt, s.n, [{ what: io.srcWhat, itemFloats: xFloats }, { what: io.dstWhat, itemFloats: yFloats }]);
  const y = rt.alloc(s.n * yFloats * 4, io.dstWhat);
  const quads = Math.ceil(s.plane / 4);
  for (const chunk of chunks) {
    const xb = itemsBinding(x, xFloats, chunk);
    const yb = itemsBinding(y, yFloats, chunk);
    const [gx, gy] = flatWorkgroups(Math.ceil((chunk.count * quads) / WG), rt.maxWorkgroupsPerDimension);
    rt.dispatch(narrowKernel, {
      bindings: [xb.binding, w, b ?? w, yb.binding],
      uniforms: new Uniforms().u32(s.cIn, s.cOut, s.plane, chunk.count, xb.base, yb.base, s.wso, s.wsi, quads, b ? 1 : 0),
      workgroups: [gx, gy, Math.ceil(s.cOut / 4)],
    });
  }
  return y;
}
