/**
 * The TF.js comparison is live: TF.js's WebGPU backend initialises on the adapter our runtime uses,
 * and the conv ops the benchmark times (forward, dx, dW) match our CPU references and TF.js's own
 * conv2d gradient (tf.grads). The network definition is checked against MODEL-SPEC.md's counts.
 */
import type * as TF from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { checkTfjsConv, CHECK_SHAPES, createTfjs, tfjsConvOps } from '../../bench/tfjs.ts';
import { patchNetworkForwardFlops, patchNetworkParameterShapes } from '../../bench/tfjs_network.ts';
import { describeAdapter } from '../../src/kernels/device.ts';
import { SEED_CONFIG } from '../../src/nn/config.ts';
import { gpu } from '../helpers/gpu.ts';

describe('TF.js WebGPU comparison', () => {
  it('runs on the same adapter as our runtime', async () => {
    const rt = await gpu();
    const ctx = await createTfjs();
    expect(ctx.version).toBe('4.22.0');
    expect(ctx.flags.WEBGPU_CPU_FORWARD).toBe(false);
    expect(ctx.adapter).toBe(describeAdapter(rt.adapter));
  });

  it('times the same maths: conv forward, dx and dW match the CPU reference', async () => {
    const ctx = await createTfjs();
    const checks = await checkTfjsConv(ctx, CHECK_SHAPES.slice(0, 1));
    expect(checks.filter((c) => !c.ok), JSON.stringify(checks)).toEqual([]);
    expect(checks).toHaveLength(3);
  });

  it('times what tf.grads runs: dx and dW equal the conv2d gradient', async () => {
    const { tf } = await createTfjs();
    const s = CHECK_SHAPES[0]!;
    const ops = tfjsConvOps(tf, s);
    const x = tf.randomUniform(ops.shapes.x, -1, 1, 'float32', 1) as TF.Tensor4D;
    const w = tf.randomUniform(ops.shapes.filter, -1, 1, 'float32', 2) as TF.Tensor4D;
    const dy = tf.randomUniform(ops.shapes.dy, -1, 1, 'float32', 3) as TF.Tensor4D;
    const [gx, gw] = tf.grads((a, b) => tf.conv2d(a as typeof x, b as typeof w, s.stride, s.pad))([x, w], dy);
    const direct = [ops.dx(dy, w), ops.dW(x, dy)];
    const diff = await Promise.all([tf.max(tf.abs(tf.sub(gx!, direct[0]!))).data(), tf.max(tf.abs(tf.sub(gw!, direct[1]!))).data()]);
    tf.dispose([x, w, dy, gx!, gw!, ...direct]);
    expect(diff.map((d) => d[0])).toEqual([0, 0]);
  });

  it('builds the seed Level-1 network with MODEL-SPEC.md parameter count and cost', () => {
    const count = [...patchNetworkParameterShapes(SEED_CONFIG).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    expect(count).toBe(1_219_237);
    expect(patchNetworkForwardFlops(SEED_CONFIG, 1) / 1e9).toBeCloseTo(14.52, 2);
  });
});
