/**
 * BatchNorm2d on the GPU, forward (training and eval) and backward, PyTorch semantics; the maths
 * and the CPU references are in batchnorm2d_ref.ts, the kernels in wgsl/batchnorm2d_*.wgsl.
 *
 * Statistics are reduced in two deterministic stages (no atomics): per tile (≤ 4096 floats) of
 * one (sample, channel) plane a partial (mean, M2, count) from shifted sums, then per channel a
 * fixed-order Chan merge; the backward sums Σdy and Σdy·x̂ the same way. One workgroup per tile,
 * so the channel is a workgroup constant; vec4 loads when H·W is a multiple of 4. Tensors larger
 * than one storage binding are processed in chunks of whole samples; partials are indexed by
 * (channel, sample, tile), so a chunked run computes bit for bit what an unchunked one does.
 *
 * BatchNorm followed by ReLU can be fused (`relu: true`): the forward writes ReLU(y) from the
 * element pass, and the backward, given that output, masks dy where it is ≤ 0 inside its two
 * element passes — no ReLU pass, no masked-dy buffer, the same bits as the unfused pair.
 */
import { BATCHNORM_EPS, BATCHNORM_MOMENTUM, checkBatchNormShape, type BatchNormOptions, type BatchNormShape } from './batchnorm2d_ref.ts';
import { defineKernel, flatWorkgroups, Uniforms, type StorageAccess } from './kernel.ts';
import type { Binding, Runtime } from './runtime.ts';

export {
  batchNorm2dBackwardRef,
  batchNorm2dEvalStatsRef,
  batchNorm2dForwardEvalRef,
  batchNorm2dForwardTrainRef,
  type BatchNormOptions,
  type BatchNormShape,
} from './batchnorm2d_ref.ts';

const WG_TILE = 64;
const WG_CHANNEL = 64;
/** Floats per tile: one workgroup reduces at most this many floats of one plane. */
const TILE_MAX = 4096;

type Width = 1 | 4;
const VARIANTS: Record<Width, Record<string, string | number>> = {
  1: { T: 'f32', WIDTH: 1, TOTAL: 'v' },
  4: { T: 'vec4<f32>', WIDTH: 4, TOTAL: '(v.x + v.y) + (v.z + v.w)' },
};

/**
 * A per-tile kernel in its two variants: f32 loads, and vec4 loads when H·W is a multiple of 4.
 * `defines` and `suffix` make a further compile-time variant (the fused-ReLU ones: `_relu`).
 */
function tileKernel(name: string, bindings: readonly StorageAccess[], defines: Record<string, string> = {}, suffix = '') {
  const variant = (width: Width) =>
    defineKernel({
      name: `${name}${suffix}${width === 4 ? '_vec4' : ''}`,
      shader: name,
      include: ['batchnorm2d_common', 'batchnorm2d_tiles'],
      bindings,
      uniforms: true,
      constants: { WG: WG_TILE },
      defines: { ...VARIANTS[width], ...defines },
    });
  return { 1: variant(1), 4: variant(4) } as const;
}
function channelKernel(name: string, bindings: readonly StorageAccess[]) {
  return defineKernel({ name, shader: name, include: ['batchnorm2d_common'], bindings, uniforms: true, constants: { WG: WG_CHANNEL } });
}
type TileKernel = ReturnType<typeof tileKernel>;

// ReLU as relu.wgsl computes it (select keeps NaN and −0), and its backward mask on the output y.
const RELU = 'select(v, T(0.0), v < T(0.0))';
const MASKED_DY = 'select(T(0.0), dy[i], y[i] > T(0.0))';

const statsKernel = tileKernel('batchnorm2d_stats', ['read', 'write']);
const normalizeBindings: StorageAccess[] = ['read', 'read', 'read', 'read', 'read', 'write'];
const normalizeKernel = tileKernel('batchnorm2d_normalize', normalizeBindings, { ACT: 'v' });
const normalizeReluKernel = tileKernel('batchnorm2d_normalize', normalizeBindings, { ACT: RELU }, '_relu');
const gradBindings: StorageAccess[] = ['read', 'read', 'read', 'write'];
const gradPartialKernel = tileKernel('batchnorm2d_grad_partial', gradBindings, { DY: 'dy[i]' });
const gradPartialReluKernel = tileKernel('batchnorm2d_grad_partial', [...gradBindings, 'read'], { DY: MASKED_DY }, '_relu');
const dxKernel = tileKernel('batchnorm2d_dx', gradBindings, { DY: 'dy[i]' });
const dxReluKernel = tileKernel('batchnorm2d_dx', [...gradBindings, 'read'], { DY: MASKED_DY }, '_relu');
const statsFinalizeKernel = channelKernel('batchnorm2d_stats_finalize', ['read', 'write', 'write', 'write', 'write']);
const evalStatsKernel = channelKernel('batchnorm2d_eval_stats', ['read', 'read', 'write', 'write']);
const gradFinalizeKernel = channelKernel('batchnorm2d_grad_finalize', ['read', 'read', 'read', 'read', 'write', 'write', 'write']);

/** Samples [n0, n0 + nb) bound as bytes [offsetBytes, offsetBytes + sizeBytes); sample n0 starts `base` floats in. */
interface BatchChunk {
  n0: number;
  nb: number;
  offsetBytes: number;
  sizeBytes: number;
  base: number;
}

/** How a shape is cut: tiles of at most TILE_MAX floats per plane, then chunks of whole samples. */
interface Layout {
  s: BatchNormShape;
  hw: number;
  width: Width;
  tile: number;
  tiles: number;
  /** Partials per channel: n·tiles. */
  parts: number;
  chunks: BatchChunk[];
}

function layoutOf(rt: Runtime, s: BatchNormShape): Layout {
  checkBatchNormShape(s);
  const hw = s.h * s.w;
  const width: Width = hw % 4 === 0 ? 4 : 1;
  const tile = Math.min(TILE_MAX, hw);
  const tiles = Math.ceil(hw / tile);
  const sample = s.c * hw;
  const slackBytes = sample % 64 === 0 ? 0 : 252;
  const perChunk = Math.floor((rt.maxBindingBytes - slackBytes) / (sample * 4));
  if (perChunk < 1) rt.assertBindable(`BatchNorm2d input sample (${s.c}×${s.h}×${s.w} floats, plus binding alignment)`, sample * 4 + slackBytes);
  const chunks: BatchChunk[] = [];
  for (let n0 = 0; n0 < s.n; n0 += perChunk) {
    const nb = Math.min(perChunk, s.n - n0);
    const start = n0 * sample;
    const aligned = start - (start % 64);
    chunks.push({ n0, nb, offsetBytes: aligned * 4, base: start - aligned, sizeBytes: (start - aligned + nb * sample) * 4 });
  }
  const parts = s.n * tiles;
  rt.assertBindable('BatchNorm2d partial statistics', s.c * parts * 16);
  return { s, hw, width, tile, tiles, parts, chunks };
}

function params(l: Layout, chunk: BatchChunk | null, training: boolean, eps = BATCHNORM_EPS, momentum = BATCHNORM_MOMENTUM): Uniforms {
  const { s } = l;
  return new Uniforms()
    .u32(l.hw, s.c, (chunk?.nb ?? 0) * s.c, l.tiles, l.tile, chunk?.base ?? 0, s.n, chunk?.n0 ?? 0, l.parts, training ? 1 : 0)
    .f32(eps, momentum);
}

function range(buffer: GPUBuffer, chunk: BatchChunk): Binding {
  return { buffer, offset: chunk.offsetBytes, size: chunk.sizeBytes };
}

/** Dispatches a per-tile kernel once per chunk; `bind` gives the chunk's bindings. */
function forEachChunk(rt: Runtime, l: Layout, kernel: TileKernel, training: boolean, bind: (chunk: BatchChunk) => Binding[]): void {
  for (const chunk of l.chunks) {
    rt.dispatch(kernel[l.width], {
      bindings: bind(chunk),
      uniforms: params(l, chunk, training),
      workgroups: flatWorkgroups(chunk.nb * l.s.c * l.tiles, rt.maxWorkgroupsPerDimension),
    });
  }
}

function perChannelGrid(rt: Runtime, groups: number): [number, number] {
  return flatWorkgroups(groups, rt.maxWorkgroupsPerDimension);
}

function expectFloats(rt: Runtime, buffer: GPUBuffer, count: number, what: string): void {
  if (rt.sizeOf(buffer) < count * 4) throw new RangeError(`BatchNorm2d: ${what} holds ${rt.sizeOf(buffer)} bytes, needs ${count * 4}`);
}

function checkInputs(rt: Runtime, s: BatchNormShape, x: GPUBuffer, perChannel: Record<string, GPUBuffer>): void {
  expectFloats(rt, x, s.n * s.c * s.h * s.w, 'x');
  for (const [what, buffer] of Object.entries(perChannel)) expectFloats(rt, buffer, s.c, what);
}

/** y = γ·(x − mean)·invStd + β (then ReLU when `relu`) into a new buffer. */
function normalize(rt: Runtime, l: Layout, x: GPUBuffer, gamma: GPUBuffer, beta: GPUBuffer, mean: GPUBuffer, invStd: GPUBuffer, relu: boolean): GPUBuffer {
  const { s } = l;
  const y = rt.alloc(s.n * s.c * s.h * s.w * 4, relu ? 'batchnorm2d+relu y' : 'batchnorm2d y');
  forEachChunk(rt, l, relu ? normalizeReluKernel : normalizeKernel, false, (chunk) => [range(x, chunk), mean, invStd, gamma, beta, range(y, chunk)]);
  return y;
}

/**
 * Training-mode forward (PyTorch `BatchNorm2d.train()`): normalises with the batch mean and biased
 * variance over N·H·W and updates `runningMean`/`runningVar` IN PLACE (momentum, unbiased variance).
 * Returns new buffers y (NCHW) and the saved mean and invStd (length c) for the backward.
 * `opts.relu`: y = ReLU(BatchNorm(x)) in the same pass.
 */
export function batchNorm2dForwardTrain(
  rt: Runtime,
  x: GPUBuffer,
  gamma: GPUBuffer,
  beta: GPUBuffer,
  runningMean: GPUBuffer,
  runningVar: GPUBuffer,
  s: BatchNormShape,
  opts: BatchNormOptions = {},
): { y: GPUBuffer; mean: GPUBuffer; invStd: GPUBuffer } {
  const l = layoutOf(rt, s);
  checkInputs(rt, s, x, { gamma, beta, runningMean, runningVar });
  if (s.n * l.hw < 2) throw new RangeError(`BatchNorm2d training needs more than one value per channel (N·H·W = ${s.n * l.hw})`);
  const partial = rt.alloc(s.c * l.parts * 16, 'batchnorm2d stats partials');
  forEachChunk(rt, l, statsKernel, true, (chunk) => [range(x, chunk), partial]);
  const mean = rt.alloc(s.c * 4, 'batchnorm2d mean');
  const invStd = rt.alloc(s.c * 4, 'batchnorm2d invStd');
  rt.dispatch(statsFinalizeKernel, {
    bindings: [partial, mean, invStd, runningMean, runningVar],
    uniforms: params(l, null, true, opts.eps, opts.momentum),
    workgroups: perChannelGrid(rt, s.c),
  });
  rt.release(partial);
  return { y: normalize(rt, l, x, gamma, beta, mean, invStd, opts.relu ?? false), mean, invStd };
}

/** The frozen statistics of eval mode as new buffers: mean = runningMean, invStd = 1/√(runningVar + eps). */
export function batchNorm2dEvalStats(rt: Runtime, runningMean: GPUBuffer, runningVar: GPUBuffer, c: number, eps = BATCHNORM_EPS): { mean: GPUBuffer; invStd: GPUBuffer } {
  const l: Layout = { s: { n: 1, c, h: 1, w: 1 }, hw: 1, width: 1, tile: 1, tiles: 1, parts: 1, chunks: [] };
  expectFloats(rt, runningMean, c, 'runningMean');
  expectFloats(rt, runningVar, c, 'runningVar');
  const mean = rt.alloc(c * 4, 'batchnorm2d mean');
  const invStd = rt.alloc(c * 4, 'batchnorm2d invStd');
  rt.dispatch(evalStatsKernel, {
    bindings: [runningMean, runningVar, mean, invStd],
    uniforms: params(l, null, false, eps),
    workgroups: perChannelGrid(rt, Math.ceil(c / WG_CHANNEL)),
  });
  return { mean, invStd };
}

/** Eval-mode forward (PyTorch `BatchNorm2d.eval()`): normalises with the running statistics; returns y (ReLU'd when `opts.relu`). */
export function batchNorm2dForwardEval(
  rt: Runtime,
  x: GPUBuffer,
  gamma: GPUBuffer,
  beta: GPUBuffer,
  runningMean: GPUBuffer,
  runningVar: GPUBuffer,
  s: BatchNormShape,
  opts: Pick<BatchNormOptions, 'eps' | 'relu'> = {},
): GPUBuffer {
  const l = layoutOf(rt, s);
  checkInputs(rt, s, x, { gamma, beta, runningMean, runningVar });
  const { mean, invStd } = batchNorm2dEvalStats(rt, runningMean, runningVar, s.c, opts.eps);
  const y = normalize(rt, l, x, gamma, beta, mean, invStd, opts.relu ?? false);
  rt.release(mean);
  rt.release(invStd);
  return y;
}

/**
 * Backward: dGamma = Σ dy·x̂ and dBeta = Σ dy (length c); dx with the batch-statistics gradient
 * when `training` (mean/invStd from batchNorm2dForwardTrain), or dx = γ·invStd·dy with frozen
 * statistics (mean/invStd from batchNorm2dEvalStats). All three are new buffers.
 * `reluOutput`: the output of a fused forward (`relu: true`); dy is then the gradient of ReLU's
 * output and is masked where reluOutput ≤ 0 as it is read.
 */
export function batchNorm2dBackward(
  rt: Runtime,
  dy: GPUBuffer,
  x: GPUBuffer,
  gamma: GPUBuffer,
  mean: GPUBuffer,
  invStd: GPUBuffer,
  s: BatchNormShape,
  training: boolean,
  reluOutput: GPUBuffer | null = null,
): { dx: GPUBuffer; dGamma: GPUBuffer; dBeta: GPUBuffer } {
  const l = layoutOf(rt, s);
  checkInputs(rt, s, x, { gamma, mean, invStd });
  expectFloats(rt, dy, s.n * s.c * s.h * s.w, 'dy');
  const y = reluOutput;
  if (y) expectFloats(rt, y, s.n * s.c * s.h * s.w, 'reluOutput');
  const withY = (chunk: BatchChunk, b: Binding[]) => (y ? [...b, range(y, chunk)] : b);
  const partial = rt.alloc(s.c * l.parts * 8, 'batchnorm2d grad partials');
  forEachChunk(rt, l, y ? gradPartialReluKernel : gradPartialKernel, training, (chunk) => withY(chunk, [range(dy, chunk), range(x, chunk), mean, partial]));
  const dGamma = rt.alloc(s.c * 4, 'batchnorm2d dGamma');
  const dBeta = rt.alloc(s.c * 4, 'batchnorm2d dBeta');
  const coef = rt.alloc(s.c * 16, 'batchnorm2d dx coefficients');
  rt.dispatch(gradFinalizeKernel, {
    bindings: [partial, gamma, mean, invStd, dGamma, dBeta, coef],
    uniforms: params(l, null, training),
    workgroups: perChannelGrid(rt, s.c),
  });
  rt.release(partial);
  const dx = rt.alloc(s.n * s.c * s.h * s.w * 4, 'batchnorm2d dx');
  forEachChunk(rt, l, y ? dxReluKernel : dxKernel, training, (chunk) => withY(chunk, [range(dy, chunk), range(x, chunk), coef, range(dx, chunk)]));
  rt.release(coef);
  return { dx, dGamma, dBeta };
}
