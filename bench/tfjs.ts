/**
 * The TensorFlow.js side of the kernel benchmark: the same rows as bench/cases.ts (same names, same
 * shape strings, same work), run by TF.js's WebGPU backend on the same Dawn adapter, so one run can
 * put lungpath's WGSL kernels and TF.js's side by side. Plus two end-to-end rows: one Adam training
 * step of the `tiny` Level-1 network (batch 16 of 64² patches) and of the seed Level-1 network
 * (one 512² patch), built with TF.js ops in bench/tfjs_network.ts.
 *
 * Versions: @tensorflow/tfjs 4.22.0 and @tensorflow/tfjs-backend-webgpu 4.22.0 (WGSL shaders; the
 * backend has no GLSL path any more), Dawn from npm `webgpu` 0.6.x.
 *
 * How TF.js is made to run in Node on our adapter (createTfjs):
 * - `navigator.gpu` is set to a thin wrapper around Dawn's `GPU` object before
 *   `@tensorflow/tfjs-backend-webgpu` is imported (it registers its backend only when
 *   `navigator.gpu` exists); the wrapper records the adapter TF.js requests, so we can report
 *   what TF.js sees. TF.js then creates its own device on that adapter with its own limits.
 * - Gradients and optimizers need `await import('@tensorflow/tfjs')`: tfjs-core alone registers no
 *   gradients (and its register_all_gradients.js cannot be imported under Node ESM).
 * - Flag WEBGPU_CPU_FORWARD=false: by default TF.js runs ops whose inputs are small and still on the
 *   CPU (< 1000 elements) on the CPU; off, every op runs on the GPU, as ours do. All other flags
 *   are TF.js's defaults (e.g. WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=true: dx uses the direct
 *   Conv2DDerInputProgram, not the matmul one); `--flags K=V,...` overrides any.
 *
 * Layout: TF.js convolutions are NHWC with HWIO filters; each conv row uses NHWC tensors holding
 * the same sizes as our NCHW row (its shape string is ours, so rows join on name + shape). The ops
 * timed are those TF.js's own conv2d gradient runs: forward = tf.fused.conv2d with the bias fused
 * (Conv2DMMProgram; 1×1 goes through matmul), dx = tf.conv2dTranspose (kernel Conv2DBackpropInput),
 * dW = the Conv2DBackpropFilter kernel through tf.engine().runKernel (tfjs-core exports no op for
 * it). checkTfjsConv verifies all three against src/kernels/conv2d_ref.ts on small shapes, with
 * the layout conversions done on the CPU outside any timing.
 *
 * Timing: each sample is one launch and then `ctx.sync()`: TF.js's pending command encoder is
 * submitted (its own `submitQueue`; TF.js otherwise submits every 15 dispatches) and we await
 * `device.queue.onSubmittedWorkDone()`. That is exactly what our harness's `rt.sync()` does (one
 * submit + wait), and unlike `await tensor.data()` it copies and maps nothing, so no readback is
 * timed on either side. Outputs are disposed inside tf.tidy; TF.js recycles their buffers from
 * its pool, as our runtime does. The first run compiles the shaders and is not timed; then the
 * median of samples taken until `timeMs` has passed (at least `minSamples`, at most `maxSamples`).
 *
 *   npx tsx bench/tfjs.ts                  # every row, table on stdout (a few minutes on lavapipe)
 *   npx tsx bench/tfjs.ts --only conv      # rows whose name contains "conv"
 *   npx tsx bench/tfjs.ts --quick --json   # fewer samples, one JSON object per row
 *   npx tsx bench/tfjs.ts --flags WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE=false
 */
import './spin_polls.ts';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import type * as TF from '@tensorflow/tfjs';
import { describeAdapter } from '../src/kernels/device.ts';
import { conv2dBackwardDataRef, conv2dBackwardWeightRef, conv2dForwardRef } from '../src/kernels/conv2d_ref.ts';
import { conv2dFlops, conv2dOutputSize, type Conv2dShape } from '../src/kernels/conv2d_shape.ts';
import { SEED_CONFIG, TINY_CONFIG, type ModelConfig } from '../src/nn/config.ts';
import { buildTfjsPatchNetwork, patchNetworkForwardFlops, patchNetworkParameterShapes, type Tf } from './tfjs_network.ts';

/** The parts of TF.js's WebGPUBackend we use (they are not in its public typings). */
interface WebGpuBackendInternals {
  device: GPUDevice;
  queue: GPUQueue;
  commandEncoder: GPUCommandEncoder | null;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

export interface TfjsAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
}

export interface TfjsContext {
  tf: Tf;
  /** `@tensorflow/tfjs` version, e.g. `4.22.0`. */
  version: string;
  /** The adapter TF.js requested, as it reported itself. */
  adapterInfo: TfjsAdapterInfo;
  /** One line in the format of our `describeAdapter`, e.g. `mesa llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)`. */
  adapter: string;
  /** The device TF.js created on that adapter. */
  device: GPUDevice;
  /** TF.js flags that differ from its defaults. */
  flags: Record<string, number | boolean>;
  /** Submits TF.js's pending commands, waits until the GPU has finished them, throws any WebGPU error. */
  sync(): Promise<void>;
}

export interface TfjsCase {
  name: string;
  shape: string;
  unit: 'GFLOP/s' | 'GB/s';
  /** FLOPs or bytes per run (the same count as our row of the same name and shape). */
  work: number;
  /** How TF.js does it, where it differs from a plain reading of the name. */
  note?: string;
  setup(): void;
  /** One launch, then waits for the GPU (`ctx.sync()`). */
  run(): Promise<void>;
  teardown(): void;
}

export interface TfjsOptions {
  /** Dawn toggles when no `GPU` is passed (default: LUNGPATH_DAWN_FLAGS, as createNodeRuntime). */
  dawnFlags?: string[];
  /** TF.js flags to set after WEBGPU_CPU_FORWARD=false. */
  flags?: Record<string, number | boolean>;
}

let created: { gpu: GPU; context: Promise<TfjsContext> } | null = null;

async function dawnGpu(flags: string[]): Promise<GPU> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  return webgpu.create(flags);
}

/**
 * TF.js's WebGPU backend on Dawn's `gpu` (ours, so both sides use the same adapter; without one, a
 * Dawn instance made as createNodeRuntime makes its own). TF.js is a process-wide singleton: a
 * second call returns the same context and refuses a different `gpu`.
 */
export async function createTfjs(gpu?: GPU, options: TfjsOptions = {}): Promise<TfjsContext> {
  if (created) {
    if (gpu && gpu !== created.gpu) throw new Error('createTfjs: TF.js already runs on another GPU object (one backend per process)');
    return created.context;
  }
  const theGpu = gpu ?? (await dawnGpu(options.dawnFlags ?? (process.env.LUNGPATH_DAWN_FLAGS?.split(',').filter(Boolean) ?? [])));
  created = { gpu: theGpu, context: initTfjs(theGpu, options) };
  return created.context;
}

async function initTfjs(gpu: GPU, options: TfjsOptions): Promise<TfjsContext> {
  let seen: GPUAdapter | null = null;
  const wrapper = {
    requestAdapter: async (o?: GPURequestAdapterOptions) => (seen = await gpu.requestAdapter(o)),
    getPreferredCanvasFormat: () => 'bgra8unorm',
    wgslLanguageFeatures: gpu.wgslLanguageFeatures,
  };
  const previous = (globalThis as { navigator?: object }).navigator;
  Object.defineProperty(globalThis, 'navigator', { value: Object.create(previous ?? null, { gpu: { value: wrapper, enumerable: true } }), configurable: true, writable: true });
  await import('@tensorflow/tfjs-backend-webgpu');
  const tf: Tf = await import('@tensorflow/tfjs');
  const flags: Record<string, number | boolean> = { WEBGPU_CPU_FORWARD: false, ...options.flags };
  for (const [key, value] of Object.entries(flags)) tf.env().set(key, value);
  if (!(await tf.setBackend('webgpu'))) throw new Error('createTfjs: the TF.js WebGPU backend failed to initialise (see the message above)');
  await tf.ready();
  if (!seen) throw new Error('createTfjs: TF.js did not request an adapter through navigator.gpu');
  const info = (seen as GPUAdapter).info;
  const adapterInfo: TfjsAdapterInfo = { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description };
  const backend = tf.backend() as unknown as WebGpuBackendInternals;
  const isFallbackAdapter = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  const errors: string[] = [];
  backend.device.addEventListener('uncapturederror', (e) => errors.push((e as GPUUncapturedErrorEvent).error.message));
  return {
    tf,
    version: tf.version.tfjs,
    adapterInfo,
    adapter: describeAdapter({ ...adapterInfo, isFallbackAdapter, features: [] }),
    device: backend.device,
    flags,
    sync: async () => {
      if (backend.commandEncoder) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
      await backend.queue.onSubmittedWorkDone();
      if (errors.length) throw new Error(`TF.js WebGPU error (a timing would be meaningless): ${errors.splice(0).join('\n')}`);
    },
  };
}

/** Deterministic values in [-scale/2, scale/2) (the same generator as bench/cases.ts). */
function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = scale * (s / 4294967296 - 0.5);
  }
  return data;
}

/** A case that owns the tensors `inputs` makes, and whose `body` runs inside tf.tidy. */
function tidyCase<T extends TF.TensorContainer>(ctx: TfjsContext, base: Omit<TfjsCase, 'setup' | 'run' | 'teardown'>, inputs: () => T, body: (t: T) => void): TfjsCase {
  let state: T | null = null;
  return {
    ...base,
    setup: () => {
      state = ctx.tf.tidy(inputs);
    },
    run: async () => {
      const t = state as T;
      ctx.tf.tidy(() => {
        body(t);
      });
      await ctx.sync();
    },
    teardown: () => {
      if (state) ctx.tf.dispose(state);
      state = null;
    },
  };
}

const NHWC_NOTE = 'NHWC tensors (HWIO filter) of the same sizes';

/** The three conv ops of `s` in TF.js (NHWC): forward with bias, dx, dW. */
export function tfjsConvOps(tf: Tf, s: Conv2dShape) {
  const { ho, wo } = conv2dOutputSize(s);
  return {
    forward: (x: TF.Tensor4D, filter: TF.Tensor4D, bias: TF.Tensor1D) => tf.fused.conv2d({ x, filter, bias, strides: s.stride, pad: s.pad }),
    dx: (dy: TF.Tensor4D, filter: TF.Tensor4D) => tf.conv2dTranspose(dy, filter, [s.n, s.h, s.w, s.cIn], s.stride, s.pad),
    dW: (x: TF.Tensor4D, dy: TF.Tensor4D) =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: [s.stride, s.stride], pad: s.pad, dataFormat: 'NHWC', filterShape: [s.kh, s.kw, s.cIn, s.cOut] }) as TF.Tensor4D,
    shapes: { x: [s.n, s.h, s.w, s.cIn], filter: [s.kh, s.kw, s.cIn, s.cOut], dy: [s.n, ho, wo, s.cOut] } satisfies Record<string, [number, number, number, number]>,
  };
}

function convCases(ctx: TfjsContext, label: string, s: Conv2dShape): TfjsCase[] {
  const { tf } = ctx;
  const ops = tfjsConvOps(tf, s);
  const shape = `${s.n}×${s.cIn}→${s.cOut} ${s.h}² k${s.kh}s${s.stride}`;
  const work = conv2dFlops(s);
  const inputs = () => ({
    x: tf.randomUniform(ops.shapes.x, -0.5, 0.5, 'float32', 1) as TF.Tensor4D,
    filter: tf.randomUniform(ops.shapes.filter, -0.1, 0.1, 'float32', 2) as TF.Tensor4D,
    bias: tf.randomUniform([s.cOut], -0.5, 0.5, 'float32', 3) as TF.Tensor1D,
    dy: tf.randomUniform(ops.shapes.dy, -0.5, 0.5, 'float32', 4) as TF.Tensor4D,
  });
  return [
    tidyCase(ctx, { name: `conv ${label} forward`, shape, unit: 'GFLOP/s', work, note: `tf.fused.conv2d + bias, ${NHWC_NOTE}` }, inputs, (t) => ops.forward(t.x, t.filter, t.bias)),
    tidyCase(ctx, { name: `conv ${label} dx`, shape, unit: 'GFLOP/s', work, note: `tf.conv2dTranspose (Conv2DBackpropInput), ${NHWC_NOTE}` }, inputs, (t) => ops.dx(t.dy, t.filter)),
    tidyCase(ctx, { name: `conv ${label} dW`, shape, unit: 'GFLOP/s', work, note: `Conv2DBackpropFilter kernel, ${NHWC_NOTE}` }, inputs, (t) => ops.dW(t.x, t.dy)),
  ];
}

/** One training step of the Level-1 network of `config` at `batch` patches, as steps/s via GFLOP/s. */
function trainStepCase(ctx: TfjsContext, name: string, config: ModelConfig, batch: number, expectParameters?: number): TfjsCase {
  const { tf } = ctx;
  const size = config.patch.size;
  let state: { net: ReturnType<typeof buildTfjsPatchNetwork>; optimizer: TF.AdamOptimizer; x: TF.Tensor4D; oneHot: TF.Tensor2D } | null = null;
  const forward = patchNetworkForwardFlops(config, batch);
  const parameters = [...patchNetworkParameterShapes(config).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  if (expectParameters !== undefined && parameters !== expectParameters) {
    throw new Error(`${name}: the TF.js network has ${parameters} parameters, MODEL-SPEC.md says ${expectParameters}`);
  }
  const classes = config.classes.length;
  return {
    name,
    shape: `${batch}×3×${size}² (${(forward / 1e9).toFixed(forward < 1e9 ? 3 : 2)} GFLOP fwd, ${parameters} params)`,
    unit: 'GFLOP/s',
    work: 3 * forward,
    note: 'steps/s = 1000 / median ms; work = 3 × forward FLOPs (forward, dx, dW); Adam lr 1e-3, NLL on log_softmax, BN batch stats + running-stat update, no readback',
    setup: () => {
      const labels = Array.from({ length: batch }, (_, i) => i % classes);
      state = {
        net: buildTfjsPatchNetwork(tf, config, 7),
        optimizer: tf.train.adam(1e-3, 0.9, 0.999, 1e-8),
        x: tf.randomUniform([batch, size, size, 3], 0, 1, 'float32', 5) as TF.Tensor4D,
        oneHot: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat() as TF.Tensor2D),
      };
    },
    run: async () => {
      const s = state as NonNullable<typeof state>;
      s.net.trainStep(s.optimizer, s.x, s.oneHot).dispose();
      await ctx.sync();
    },
    teardown: () => {
      if (!state) return;
      state.net.dispose();
      state.optimizer.dispose();
      tf.dispose([state.x, state.oneHot]);
      state = null;
    },
  };
}

/** Adam over `shapes` (one variable each), gradients fixed; one `applyGradients` per run. */
function adamCase(ctx: TfjsContext, name: string, shape: string, shapes: number[][], note: string): TfjsCase {
  const { tf } = ctx;
  const params = shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
  let state: { vars: TF.Variable[]; grads: { name: string; tensor: TF.Tensor }[]; optimizer: TF.AdamOptimizer } | null = null;
  return {
    name,
    shape,
    unit: 'GB/s',
    work: 7 * params * 4,
    note,
    setup: () => {
      const vars = shapes.map((s, i) => tf.tidy(() => tf.variable(tf.randomUniform(s, -0.5, 0.5, 'float32', 19 + i), true)));
      const grads = vars.map((v, i) => ({ name: v.name, tensor: tf.randomUniform(v.shape, -0.5, 0.5, 'float32', 1000 + i) }));
      state = { vars, grads, optimizer: tf.train.adam(1e-3, 0.9, 0.999, 1e-8) };
    },
    run: async () => {
      const s = state as NonNullable<typeof state>;
      s.optimizer.applyGradients(s.grads);
      await ctx.sync();
    },
    teardown: () => {
      if (!state) return;
      state.optimizer.dispose();
      tf.dispose([...state.vars, ...state.grads.map((g) => g.tensor)]);
      state = null;
    },
  };
}

/** The TF.js rows, named as ours in bench/cases.ts (minus rows TF.js has no counterpart for here). */
export function tfjsCases(ctx: TfjsContext): TfjsCase[] {
  const { tf } = ctx;
  const bn = { n: 8, c: 64, h: 128, w: 128 };
  const bnSize = bn.n * bn.c * bn.h * bn.w;
  const bnShape = [bn.n, bn.h, bn.w, bn.c];
  const lin = { n: 16, inFeatures: 4096, outFeatures: 4 };
  const params = 1_219_237;
  const seedShapes = [...patchNetworkParameterShapes(SEED_CONFIG).values()];
  return [
    ...convCases(ctx, '3x3', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 3, kw: 3, stride: 1, pad: 1 }),
    ...convCases(ctx, '3x3', { n: 8, cIn: 16, h: 256, w: 256, cOut: 16, kh: 3, kw: 3, stride: 1, pad: 1 }),
    ...convCases(ctx, '2x2s2', { n: 8, cIn: 64, h: 128, w: 128, cOut: 64, kh: 2, kw: 2, stride: 2, pad: 0 }),
    ...convCases(ctx, '1x1', { n: 8, cIn: 256, h: 64, w: 64, cOut: 1, kh: 1, kw: 1, stride: 1, pad: 0 }),
    tidyCase(
      ctx,
      { name: 'batchnorm train forward', shape: '8×64×128²', unit: 'GB/s', work: 3 * bnSize * 4, note: 'tf.moments over N,H,W + tf.batchNorm (NHWC); running stats not updated' },
      () => ({ x: tf.randomUniform(bnShape, -0.5, 0.5, 'float32', 5), gamma: tf.randomUniform([bn.c], 0.5, 1.5, 'float32', 6), beta: tf.randomUniform([bn.c], -0.5, 0.5, 'float32', 7) }),
      ({ x, gamma, beta }) => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        tf.batchNorm(x, mean, variance, beta, gamma, 1e-5);
      },
    ),
    tidyCase(ctx, { name: 'relu forward', shape: '8×64×128²', unit: 'GB/s', work: 2 * bnSize * 4, note: 'tf.relu' }, () => ({ x: tf.randomUniform(bnShape, -0.5, 0.5, 'float32', 10) }), ({ x }) => {
      tf.relu(x);
    }),
    tidyCase(
      ctx,
      { name: 'linear forward', shape: '16×4096→4', unit: 'GFLOP/s', work: 2 * lin.n * lin.inFeatures * lin.outFeatures, note: 'tf.fused.matMul(x, Wᵀ) + bias, W [4, 4096] as ours' },
      () => ({
        x: tf.randomUniform([lin.n, lin.inFeatures], -0.5, 0.5, 'float32', 14) as TF.Tensor2D,
        w: tf.randomUniform([lin.outFeatures, lin.inFeatures], -0.5, 0.5, 'float32', 15) as TF.Tensor2D,
        b: tf.randomUniform([lin.outFeatures], -0.5, 0.5, 'float32', 16),
      }),
      ({ x, w, b }) => {
        tf.fused.matMul({ a: x, b: w, transposeB: true, bias: b });
      },
    ),
    tidyCase(
      ctx,
      { name: 'log-softmax + NLL backward', shape: '16×4', unit: 'GB/s', work: 3 * 64 * 4, note: 'tf.grad of mean NLL of tf.logSoftmax: forward to the loss, then dz' },
      () => ({ z: tf.tensor2d(randomValues(64, 18), [16, 4]), oneHot: tf.oneHot(tf.zeros([16], 'int32') as TF.Tensor1D, 4).toFloat() }),
      ({ z, oneHot }) => {
        tf.grad((logits: TF.Tensor) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1))))(z);
      },
    ),
    adamCase(ctx, 'adam', `${params} parameters`, [[params]], 'tf.train.adam, one variable of 1,219,237 (ours: one flat buffer); TF.js runs ~10 elementwise kernels per variable'),
    adamCase(ctx, 'adam, seed parameter list', `${seedShapes.length} tensors, ${params} parameters`, seedShapes, 'tf.train.adam over the seed Level-1 network\'s own variables (as a training step does)'),
    trainStepCase(ctx, 'train step tiny patch net', TINY_CONFIG, 16),
    trainStepCase(ctx, 'train step seed patch net', SEED_CONFIG, 1, params),
  ];
}

/** NCHW → NHWC (or OIHW → HWIO with dims [O, I, H, W]): out[a, c, d, b] = in[a, b, c, d]. */
function channelsLast(data: ArrayLike<number>, [a, b, c, d]: [number, number, number, number]): Float32Array {
  const out = new Float32Array(a * b * c * d);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let k = 0; k < c; k++) for (let l = 0; l < d; l++) out[((i * c + k) * d + l) * b + j] = data[((i * b + j) * c + k) * d + l] as number;
  return out;
}

/** NHWC → NCHW: the inverse of channelsLast for dims given as NCHW. */
function channelsFirst(data: ArrayLike<number>, [a, b, c, d]: [number, number, number, number]): Float32Array {
  const out = new Float32Array(a * b * c * d);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) for (let k = 0; k < c; k++) for (let l = 0; l < d; l++) out[((i * b + j) * c + k) * d + l] = data[((i * c + k) * d + l) * b + j] as number;
  return out;
}

/** OIHW → HWIO: out[h, w, i, o] = in[o, i, h, w]. */
function filterToHwio(data: ArrayLike<number>, o: number, i: number, h: number, w: number): Float32Array {
  const out = new Float32Array(o * i * h * w);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let c = 0; c < h; c++) for (let d = 0; d < w; d++) out[((c * w + d) * i + b) * o + a] = data[((a * i + b) * h + c) * w + d] as number;
  return out;
}

/** HWIO → OIHW. */
function filterToOihw(data: ArrayLike<number>, o: number, i: number, h: number, w: number): Float32Array {
  const out = new Float32Array(o * i * h * w);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let c = 0; c < h; c++) for (let d = 0; d < w; d++) out[((a * i + b) * h + c) * w + d] = data[((c * w + d) * i + b) * o + a] as number;
  return out;
}

export interface TfjsCheck {
  shape: string;
  op: 'forward' | 'dx' | 'dW';
  maxAbsError: number;
  ok: boolean;
}

/** Small conv shapes of each kind the benchmark times. */
export const CHECK_SHAPES: Conv2dShape[] = [
  { n: 2, cIn: 3, h: 7, w: 6, cOut: 4, kh: 3, kw: 3, stride: 1, pad: 1 },
  { n: 2, cIn: 3, h: 8, w: 6, cOut: 5, kh: 2, kw: 2, stride: 2, pad: 0 },
  { n: 2, cIn: 6, h: 4, w: 5, cOut: 1, kh: 1, kw: 1, stride: 1, pad: 0 },
];

/**
 * Runs TF.js's forward, dx and dW (the ops the benchmark times) on small shapes and compares them
 * with our CPU references (NCHW/OIHW; layouts converted on the CPU): |tfjs − ref| ≤ 1e-4 + 1e-4·|ref|.
 */
export async function checkTfjsConv(ctx: TfjsContext, shapes: Conv2dShape[] = CHECK_SHAPES): Promise<TfjsCheck[]> {
  const { tf } = ctx;
  const results: TfjsCheck[] = [];
  for (const [k, s] of shapes.entries()) {
    const { ho, wo } = conv2dOutputSize(s);
    const x = randomValues(s.n * s.cIn * s.h * s.w, 100 + k);
    const w = randomValues(s.cOut * s.cIn * s.kh * s.kw, 200 + k);
    const b = randomValues(s.cOut, 300 + k);
    const dy = randomValues(s.n * s.cOut * ho * wo, 400 + k);
    const ops = tfjsConvOps(tf, s);
    const tx = tf.tensor4d(channelsLast(x, [s.n, s.cIn, s.h, s.w]), ops.shapes.x);
    const tw = tf.tensor4d(filterToHwio(w, s.cOut, s.cIn, s.kh, s.kw), ops.shapes.filter);
    const tb = tf.tensor1d(b);
    const tdy = tf.tensor4d(channelsLast(dy, [s.n, s.cOut, ho, wo]), ops.shapes.dy);
    const outs = [ops.forward(tx, tw, tb), ops.dx(tdy, tw), ops.dW(tx, tdy)];
    const [y, dx, dW] = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
    tf.dispose([tx, tw, tb, tdy, ...outs]);
    const compare = (op: TfjsCheck['op'], got: Float32Array, want: Float64Array) => {
      let maxAbsError = 0;
      let ok = got.length === want.length;
      want.forEach((e, i) => {
        const err = Math.abs((got[i] as number) - e);
        maxAbsError = Math.max(maxAbsError, Number.isNaN(err) ? Infinity : err);
        if (!(err <= 1e-4 + 1e-4 * Math.abs(e))) ok = false;
      });
      results.push({ shape: `${s.n}×${s.cIn}→${s.cOut} ${s.h}×${s.w} k${s.kh}s${s.stride}p${s.pad}`, op, maxAbsError, ok });
    };
    compare('forward', channelsFirst(y as Float32Array, [s.n, s.cOut, ho, wo]), conv2dForwardRef(x, w, b, s));
    compare('dx', channelsFirst(dx as Float32Array, [s.n, s.cIn, s.h, s.w]), conv2dBackwardDataRef(dy, w, s));
    compare('dW', filterToOihw(dW as Float32Array, s.cOut, s.cIn, s.kh, s.kw), conv2dBackwardWeightRef(x, dy, s));
  }
  return results;
}

export interface TfjsMeasureOptions {
  /** Keep sampling until this many ms of samples (default 1500). */
  timeMs?: number;
  minSamples?: number;
  maxSamples?: number;
}

export interface TfjsRow {
  name: string;
  shape: string;
  /** Median of the samples, one launch + sync each. */
  ms: number;
  value: number;
  unit: 'GFLOP/s' | 'GB/s';
  samples: number;
  /** The untimed first run (shader compilation included). */
  firstMs: number;
  note: string;
}

/** Times one case: an untimed first run (compiles), then the median of the samples. */
export async function measureTfjsCase(c: TfjsCase, { timeMs = 1500, minSamples = 1, maxSamples = 10 }: TfjsMeasureOptions = {}): Promise<TfjsRow> {
  c.setup();
  try {
    let t0 = performance.now();
    await c.run();
    const firstMs = performance.now() - t0;
    const samples: number[] = [];
    const start = performance.now();
    while (samples.length < maxSamples && (samples.length < minSamples || performance.now() - start < timeMs)) {
      t0 = performance.now();
      await c.run();
      samples.push(performance.now() - t0);
    }
    samples.sort((a, b) => a - b);
    const mid = samples.length >> 1;
    const ms = samples.length % 2 ? (samples[mid] as number) : ((samples[mid - 1] as number) + (samples[mid] as number)) / 2;
    return { name: c.name, shape: c.shape, ms, value: c.work / (ms * 1e6), unit: c.unit, samples: samples.length, firstMs, note: c.note ?? '' };
  } finally {
    c.teardown();
  }
}

function formatRow(r: TfjsRow): string {
  const steps = r.name.startsWith('train step') ? `${(1000 / r.ms).toFixed(3)} steps/s` : '';
  return `${r.name.padEnd(30)} ${r.shape.padEnd(44)} ${r.ms.toFixed(3).padStart(10)} ms ${r.value.toFixed(2).padStart(8)} ${r.unit.padEnd(8)} ${String(r.samples).padStart(3)}  ${steps}`;
}

function parseFlags(text: string | undefined): Record<string, number | boolean> {
  const flags: Record<string, number | boolean> = {};
  for (const pair of (text ?? '').split(',').filter(Boolean)) {
    const [key, value = 'true'] = pair.split('=');
    flags[key as string] = value === 'true' ? true : value === 'false' ? false : Number(value);
  }
  return flags;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      time: { type: 'string' },
      flags: { type: 'string' },
      'no-check': { type: 'boolean', default: false },
    },
  });
  const ctx = await createTfjs(undefined, { flags: parseFlags(values.flags) });
  const log = values.json ? () => {} : console.log;
  log(`TF.js ${ctx.version} WebGPU backend — adapter: ${ctx.adapter} — flags ${JSON.stringify(ctx.flags)} — ${new Date().toISOString().slice(0, 10)}`);
  if (!values['no-check']) {
    const checks = await checkTfjsConv(ctx);
    const worst = Math.max(...checks.map((c) => c.maxAbsError));
    log(`conv check against src/kernels/conv2d_ref.ts: ${checks.filter((c) => c.ok).length}/${checks.length} ok (max |error| ${worst.toExponential(2)})`);
    const bad = checks.filter((c) => !c.ok);
    if (bad.length) throw new Error(`TF.js conv differs from the reference: ${JSON.stringify(bad)}`);
  }
  const options: TfjsMeasureOptions = values.quick ? { timeMs: 200, maxSamples: 3 } : {};
  if (values.time) options.timeMs = Number(values.time);
  log(`${'row'.padEnd(30)} ${'shape'.padEnd(44)} ${'median'.padStart(13)} ${'rate'.padStart(8)} unit       n`);
  for (const c of tfjsCases(ctx).filter((c) => !values.only || c.name.includes(values.only))) {
    const row = await measureTfjsCase(c, options);
    if (values.json) console.log(JSON.stringify({ ...row, system: `tfjs ${ctx.version}`, adapter: ctx.adapter }));
    else log(formatRow(row));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
  process.exit(0);
}
