/**
 * BatchNorm2d → ReLU fused (ops.ts batchNorm2dRelu, used by Sequential when `fusion.bnRelu`): a few
 * training steps of each `tiny` network with the fusion on and off end with the same bits in the
 * loss of every step, every weight, every BatchNorm running statistic and an eval-mode forward
 * (ReLU and its mask are exact, so fusing may not change a single value); the fused path runs
 * fewer dispatches; the module list, state names and kernel uses are untouched.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { derivedSizes, PRESETS, type ModelConfig } from '../../src/nn/config.ts';
import { kernelUses } from '../../src/nn/kernel_uses.ts';
import { fusion } from '../../src/nn/modules.ts';
import { buildImageNetwork, buildPatchNetwork, type TwoPartNetwork } from '../../src/nn/networks.ts';
import { Adam } from '../../src/nn/optim.ts';
import { Tensor } from '../../src/nn/tensor.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { trainStep } from '../../src/train/step.ts';
import { expectBitwiseEqual } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const STEPS = 3;
const BATCH = 4;
const initial = fusion.bnRelu;
afterEach(() => {
  fusion.bnRelu = initial;
});

type Build = (rt: Runtime, config: ModelConfig, seed: number) => TwoPartNetwork;
const LEVELS: [string, Build, (c: ModelConfig) => number[]][] = [
  ['Level 1 (patch network)', buildPatchNetwork, (c) => [3, c.patch.size, c.patch.size]],
  ['Level 2 (image network, dropout on)', buildImageNetwork, (c) => [derivedSizes(c).level2Patches, derivedSizes(c).featureMapSize, derivedSizes(c).featureMapSize]],
];

/** STEPS Adam steps of a fresh tiny network on fixed random batches; every value the run produces. */
async function train(rt: Runtime, build: Build, item: number[], fused: boolean) {
  fusion.bnRelu = fused;
  const config = PRESETS.tiny!;
  const net = build(rt, config, 0).train();
  const adam = new Adam(net.parameters(), { lr: 1e-2 });
  const losses = new Float32Array(STEPS);
  const before = rt.counters.dispatches;
  for (let step = 0; step < STEPS; step++) {
    const size = BATCH * item.reduce((a, b) => a * b, 1);
    const x = Tensor.fromArray(rt, randomArray(size, 100 + step, 0, 1), [BATCH, ...item], 'x');
    const labels = Uint32Array.from({ length: BATCH }, (_, i) => (i + step) % config.classes.length);
    const labelBuffer = rt.upload(labels);
    losses[step] = (await trainStep(net, adam, x, labelBuffer, labels, 7 + step, `step ${step}`)).loss;
    x.release();
    rt.release(labelBuffer);
  }
  const dispatches = rt.counters.dispatches - before;
  const state = new Map<string, Float32Array>();
  for (const e of net.state()) if (e.tensor) state.set(e.name, await e.tensor.read());
  net.eval();
  const x = Tensor.fromArray(rt, randomArray(BATCH * item.reduce((a, b) => a * b, 1), 999, 0, 1), [BATCH, ...item], 'x');
  const logits = net.forward(x, { tape: null, seed: 0 });
  state.set('eval logits', await logits.read());
  [x, logits].forEach((t) => t.release());
  adam.destroy();
  net.destroy();
  return { losses, state, dispatches };
}

describe('BatchNorm2d → ReLU fusion gives the same bits as the separate layers', () => {
  it.each(LEVELS)(`%s: ${STEPS} training steps, then an eval forward`, async (_name, build, item) => {
    const rt = await gpu();
    const shape = item(PRESETS.tiny!);
    const unfused = await train(rt, build, shape, false);
    const fused = await train(rt, build, shape, true);
    expect(unfused.losses.every(Number.isFinite)).toBe(true);
    expectBitwiseEqual(fused.losses, unfused.losses, 'losses');
    expect([...fused.state.keys()]).toEqual([...unfused.state.keys()]);
    for (const [name, values] of unfused.state) expectBitwiseEqual(fused.state.get(name)!, values, name);
    expect(fused.dispatches, 'the fused run skips the ReLU passes').toBeLessThan(unfused.dispatches);
  }, 120_000);

  it('keeps the module list, the state names and the kernel uses', async () => {
    const rt = await gpu();
    const config = PRESETS.tiny!;
    const names = (net: TwoPartNetwork) => net.state().map((e) => e.name);
    fusion.bnRelu = false;
    const a = buildPatchNetwork(rt, config, 0);
    fusion.bnRelu = true;
    const b = buildPatchNetwork(rt, config, 0);
    expect(names(b)).toEqual(names(a));
    expect(b.features.layers.map((l) => l.constructor.name)).toEqual(a.features.layers.map((l) => l.constructor.name));
    expect(a.features.layers.some((l) => l.constructor.name === 'ReLU')).toBe(true);
    const item = [BATCH, 3, config.patch.size, config.patch.size];
    expect(kernelUses(b, item, true)).toEqual(kernelUses(a, item, true));
    a.destroy();
    b.destroy();
  });
});
