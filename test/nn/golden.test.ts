/**
 * Parity with PyTorch: one training step of each `tiny` network on WebGPU against the fixtures
 * written by tools/make-golden.py (torch 1.13): log-probabilities, loss, every parameter gradient,
 * and every weight and BatchNorm running statistic after one Adam step.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/nn/config.ts';
import { BatchNorm2d, Conv2d } from '../../src/nn/modules.ts';
import { buildImageNetwork, buildPatchNetwork, type TwoPartNetwork } from '../../src/nn/networks.ts';
import { logSoftmaxNllLoss } from '../../src/nn/ops.ts';
import { Adam } from '../../src/nn/optim.ts';
import { entryToFloat32, parseSafetensors, type SafetensorsFile } from '../../src/nn/safetensors.ts';
import { Tape } from '../../src/nn/tape.ts';
import { Tensor } from '../../src/nn/tensor.ts';
import { loadWeights } from '../../src/nn/weights.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { closeMismatches, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';

/** The entries under `prefix.`, renamed without it, as a file of their own. */
function section(file: SafetensorsFile, prefix: string): SafetensorsFile {
  const tensors = new Map([...file.tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  return { tensors, metadata: {} };
}

function f32(file: SafetensorsFile, name: string): Float32Array {
  const entry = file.tensors.get(name);
  if (!entry) throw new Error(`fixture has no '${name}'`);
  return entryToFloat32(entry, name);
}

function targets(file: SafetensorsFile): Uint32Array {
  const entry = file.tensors.get('target');
  if (!entry) throw new Error('fixture has no target');
  const copy = new Uint8Array(entry.data);
  return Uint32Array.from(new BigInt64Array(copy.buffer), (v) => Number(v));
}

/** Relative to the tensor's largest magnitude: gradients of the tiny net span many decades. */
function expectNear(actual: Float32Array, expected: Float32Array, relative: number, what: string): void {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const { count, report } = closeMismatches(actual, expected, { atol: relative * scale + 1e-9, rtol: relative });
  if (count > 0) expect.fail(`${what}: ${report}`);
}

/**
 * Conv biases followed by BatchNorm: their true gradient is exactly zero (BatchNorm subtracts the
 * channel mean), so torch's and ours are both float noise, and Adam's first step moves them by ±lr
 * in a direction set by that noise. They are checked as "zero within noise" and "moved ≤ lr".
 */
function biasesBeforeBatchNorm(net: TwoPartNetwork): Set<string> {
  const layers = net.features.layers;
  return new Set(layers.flatMap((layer, i) => (layer instanceof Conv2d && layers[i + 1] instanceof BatchNorm2d ? [layer.bias.name] : [])));
}

async function trainOneStep(rt: Runtime, fixturePath: string, build: (rt: Runtime, config: ReturnType<typeof validateConfig>) => TwoPartNetwork) {
  const file = parseSafetensors(new Uint8Array(readFileSync(fixturePath)), fixturePath);
  const config = validateConfig(JSON.parse(file.metadata.config ?? 'null'));
  const net = build(rt, config).train();
  loadWeights(net, section(file, 'init.'), `${fixturePath} (init.)`);
  const inputEntry = file.tensors.get('input');
  const x = Tensor.fromArray(rt, f32(file, 'input'), inputEntry?.shape ?? [], 'input');
  const t = targets(file);
  const targetBuffer = rt.upload(t, 'targets');

  const tape = new Tape();
  const logits = net.forward(x, { tape, seed: 0 });
  const { logp, loss } = logSoftmaxNllLoss(logits, targetBuffer, tape);
  logits.release();
  expectNear(await logp.read(), f32(file, 'logp'), 1e-4, 'log-probabilities');
  expectNear(await loss.read(), f32(file, 'loss'), 1e-5, 'loss');
  tape.backward(loss);
  const noisy = biasesBeforeBatchNorm(net);
  for (const p of net.parameters()) {
    expect(p.grad, `gradient of ${p.name}`).not.toBeNull();
    const grad = await (p.grad as Tensor).read();
    if (noisy.has(p.name)) expectClose(grad, new Float32Array(grad.length), { atol: 1e-5, rtol: 0 }, `gradient of ${p.name} (zero in exact arithmetic)`);
    else expectNear(grad, f32(file, `grad.${p.name}`), 2e-3, `gradient of ${p.name}`);
  }
  const adam = new Adam(net.parameters(), { lr: 1e-3 });
  adam.update();
  for (const entry of net.state()) {
    if (entry.dtype === 'I64') {
      const after = new BigInt64Array(new Uint8Array(file.tensors.get(`after.${entry.name}`)?.data ?? []).buffer);
      expect(entry.get?.(), entry.name).toBe(Number(after[0]));
    } else {
      const tensor = entry.tensor as Tensor;
      const [expected, atol] = noisy.has(entry.name) ? [f32(file, `init.${entry.name}`), 1.001e-3] : [f32(file, `after.${entry.name}`), 2e-5];
      // After Adam every weight moved by ≈ lr = 1e-3; compare at a fraction of that step.
      const { count, report } = closeMismatches(await tensor.read(), expected, { atol, rtol: 1e-4 });
      if (count > 0) expect.fail(`${entry.name} after one step: ${report}`);
    }
  }
  [x, logp, loss].forEach((tensor) => tensor.release());
  rt.release(targetBuffer);
  adam.destroy();
  net.destroy();
}

describe('PyTorch parity (tools/make-golden.py fixtures)', () => {
  it('one training step of the tiny patch network (Level 1)', async () => {
    await trainOneStep(await gpu(), 'test/fixtures/golden-tiny-level1.safetensors', (rt, c) => buildPatchNetwork(rt, c, 0));
  });

  it('one training step of the tiny image network (Level 2, dropout 0)', async () => {
    await trainOneStep(await gpu(), 'test/fixtures/golden-tiny-level2.safetensors', (rt, c) => buildImageNetwork(rt, c, 0));
  });

  it('loads a PyTorch state_dict and rejects one of another architecture, naming the tensor', async () => {
    const rt = await gpu();
    const path = 'test/fixtures/tiny-level1-torch-state.safetensors';
    const file = parseSafetensors(new Uint8Array(readFileSync(path)), path);
    const config = validateConfig(JSON.parse(file.metadata.config ?? 'null'));
    const net = buildPatchNetwork(rt, config, 0);
    loadWeights(net, file, path);
    expectNear(await net.features.parameters()[0]!.read(), f32(file, 'features.0.weight'), 0, 'features.0.weight');
    const level2 = buildImageNetwork(rt, config, 0);
    expect(() => loadWeights(level2, file, path)).toThrow(/tiny-level1-torch-state.safetensors: tensor 'features.0.weight' has shape \[8, 3, 3, 3\], this model has \[16, 16, 3, 3\]/);
    net.destroy();
    level2.destroy();
  });
});
