import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stateFloatCounts } from '../../src/nn/architecture.ts';
import { derivedSizes, SEED_CONFIG, TINY_CONFIG } from '../../src/nn/config.ts';
import { readFileBytes, writeFileAtomic } from '../../src/nn/files.ts';
import { buildImageNetwork, buildPatchNetwork } from '../../src/nn/networks.ts';
import { logSoftmaxNllLoss } from '../../src/nn/ops.ts';
import { Adam } from '../../src/nn/optim.ts';
import { Tape } from '../../src/nn/tape.ts';
import { readTensors, Tensor } from '../../src/nn/tensor.ts';
import { loadWeightsFromBytes, weightsToSafetensors } from '../../src/nn/weights.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { expectBitwiseEqual } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const size = TINY_CONFIG.patch.size;

function batch(rt: Runtime, n: number, seed: number): { x: Tensor; t: GPUBuffer } {
  const x = Tensor.fromArray(rt, randomArray(n * 3 * size * size, seed, 0, 1), [n, 3, size, size], 'x');
  const t = rt.upload(Uint32Array.from({ length: n }, (_, i) => (i + seed) % 4), 'targets');
  return { x, t };
}

describe('networks', () => {
  it('the seed preset has the parameter counts of MODEL-SPEC', async () => {
    const rt = await gpu();
    const level1 = buildPatchNetwork(rt, SEED_CONFIG, 1);
    const level2 = buildImageNetwork(rt, SEED_CONFIG, 1);
    expect(level1.parameterCount()).toBe(1_219_237);
    expect(level2.parameterCount()).toBe(414_149);
    expect(level1.state().map((e) => e.name).slice(0, 7)).toEqual([
      'features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias',
      'features.1.running_mean', 'features.1.running_var', 'features.1.num_batches_tracked',
    ]);
    expect(level2.state().at(-1)?.name).toBe('classifier.9.bias');
    level1.destroy();
    level2.destroy();
  });

  it('stateFloatCounts counts the float tensors the built networks hold, for every preset and a deeper config', async () => {
    const rt = await gpu();
    const deeper = { ...TINY_CONFIG, level1: { widths: [4, 6, 8, 8, 12, 5], downsample: [true, false, true, true, false, false] }, level2: { ...TINY_CONFIG.level2, hidden: [7] } };
    for (const config of [SEED_CONFIG, TINY_CONFIG, deeper]) {
      const nets = { level1: buildPatchNetwork(rt, config, 1), level2: buildImageNetwork(rt, config, 1) };
      const floats = (net: typeof nets.level1) => net.state().filter((e) => e.dtype === 'F32').reduce((n, e) => n + e.shape.reduce((a, b) => a * b, 1), 0);
      expect(stateFloatCounts(config)).toEqual({ level1: floats(nets.level1), level2: floats(nets.level2) });
      nets.level1.destroy();
      nets.level2.destroy();
    }
  });

  it("Level 2's Linear layers: N(0, 0.01) when linearInit is absent or normal-0.01, Kaiming normal (std √(2/fan_in)) when kaiming-normal; the same draws, and the convs unchanged", async () => {
    const rt = await gpu();
    const withInit = (linearInit?: 'normal-0.01' | 'kaiming-normal') => {
      const level2 = { ...TINY_CONFIG.level2 };
      if (linearInit) level2.linearInit = linearInit;
      else delete level2.linearInit;
      return buildImageNetwork(rt, { ...TINY_CONFIG, level2 }, 7);
    };
    const [absent, original, kaiming] = [withInit(), withInit('normal-0.01'), withInit('kaiming-normal')];
    const [pa, po, pk] = await Promise.all([absent, original, kaiming].map((net) => readTensors(net.parameters())));
    let linears = 0;
    for (let i = 0; i < pa.length; i++) {
      const a = absent.parameters()[i]!;
      const [va, vo, vk] = [pa[i]!, po![i]!, pk![i]!];
      expectBitwiseEqual(vo, va, `${a.name}: absent = normal-0.01`);
      if (!(a.name.startsWith('classifier.') && a.name.endsWith('.weight'))) {
        expectBitwiseEqual(vk, va, `${a.name}: not a Linear weight, unchanged`);
        continue;
      }
      linears++;
      const fanIn = a.shape[1] as number;
      const scale = Math.sqrt(2 / fanIn) / 0.01;
      for (let j = 0; j < va.length; j++) expect(Math.abs(vk[j]! - scale * va[j]!), `${a.name}[${j}]`).toBeLessThanOrEqual(1e-6 * Math.abs(vk[j]!) + 1e-12);
      const std = Math.sqrt(vk.reduce((s, v) => s + v * v, 0) / vk.length);
      expect(std / Math.sqrt(2 / fanIn), `${a.name} std`).toBeGreaterThan(0.75);
      expect(std / Math.sqrt(2 / fanIn), `${a.name} std`).toBeLessThan(1.25);
    }
    expect(linears).toBe(TINY_CONFIG.level2.hidden.length + 1);
    [absent, original, kaiming].forEach((n) => n.destroy());
  });

  it('the same seed gives the same initial weights, another seed others', async () => {
    const rt = await gpu();
    const [a, b, c] = [1, 1, 2].map((seed) => buildPatchNetwork(rt, TINY_CONFIG, seed));
    const wa = await a!.parameters()[0]!.read();
    expectBitwiseEqual(wa, await b!.parameters()[0]!.read(), 'same seed');
    expect(wa).not.toEqual(await c!.parameters()[0]!.read());
    [a, b, c].forEach((n) => n!.destroy());
  });

  it('training steps free every intermediate: the pool high-water mark does not grow', async () => {
    const rt = await gpu();
    const net = buildPatchNetwork(rt, TINY_CONFIG, 3).train();
    const adam = new Adam(net.parameters(), { lr: 1e-3 });
    const { x, t } = batch(rt, 4, 1);
    const marks: number[] = [];
    const inUse: number[] = [];
    const losses: number[] = [];
    for (let step = 0; step < 6; step++) {
      rt.pool.resetHighWater();
      adam.zeroGrad();
      const tape = new Tape();
      const logits = net.forward(x, { tape, seed: step });
      const { logp, loss } = logSoftmaxNllLoss(logits, t, tape);
      logits.release();
      logp.release();
      tape.backward(loss);
      adam.update();
      losses.push((await loss.read())[0] as number);
      loss.release();
      marks.push(rt.poolStats().highWaterBytes);
      inUse.push(rt.poolStats().inUseBytes);
    }
    expect(new Set(marks.slice(1)).size, `high-water marks ${marks}`).toBe(1);
    expect(new Set(inUse.slice(1)).size, `bytes in use ${inUse}`).toBe(1);
    expect(losses.at(-1)!, `losses ${losses}`).toBeLessThan(losses[0]!);
    x.release();
    rt.release(t);
    adam.destroy();
    net.destroy();
  });

  it('a forward without a tape (no-grad) keeps nothing but its output', async () => {
    const rt = await gpu();
    const net = buildImageNetwork(rt, TINY_CONFIG, 4).eval();
    const { level2Patches, featureMapSize } = derivedSizes(TINY_CONFIG);
    const x = Tensor.fromArray(rt, randomArray(2 * level2Patches * featureMapSize ** 2, 5), [2, level2Patches, featureMapSize, featureMapSize]);
    const before = rt.poolStats().inUseBytes;
    const y1 = net.forward(x, { tape: null, seed: 0 });
    expect(y1.shape).toEqual([2, 4]);
    expect(rt.poolStats().inUseBytes - before).toBe(y1.buffer.size);
    const y2 = net.forward(x, { tape: null, seed: 1 });
    expectBitwiseEqual(await y1.read(), await y2.read(), 'eval forward (dropout off)');
    [x, y1, y2].forEach((tensor) => tensor.release());
    net.destroy();
  });

  it('weights round-trip through an atomically written safetensors file', async () => {
    const rt = await gpu();
    const dir = mkdtempSync(join(tmpdir(), 'lungpath-weights-'));
    const a = buildPatchNetwork(rt, TINY_CONFIG, 7);
    const b = buildPatchNetwork(rt, TINY_CONFIG, 8);
    const path = join(dir, 'level1.safetensors');
    writeFileAtomic(path, await weightsToSafetensors(a, { config: JSON.stringify(TINY_CONFIG) }));
    expect(readdirSync(dir)).toEqual(['level1.safetensors']);
    const metadata = loadWeightsFromBytes(b, readFileBytes(path), path);
    expect(JSON.parse(metadata.config ?? '{}').classes).toEqual(TINY_CONFIG.classes);
    for (const [pa, pb] of a.parameters().map((p, i) => [p, b.parameters()[i]!] as const)) {
      expectBitwiseEqual(await pa.read(), await pb.read(), pa.name);
    }
    a.destroy();
    b.destroy();
  });
});
