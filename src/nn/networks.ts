/**
 * The two networks of MODEL-SPEC.md as modules, built from their one description (architecture.ts):
 * `buildPatchNetwork` (Level 1) and `buildImageNetwork` (Level 2) from a ModelConfig and a seed.
 * Both return logits; log_softmax is applied by the loss (or `logSoftmax` for predictions).
 */
import type { Runtime } from '../kernels/runtime.ts';
import { imageNetworkSpec, patchNetworkSpec, type LayerSpec, type NetworkSpec } from './architecture.ts';
import type { LinearInit, ModelConfig } from './config.ts';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, Module, ReLU, Sequential, type ForwardContext, type KernelTrace } from './modules.ts';
import { Rng } from './random.ts';
import type { Tensor } from './tensor.ts';

/** The module of one layer; weights drawn from `rng` in layer order (Linear layers scaled per `linearInit`). */
export function buildLayer(rt: Runtime, layer: LayerSpec, rng: Rng, linearInit?: LinearInit): Module {
  switch (layer.kind) {
    case 'conv2d':
      return new Conv2d(rt, layer.name, layer.cIn, layer.cOut, layer.kernel, layer.stride, layer.pad, rng);
    case 'batchnorm2d':
      return new BatchNorm2d(rt, layer.name, layer.channels);
    case 'relu':
      return new ReLU(layer.name);
    case 'linear':
      return new Linear(rt, layer.name, layer.inFeatures, layer.outFeatures, rng, linearInit);
    case 'dropout':
      return new Dropout(layer.name, layer.p, layer.stream);
    default:
      throw new Error(`buildLayer: unknown layer ${JSON.stringify(layer satisfies never)}`);
  }
}

/** A network as torch sees it: `features` then `classifier`, with a flatten between. */
export class TwoPartNetwork extends Module {
  private readonly flatten = new Flatten();

  constructor(readonly features: Sequential, readonly classifier: Sequential) {
    super();
  }

  override children(): Module[] {
    return [this.features, this.classifier];
  }

  /** Logits [n, classes]. */
  forward(x: Tensor, ctx: ForwardContext): Tensor {
    const maps = this.features.forward(x, ctx);
    const flat = this.flatten.forward(maps, ctx);
    maps.release();
    const logits = this.classifier.forward(flat, ctx);
    flat.release();
    return logits;
  }

  trace(shape: readonly number[], t: KernelTrace): readonly number[] {
    return this.classifier.trace(this.flatten.trace(this.features.trace(shape, t)), t);
  }

  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}

/** The modules of a network description, weights drawn from one Rng(seed) in layer order. */
export function buildNetwork(rt: Runtime, spec: NetworkSpec, seed: number, linearInit?: LinearInit): TwoPartNetwork {
  const rng = new Rng(seed);
  const features = new Sequential(spec.features.map((l) => buildLayer(rt, l, rng, linearInit)));
  const classifier = new Sequential(spec.classifier.map((l) => buildLayer(rt, l, rng, linearInit)));
  return new TwoPartNetwork(features, classifier);
}

/** Level 1: input [n, 3, patch, patch] in [0, 1]. */
export function buildPatchNetwork(rt: Runtime, config: ModelConfig, seed: number): TwoPartNetwork {
  return buildNetwork(rt, patchNetworkSpec(config), seed);
}

/** Level 2: input [n, K, map, map], K stacked Level-1 feature maps in raster order. */
export function buildImageNetwork(rt: Runtime, config: ModelConfig, seed: number): TwoPartNetwork {
  return buildNetwork(rt, imageNetworkSpec(config), seed, config.level2.linearInit);
}
