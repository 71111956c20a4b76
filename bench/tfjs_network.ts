/**
 * The Level-1 patch network of MODEL-SPEC.md written with TensorFlow.js ops, for the TF.js side of
 * the benchmark (bench/tfjs.ts). Its convolutions come from src/nn/architecture.ts (the one
 * description of the network), for the same ModelConfig: per block conv3×3(+bias) → BatchNorm (batch statistics) → ReLU, twice, then
 * conv2×2/s2 → BN → ReLU when the block downsamples; a final 1×1 conv to one channel; flatten;
 * Linear(map², C); log_softmax; NLL.
 *
 * Layout is TF.js's: NHWC activations, HWIO conv filters, [in, out] linear weights. With one
 * channel, flattening the NHWC feature map gives the same (h, w) order as PyTorch's NCHW flatten.
 * Parameters are named as PyTorch's state_dict (`features.0.weight`, …, `classifier.0.bias`).
 * Initialisation as the original code: Kaiming normal (fan_in, ReLU gain), zero biases, BN γ=1 β=0,
 * linear N(0, 0.01).
 *
 * Types only are imported from TF.js: the module itself is loaded by createTfjs (bench/tfjs.ts),
 * after `navigator.gpu` is set, and handed in as `tf`.
 */
import type * as TF from '@tensorflow/tfjs';
import { patchNetworkSpec } from '../src/nn/architecture.ts';
import { derivedSizes, type ModelConfig } from '../src/nn/config.ts';

export type Tf = typeof TF;

/** One convolution of the features stack (PyTorch index `features.<index>`). */
interface ConvLayer {
  index: number;
  cIn: number;
  cOut: number;
  kernel: number;
  stride: number;
  pad: number;
  /** Followed by BatchNorm2d (at index + 1) and ReLU; false only for the final 1×1 conv. */
  bnRelu: boolean;
}

interface BatchNormState {
  gamma: TF.Variable;
  beta: TF.Variable;
  runningMean: TF.Variable;
  runningVar: TF.Variable;
}

/** The batch statistics of one BatchNorm layer, kept from the forward pass to update running stats. */
interface BatchStats {
  layer: BatchNormState;
  mean: TF.Tensor;
  variance: TF.Tensor;
  count: number;
}

export interface TfjsPatchNetwork {
  config: ModelConfig;
  /** Trainable variables by PyTorch name, in state_dict order. */
  params: Map<string, TF.Variable>;
  /** Σ sizes of `params` (1,219,237 for the seed config with 4 classes). */
  parameterCount: number;
  /** Multiply-adds ×2 of one forward pass over `batch` patches: every conv and the linear layer. */
  forwardFlops(batch: number): number;
  /** Log-probabilities [n, C] of x [n, size, size, 3]; `training` uses batch statistics. */
  forward(x: TF.Tensor4D, training: boolean, stats?: BatchStats[]): TF.Tensor2D;
  /**
   * One training step: forward (training mode), NLL on log_softmax against `oneHot` [n, C], backward,
   * `optimizer` update of every parameter, then the running statistics (momentum 0.1, unbiased
   * variance, as PyTorch). Returns the loss (a scalar the caller disposes); nothing is read back.
   */
  trainStep(optimizer: TF.Optimizer, x: TF.Tensor4D, oneHot: TF.Tensor2D): TF.Scalar;
  dispose(): void;
}

const BN_EPS = 1e-5;
const BN_MOMENTUM = 0.1;
/** TF.js variable names are global to its engine: each network gets its own suffix. */
let networksBuilt = 0;

/** The convolutions of the Level-1 features stack, with their PyTorch indices: from src/nn/architecture.ts, the one description. */
function convLayers(config: ModelConfig): ConvLayer[] {
  const { features } = patchNetworkSpec(config);
  return features.flatMap((l, i) =>
    l.kind === 'conv2d' ? [{ index: i, cIn: l.cIn, cOut: l.cOut, kernel: l.kernel, stride: l.stride, pad: l.pad, bnRelu: features[i + 1]?.kind === 'batchnorm2d' }] : [],
  );
}

/** Trainable parameter shapes by PyTorch name, in TF.js layout (HWIO filters, [in, out] linear). */
export function patchNetworkParameterShapes(config: ModelConfig): Map<string, number[]> {
  const { featureMapSize } = derivedSizes(config);
  const shapes = new Map<string, number[]>();
  for (const l of convLayers(config)) {
    shapes.set(`features.${l.index}.weight`, [l.kernel, l.kernel, l.cIn, l.cOut]);
    shapes.set(`features.${l.index}.bias`, [l.cOut]);
    if (l.bnRelu) {
      shapes.set(`features.${l.index + 1}.weight`, [l.cOut]);
      shapes.set(`features.${l.index + 1}.bias`, [l.cOut]);
    }
  }
  shapes.set('classifier.0.weight', [featureMapSize * featureMapSize, config.classes.length]);
  shapes.set('classifier.0.bias', [config.classes.length]);
  return shapes;
}

/** Multiply-adds ×2 of one forward pass over `batch` patches: every conv and the linear layer. */
export function patchNetworkForwardFlops(config: ModelConfig, batch: number): number {
  const { featureMapSize } = derivedSizes(config);
  let flops = 2 * batch * featureMapSize * featureMapSize * config.classes.length;
  let size = config.patch.size;
  for (const l of convLayers(config)) {
    size = Math.floor((size + 2 * l.pad - l.kernel) / l.stride) + 1;
    flops += 2 * batch * size * size * l.cOut * l.cIn * l.kernel * l.kernel;
  }
  return flops;
}

/** Builds the Level-1 network of `config` as TF.js variables on the current backend. */
export function buildTfjsPatchNetwork(tf: Tf, config: ModelConfig, seed = 1): TfjsPatchNetwork {
  const { featureMapSize } = derivedSizes(config);
  const classes = config.classes.length;
  const layers = convLayers(config);
  const params = new Map<string, TF.Variable>();
  const bn = new Map<number, BatchNormState>();
  const others: TF.Variable[] = [];
  let nextSeed = seed;
  const suffix = `@tfjs-net-${networksBuilt++}`;
  const variable = (name: string, t: TF.Tensor, trainable = true) => {
    const v = tf.variable(t, trainable, `${name}${suffix}`);
    t.dispose();
    if (trainable) params.set(name, v);
    else others.push(v);
    return v;
  };

  const weights = layers.map((l) => {
    const fanIn = l.cIn * l.kernel * l.kernel;
    const filter = variable(`features.${l.index}.weight`, tf.randomNormal([l.kernel, l.kernel, l.cIn, l.cOut], 0, Math.sqrt(2 / fanIn), 'float32', nextSeed++));
    const bias = variable(`features.${l.index}.bias`, tf.zeros([l.cOut]));
    if (l.bnRelu) {
      const name = `features.${l.index + 1}`;
      bn.set(l.index, {
        gamma: variable(`${name}.weight`, tf.ones([l.cOut])),
        beta: variable(`${name}.bias`, tf.zeros([l.cOut])),
        runningMean: variable(`${name}.running_mean`, tf.zeros([l.cOut]), false),
        runningVar: variable(`${name}.running_var`, tf.ones([l.cOut]), false),
      });
    }
    return { filter: filter as TF.Variable<TF.Rank.R4>, bias: bias as TF.Variable<TF.Rank.R1> };
  });
  const flat = featureMapSize * featureMapSize;
  const linearW = variable('classifier.0.weight', tf.randomNormal([flat, classes], 0, 0.01, 'float32', nextSeed++)) as TF.Variable<TF.Rank.R2>;
  const linearB = variable('classifier.0.bias', tf.zeros([classes])) as TF.Variable<TF.Rank.R1>;

  function forward(x: TF.Tensor4D, training: boolean, stats?: BatchStats[]): TF.Tensor2D {
    let h = x;
    layers.forEach((l, i) => {
      const { filter, bias } = weights[i] as { filter: TF.Variable<TF.Rank.R4>; bias: TF.Variable<TF.Rank.R1> };
      h = tf.fused.conv2d({ x: h, filter, bias, strides: l.stride, pad: l.pad });
      const norm = bn.get(l.index);
      if (!norm) return;
      let mean: TF.Tensor;
      let variance: TF.Tensor;
      if (training) {
        ({ mean, variance } = tf.moments(h, [0, 1, 2]));
        if (stats) stats.push({ layer: norm, mean: tf.keep(mean), variance: tf.keep(variance), count: h.size / l.cOut });
      } else {
        mean = norm.runningMean;
        variance = norm.runningVar;
      }
      h = tf.relu(tf.batchNorm(h, mean, variance, norm.beta, norm.gamma, BN_EPS)) as TF.Tensor4D;
    });
    const logits = tf.fused.matMul({ a: tf.reshape(h, [h.shape[0], flat]), b: linearW, bias: linearB });
    return tf.logSoftmax(logits) as TF.Tensor2D;
  }

  function trainStep(optimizer: TF.Optimizer, x: TF.Tensor4D, oneHot: TF.Tensor2D): TF.Scalar {
    const stats: BatchStats[] = [];
    const loss = optimizer.minimize(() => tf.neg(tf.mean(tf.sum(tf.mul(forward(x, true, stats), oneHot), 1))) as TF.Scalar, true, [...params.values()]);
    tf.tidy(() => {
      for (const { layer, mean, variance, count } of stats) {
        layer.runningMean.assign(tf.add(tf.mul(layer.runningMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
        const unbiased = tf.mul(variance, count / Math.max(1, count - 1));
        layer.runningVar.assign(tf.add(tf.mul(layer.runningVar, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
      }
    });
    for (const s of stats) tf.dispose([s.mean, s.variance]);
    if (!loss) throw new Error('tfjs patch network: optimizer.minimize returned no loss');
    return loss;
  }

  return {
    config,
    params,
    parameterCount: [...params.values()].reduce((n, v) => n + v.size, 0),
    forwardFlops: (batch) => patchNetworkForwardFlops(config, batch),
    forward,
    trainStep,
    dispose: () => tf.dispose([...params.values(), ...others]),
  };
}
