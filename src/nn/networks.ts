/**
 * The two networks of MODEL-SPEC.md, generated from one ModelConfig:
 * - PatchNetwork (Level 1): blocks over a 3×size×size patch → Conv2d(w,1,1) → the patch feature
 *   map → flatten → Linear(map², C). Its `features` also feed Level 2.
 * - ImageNetwork (Level 2): K stacked patch feature maps as channels → blocks → Conv2d(w,1,1) →
 *   flatten → Linear/ReLU/Dropout stack → Linear(·, C).
 * Both return logits; log_softmax is applied by the loss (or `logSoftmax` for predictions).
 */
import type { Runtime } from '../kernels/runtime.ts';
import { derivedSizes, type LevelBlocks, type ModelConfig } from './config.ts';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, Module, ReLU, Sequential, type ForwardContext } from './modules.ts';
import { Rng } from './random.ts';
import type { Tensor } from './tensor.ts';

/** conv → bn → relu (×2), then a 2×2 stride-2 conv → bn → relu when the block downsamples. */
function featureLayers(rt: Runtime, cIn: number, blocks: LevelBlocks, rng: Rng): Module[] {
  const layers: Module[] = [];
  const name = () => `features.${layers.length}`;
  const convBnRelu = (from: number, to: number, kernel: number, stride: number, pad: number) => {
    layers.push(new Conv2d(rt, name(), from, to, kernel, stride, pad, rng));
    layers.push(new BatchNorm2d(rt, name(), to));
    layers.push(new ReLU(name()));
  };
  let c = cIn;
  blocks.widths.forEach((width, i) => {
    convBnRelu(c, width, 3, 1, 1);
    convBnRelu(width, width, 3, 1, 1);
    if (blocks.downsample[i]) convBnRelu(width, width, 2, 2, 0);
    c = width;
  });
  layers.push(new Conv2d(rt, name(), c, 1, 1, 1, 0, rng));
  return layers;
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

  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}

/** Level 1: input [n, 3, patch, patch] in [0, 1]. */
export function buildPatchNetwork(rt: Runtime, config: ModelConfig, seed: number): TwoPartNetwork {
  const rng = new Rng(seed);
  const { featureMapSize } = derivedSizes(config);
  const features = new Sequential(featureLayers(rt, 3, config.level1, rng));
  const classifier = new Sequential([new Linear(rt, 'classifier.0', featureMapSize * featureMapSize, config.classes.length, rng)]);
  return new TwoPartNetwork(features, classifier);
}

/** Level 2: input [n, K, map, map], K stacked Level-1 feature maps in raster order. */
export function buildImageNetwork(rt: Runtime, config: ModelConfig, seed: number): TwoPartNetwork {
  const rng = new Rng(seed);
  const { level2Patches, level2MapSize } = derivedSizes(config);
  const features = new Sequential(featureLayers(rt, level2Patches, config.level2, rng));
  const layers: Module[] = [];
  let width = level2MapSize * level2MapSize;
  config.level2.hidden.forEach((hidden, i) => {
    layers.push(new Linear(rt, `classifier.${layers.length}`, width, hidden, rng));
    layers.push(new ReLU(`classifier.${layers.length}`));
    layers.push(new Dropout(`classifier.${layers.length}`, config.level2.dropout, i));
    width = hidden;
  });
  layers.push(new Linear(rt, `classifier.${layers.length}`, width, config.classes.length, rng));
  return new TwoPartNetwork(features, new Sequential(layers));
}
