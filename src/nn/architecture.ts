/**
 * The two networks of MODEL-SPEC.md written once, as data: the layer list of each network, generated
 * from a ModelConfig, with PyTorch state_dict names. Everything else derives from it:
 * networks.ts builds the modules from it (an exhaustive switch: a new layer kind that is not built
 * does not compile), stateFloatCounts and stateShapes count and name the state without building
 * anything, bench/tfjs_network.ts builds the TF.js twin from it, and test/nn/architecture.test.ts
 * checks tools/make-golden.py's torch networks (through the fixtures they wrote) against it.
 *
 * Level 1 (patch network): blocks over a 3×size×size patch → Conv2d(w, 1, 1) → flatten →
 * Linear(map², C). Level 2 (image network): K stacked Level-1 maps as channels → blocks →
 * Conv2d(w, 1, 1) → flatten → (Linear → ReLU → Dropout)* → Linear(·, C). A block is
 * conv3×3 → BN → ReLU twice, then conv2×2/s2 → BN → ReLU when it downsamples.
 */
import { derivedSizes, type LevelBlocks, type ModelConfig } from './config.ts';

/** One layer, named as in PyTorch's state_dict (`features.3`, `classifier.0`). */
export type LayerSpec =
  | { kind: 'conv2d'; name: string; cIn: number; cOut: number; kernel: number; stride: number; pad: number }
  | { kind: 'batchnorm2d'; name: string; channels: number }
  | { kind: 'relu'; name: string }
  | { kind: 'linear'; name: string; inFeatures: number; outFeatures: number }
  | { kind: 'dropout'; name: string; p: number; stream: number };

export type LayerKind = LayerSpec['kind'];
export type LayerOf<K extends LayerKind> = Extract<LayerSpec, { kind: K }>;

/** A network as torch sees it: `features` (NCHW), a flatten, then `classifier`. */
export interface NetworkSpec {
  /** Input of one item: [channels, height, width]. */
  input: [number, number, number];
  features: LayerSpec[];
  classifier: LayerSpec[];
}

/** A named entry of the state_dict: parameters and running statistics (F32), counters (I64). */
export interface StateSpec {
  name: string;
  shape: number[];
  dtype: 'F32' | 'I64';
}

/** What each kind of layer holds, in torch's order. Exhaustive: a new kind must say. */
const LAYER_STATE: { readonly [K in LayerKind]: (l: LayerOf<K>) => StateSpec[] } = {
  conv2d: (l) => [
    { name: `${l.name}.weight`, shape: [l.cOut, l.cIn, l.kernel, l.kernel], dtype: 'F32' },
    { name: `${l.name}.bias`, shape: [l.cOut], dtype: 'F32' },
  ],
  batchnorm2d: (l) => [
    { name: `${l.name}.weight`, shape: [l.channels], dtype: 'F32' },
    { name: `${l.name}.bias`, shape: [l.channels], dtype: 'F32' },
    { name: `${l.name}.running_mean`, shape: [l.channels], dtype: 'F32' },
    { name: `${l.name}.running_var`, shape: [l.channels], dtype: 'F32' },
    { name: `${l.name}.num_batches_tracked`, shape: [], dtype: 'I64' },
  ],
  relu: () => [],
  linear: (l) => [
    { name: `${l.name}.weight`, shape: [l.outFeatures, l.inFeatures], dtype: 'F32' },
    { name: `${l.name}.bias`, shape: [l.outFeatures], dtype: 'F32' },
  ],
  dropout: () => [],
};

/** The state entries of one layer. */
export function layerState(layer: LayerSpec): StateSpec[] {
  return (LAYER_STATE[layer.kind] as (l: LayerSpec) => StateSpec[])(layer);
}

/** conv → bn → relu (×2), then a 2×2 stride-2 conv → bn → relu when the block downsamples; a final 1×1 conv to one channel. */
function featureLayers(cIn: number, blocks: LevelBlocks): LayerSpec[] {
  const layers: LayerSpec[] = [];
  const name = () => `features.${layers.length}`;
  const convBnRelu = (from: number, to: number, kernel: number, stride: number, pad: number) => {
    layers.push({ kind: 'conv2d', name: name(), cIn: from, cOut: to, kernel, stride, pad });
    layers.push({ kind: 'batchnorm2d', name: name(), channels: to });
    layers.push({ kind: 'relu', name: name() });
  };
  let c = cIn;
  blocks.widths.forEach((width, i) => {
    convBnRelu(c, width, 3, 1, 1);
    convBnRelu(width, width, 3, 1, 1);
    if (blocks.downsample[i]) convBnRelu(width, width, 2, 2, 0);
    c = width;
  });
  layers.push({ kind: 'conv2d', name: name(), cIn: c, cOut: 1, kernel: 1, stride: 1, pad: 0 });
  return layers;
}

/** Level 1: input [3, patch, patch] in [0, 1]. */
export function patchNetworkSpec(config: ModelConfig): NetworkSpec {
  const { featureMapSize } = derivedSizes(config);
  return {
    input: [3, config.patch.size, config.patch.size],
    features: featureLayers(3, config.level1),
    classifier: [{ kind: 'linear', name: 'classifier.0', inFeatures: featureMapSize * featureMapSize, outFeatures: config.classes.length }],
  };
}

/** Level 2: input [K, map, map], K stacked Level-1 feature maps in raster order. */
export function imageNetworkSpec(config: ModelConfig): NetworkSpec {
  const { featureMapSize, level2Patches, level2MapSize } = derivedSizes(config);
  const classifier: LayerSpec[] = [];
  const name = () => `classifier.${classifier.length}`;
  let width = level2MapSize * level2MapSize;
  config.level2.hidden.forEach((hidden, i) => {
    classifier.push({ kind: 'linear', name: name(), inFeatures: width, outFeatures: hidden });
    classifier.push({ kind: 'relu', name: name() });
    classifier.push({ kind: 'dropout', name: name(), p: config.level2.dropout, stream: i });
    width = hidden;
  });
  classifier.push({ kind: 'linear', name: name(), inFeatures: width, outFeatures: config.classes.length });
  return { input: [level2Patches, featureMapSize, featureMapSize], features: featureLayers(level2Patches, config.level2), classifier };
}

/** Every state_dict entry of a network, in torch's order. */
export function stateShapes(spec: NetworkSpec): StateSpec[] {
  return [...spec.features, ...spec.classifier].flatMap(layerState);
}

/**
 * Float values in each network's state_dict (parameters and BatchNorm running statistics; not the
 * integer num_batches_tracked), from the config alone: a weights file can be checked against the
 * config its metadata carries before GPU memory is spent on it.
 */
export function stateFloatCounts(config: ModelConfig): { level1: number; level2: number } {
  const floats = (spec: NetworkSpec) => stateShapes(spec).filter((e) => e.dtype === 'F32').reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
  return { level1: floats(patchNetworkSpec(config)), level2: floats(imageNetworkSpec(config)) };
}
