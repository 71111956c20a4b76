/**
 * The multi-version kernels a module launches for an input shape, without launching anything: the
 * module tree is walked with shapes only, as ops.ts would run it. Forward: each Conv2d's and
 * Linear's forward; training adds their weight gradient and, past the first layer (whose input
 * needs no gradient), their data gradient. This is what autotune is asked to decide before a run.
 */
import type { Conv2dShape } from '../kernels/conv2d_shape.ts';
import { conv2dOutputSize } from '../kernels/conv2d_shape.ts';
import type { KernelRequest } from '../kernels/autotune.ts';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, Module, ReLU, Sequential } from './modules.ts';
import { TwoPartNetwork } from './networks.ts';
import { formatShape } from './tensor.ts';

interface Walk {
  training: boolean;
  /** Whether the tensor flowing in needs a gradient (false for the network's input). */
  needsGrad: boolean;
  uses: KernelRequest[];
}

function walk(m: Module, shape: readonly number[], w: Walk): readonly number[] {
  if (m instanceof Sequential) return m.layers.reduce((s, layer) => walk(layer, s, w), shape);
  if (m instanceof TwoPartNetwork) {
    const maps = walk(m.features, shape, w);
    const n = maps[0] as number;
    return walk(m.classifier, [n, maps.slice(1).reduce((a, b) => a * b, 1)], w);
  }
  if (m instanceof Conv2d) {
    if (shape.length !== 4) throw new Error(`kernelUses: conv '${m.prefix}' needs an NCHW input, got ${formatShape(shape)}`);
    const [n, cIn, h, wIn] = shape as [number, number, number, number];
    const [cOut] = m.weight.shape as [number];
    const s: Conv2dShape = { n, cIn, h, w: wIn, cOut, kh: m.kernel, kw: m.kernel, stride: m.stride, pad: m.pad };
    w.uses.push({ op: 'conv2d.forward', shape: s });
    if (w.training) {
      if (w.needsGrad) w.uses.push({ op: 'conv2d.dx', shape: s });
      w.uses.push({ op: 'conv2d.dw', shape: s });
    }
    w.needsGrad = w.training;
    const { ho, wo } = conv2dOutputSize(s);
    return [n, cOut, ho, wo];
  }
  if (m instanceof Linear) {
    if (shape.length !== 2) throw new Error(`kernelUses: linear '${m.prefix}' needs [n, features], got ${formatShape(shape)}`);
    const [n, inFeatures] = shape as [number, number];
    const [outFeatures] = m.weight.shape as [number];
    const s = { n, inFeatures, outFeatures };
    w.uses.push({ op: 'linear.forward', shape: s });
    if (w.training) {
      if (w.needsGrad) w.uses.push({ op: 'linear.dx', shape: s });
      w.uses.push({ op: 'linear.dw', shape: s });
    }
    w.needsGrad = w.training;
    return [n, outFeatures];
  }
  if (m instanceof Flatten) return [shape[0] as number, shape.slice(1).reduce((a, b) => a * b, 1)];
  if (m instanceof BatchNorm2d || m instanceof ReLU || m instanceof Dropout) return shape;
  throw new Error(`kernelUses: no shape rule for module ${m.constructor.name}`);
}

/**
 * The (op, shape) of each multi-version kernel `module` launches on an input of `shape`, layer by
 * layer (duplicates kept). `training`: with the backward pass (the module's parameters train).
 */
export function kernelUses(module: Module, shape: readonly number[], training: boolean): KernelRequest[] {
  const w: Walk = { training, needsGrad: false, uses: [] };
  walk(module, shape, w);
  return w.uses;
}
