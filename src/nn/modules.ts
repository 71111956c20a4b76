/**
 * nn modules with PyTorch names: Conv2d, BatchNorm2d, ReLU, Linear, Dropout, Sequential, Flatten.
 * Each module is built with its full state_dict prefix (e.g. `features.3`), so its parameters
 * and buffers carry the names `features.3.weight`, `features.4.running_mean`, … that torch uses.
 */
import type { KernelRequest } from '../kernels/autotune.ts';
import { conv2dOutputSize, type Conv2dShape } from '../kernels/conv2d_shape.ts';
import type { LinearInit } from './config.ts';
import type { Runtime } from '../kernels/runtime.ts';
import { batchNorm2d, batchNorm2dRelu, conv2d, dropout, linear, relu, reshape, type BatchNormState } from './ops.ts';
import type { Rng } from './random.ts';
import type { Tape } from './tape.ts';
import { formatShape, Parameter, Tensor } from './tensor.ts';

/**
 * Whether Sequential runs a BatchNorm2d directly followed by a ReLU as one fused op (ops.ts
 * batchNorm2dRelu; the same bits either way). On unless LUNGPATH_FUSE_BN_RELU=off; tests flip it
 * to compare the two paths.
 */
export const fusion = { bnRelu: (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.LUNGPATH_FUSE_BN_RELU !== 'off' };

/** What a forward pass needs besides its input. */
export interface ForwardContext {
  /** Records ops for backward; null runs without gradients (no-grad). */
  tape: Tape | null;
  /** Per-step seed of the dropout masks (u32). */
  seed: number;
}

/** A named tensor of a module's state: parameters, running statistics, counters. */
export interface StateEntry {
  name: string;
  shape: readonly number[];
  dtype: 'F32' | 'I64';
  /** F32 entries live on the GPU. */
  tensor?: Tensor;
  /** I64 entries (num_batches_tracked) live on the CPU. */
  get?: () => number;
  set?: (value: number) => void;
}

/**
 * A shape-only walk of a module (kernel_uses.ts): the multi-version kernels it would launch, for
 * autotuning before a run. Forward: each Conv2d's and Linear's forward; training adds their weight
 * gradient and, past the first layer (whose input needs no gradient), their data gradient.
 */
export interface KernelTrace {
  training: boolean;
  /** Whether the tensor flowing in needs a gradient (false for the network's input). */
  needsGrad: boolean;
  uses: KernelRequest[];
}

export abstract class Module {
  training = true;

  abstract forward(x: Tensor, ctx: ForwardContext): Tensor;

  /** The output shape for an input of `shape`, recording in `t` the kernels forward (and backward) would launch. */
  abstract trace(shape: readonly number[], t: KernelTrace): readonly number[];

  /** Sub-modules in order. */
  children(): Module[] {
    return [];
  }

  /** This module's own trainable parameters. */
  protected ownParameters(): Parameter[] {
    return [];
  }

  /** This module's own state beyond parameters (running stats). */
  protected ownBuffers(): StateEntry[] {
    return [];
  }

  parameters(): Parameter[] {
    return [...this.ownParameters(), ...this.children().flatMap((c) => c.parameters())];
  }

  /** Every entry of the PyTorch state_dict, in torch's order (per module: parameters, then buffers). */
  state(): StateEntry[] {
    const own: StateEntry[] = this.ownParameters().map((p) => ({ name: p.name, shape: p.shape, dtype: 'F32' as const, tensor: p }));
    return [...own, ...this.ownBuffers(), ...this.children().flatMap((c) => c.state())];
  }

  train(on = true): this {
    this.training = on;
    this.children().forEach((c) => c.train(on));
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Releases every GPU tensor the module holds (parameters, gradients, buffers). */
  destroy(): void {
    for (const entry of this.state()) {
      if (entry.tensor instanceof Parameter) entry.tensor.zeroGrad();
      entry.tensor?.release();
    }
  }
}

export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(rt: Runtime, readonly prefix: string, cIn: number, cOut: number, readonly kernel: number, readonly stride: number, readonly pad: number, rng: Rng) {
    super();
    const fanIn = cIn * kernel * kernel;
    const std = Math.sqrt(2 / fanIn); // Kaiming normal, fan_in, ReLU gain √2
    const w = new Float32Array(cOut * fanIn).map(() => std * rng.normal());
    this.weight = Parameter.fromArray(rt, w, [cOut, cIn, kernel, kernel], `${prefix}.weight`);
    this.bias = Parameter.fromArray(rt, new Float32Array(cOut), [cOut], `${prefix}.bias`);
  }

  protected override ownParameters(): Parameter[] {
    return [this.weight, this.bias];
  }

  forward(x: Tensor, ctx: ForwardContext): Tensor {
    return conv2d(x, this.weight, this.bias, this.stride, this.pad, ctx.tape, this.prefix);
  }

  trace(shape: readonly number[], t: KernelTrace): readonly number[] {
    if (shape.length !== 4) throw new Error(`kernelUses: conv '${this.prefix}' needs an NCHW input, got ${formatShape(shape)}`);
    const [n, cIn, h, w] = shape as [number, number, number, number];
    const [cOut] = this.weight.shape as [number];
    const s: Conv2dShape = { n, cIn, h, w, cOut, kh: this.kernel, kw: this.kernel, stride: this.stride, pad: this.pad };
    t.uses.push({ op: 'conv2d.forward', shape: s });
    if (t.training) {
      if (t.needsGrad) t.uses.push({ op: 'conv2d.dx', shape: s });
      t.uses.push({ op: 'conv2d.dw', shape: s });
    }
    t.needsGrad = t.training;
    const { ho, wo } = conv2dOutputSize(s);
    return [n, cOut, ho, wo];
  }
}

export class BatchNorm2d extends Module {
  readonly state_: BatchNormState;
  numBatchesTracked = 0;
  /** Shape of the last input seen (statistics recalibration needs N·H·W per batch). */
  lastInputShape: readonly number[] | null = null;

  constructor(rt: Runtime, readonly prefix: string, channels: number, eps = 1e-5, momentum = 0.1) {
    super();
    this.state_ = {
      gamma: Parameter.fromArray(rt, new Float32Array(channels).fill(1), [channels], `${prefix}.weight`),
      beta: Parameter.fromArray(rt, new Float32Array(channels), [channels], `${prefix}.bias`),
      runningMean: Tensor.fromArray(rt, new Float32Array(channels), [channels], `${prefix}.running_mean`),
      runningVar: Tensor.fromArray(rt, new Float32Array(channels).fill(1), [channels], `${prefix}.running_var`),
      eps,
      momentum,
    };
  }

  protected override ownParameters(): Parameter[] {
    return [this.state_.gamma, this.state_.beta];
  }

  protected override ownBuffers(): StateEntry[] {
    const { runningMean, runningVar } = this.state_;
    return [
      { name: runningMean.label, shape: runningMean.shape, dtype: 'F32', tensor: runningMean },
      { name: runningVar.label, shape: runningVar.shape, dtype: 'F32', tensor: runningVar },
      {
        name: `${this.prefix}.num_batches_tracked`,
        shape: [],
        dtype: 'I64',
        get: () => this.numBatchesTracked,
        set: (v) => {
          this.numBatchesTracked = v;
        },
      },
    ];
  }

  forward(x: Tensor, ctx: ForwardContext): Tensor {
    return this.run(x, () => batchNorm2d(x, this.state_, this.training, ctx.tape, this.prefix));
  }

  /** `relu.forward(this.forward(x))` as one fused op (Sequential calls it when `fusion.bnRelu`). */
  forwardRelu(x: Tensor, ctx: ForwardContext, relu: ReLU): Tensor {
    return this.run(x, () => batchNorm2dRelu(x, this.state_, this.training, ctx.tape, `${this.prefix}+${relu.prefix}`));
  }

  /** The bookkeeping of either forward (input shape, PyTorch's num_batches_tracked), then the op. */
  private run(x: Tensor, op: () => Tensor): Tensor {
    this.lastInputShape = x.shape;
    if (this.training) this.numBatchesTracked++;
    return op();
  }

  trace(shape: readonly number[]): readonly number[] {
    return shape;
  }
}

export class ReLU extends Module {
  constructor(readonly prefix: string) {
    super();
  }

  forward(x: Tensor, ctx: ForwardContext): Tensor {
    return relu(x, ctx.tape, this.prefix);
  }

  trace(shape: readonly number[]): readonly number[] {
    return shape;
  }
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  /** @param init N(0, 0.01) as the original (default), or Kaiming normal (fan_in, ReLU gain √2) as the convs: config.ts LinearInit */
  constructor(rt: Runtime, readonly prefix: string, inFeatures: number, outFeatures: number, rng: Rng, init: LinearInit = 'normal-0.01') {
    super();
    const std = init === 'kaiming-normal' ? Math.sqrt(2 / inFeatures) : 0.01;
    const w = new Float32Array(outFeatures * inFeatures).map(() => std * rng.normal());
    this.weight = Parameter.fromArray(rt, w, [outFeatures, inFeatures], `${prefix}.weight`);
    this.bias = Parameter.fromArray(rt, new Float32Array(outFeatures), [outFeatures], `${prefix}.bias`);
  }

  protected override ownParameters(): Parameter[] {
    return [this.weight, this.bias];
  }

  forward(x: Tensor, ctx: ForwardContext): Tensor {
    return linear(x, this.weight, this.bias, ctx.tape, this.prefix);
  }

  trace(shape: readonly number[], t: KernelTrace): readonly number[] {
    if (shape.length !== 2) throw new Error(`kernelUses: linear '${this.prefix}' needs [n, features], got ${formatShape(shape)}`);
    const [n, inFeatures] = shape as [number, number];
    const [outFeatures] = this.weight.shape as [number];
    const s = { n, inFeatures, outFeatures };
    t.uses.push({ op: 'linear.forward', shape: s });
    if (t.training) {
      if (t.needsGrad) t.uses.push({ op: 'linear.dx', shape: s });
      t.uses.push({ op: 'linear.dw', shape: s });
    }
    t.needsGrad = t.training;
    return [n, outFeatures];
  }
}

export class Dropout extends Module {
  /**
   * @param stream distinct per Dropout in a network: masks use counters from stream·2²⁴, so no
   *   two layers share one within a step (valid while a layer has < 2²⁴ elements).
   */
  constructor(readonly prefix: string, readonly p: number, readonly stream: number) {
    super();
  }

  forward(x: Tensor, ctx: ForwardContext): Tensor {
    if (!this.training || this.p === 0) return reshape(x, x.shape, ctx.tape);
    if (x.size >= 1 << 24) throw new Error(`dropout '${this.prefix}': ${x.size} elements exceed the 2^24 counters of one stream`);
    return dropout(x, this.p, ctx.seed, this.stream * (1 << 24), ctx.tape, this.prefix);
  }

  trace(shape: readonly number[]): readonly number[] {
    return shape;
  }
}

/** Flattens [n, ...] to [n, rest], as `x.view(x.size(0), -1)`. */
export class Flatten extends Module {
  forward(x: Tensor, ctx: ForwardContext): Tensor {
    const n = x.shape[0] as number;
    return reshape(x, [n, x.size / n], ctx.tape);
  }

  trace(shape: readonly number[]): readonly number[] {
    return [shape[0] as number, shape.slice(1).reduce((a, b) => a * b, 1)];
  }
}

/**
 * Runs children in order, releasing each intermediate once the next child has consumed it. A
 * BatchNorm2d directly followed by a ReLU runs as one fused op (see `fusion`); the module list,
 * state names and trace stay those of the separate layers.
 */
export class Sequential extends Module {
  constructor(readonly layers: Module[]) {
    super();
  }

  override children(): Module[] {
    return this.layers;
  }

  forward(x: Tensor, ctx: ForwardContext): Tensor {
    let h = x;
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i] as Module;
      const after = this.layers[i + 1];
      const fuse = fusion.bnRelu && layer instanceof BatchNorm2d && after instanceof ReLU;
      const next = fuse ? layer.forwardRelu(h, ctx, after) : layer.forward(h, ctx);
      if (fuse) i++;
      if (h !== x) h.release();
      h = next;
    }
    return h === x ? reshape(x, x.shape, ctx.tape) : h;
  }

  trace(shape: readonly number[], t: KernelTrace): readonly number[] {
    return this.layers.reduce((s, layer) => layer.trace(s, t), shape);
  }
}
