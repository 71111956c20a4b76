/**
 * Data parallelism: on the same batch, two devices give the gradients of one (BatchNorm in eval
 * mode, dropout off) — also when the batch has fewer rows than devices — a two-device run trains
 * end to end with its replicas kept identical, and a NaN in one shard stops or skips the step on
 * every replica.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../src/kernels/node.ts';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { TINY_CONFIG } from '../../src/nn/config.ts';
import { buildPatchNetwork } from '../../src/nn/networks.ts';
import { logSoftmaxNllLoss } from '../../src/nn/ops.ts';
import { Tape } from '../../src/nn/tape.ts';
import { Tensor } from '../../src/nn/tensor.ts';
import { Replicated, shardRows } from '../../src/train/data_parallel.ts';
import { predictBatch } from '../../src/train/step.ts';
import { nllLossForwardRef } from '../../src/kernels/log_softmax_nll.ts';
import { expectBitwiseEqual, expectClose } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { randomArray } from '../helpers/random.ts';

const size = TINY_CONFIG.patch.size;
let second: Runtime | null = null;
afterAll(() => second?.destroy());

describe('data parallelism over devices', () => {
  it('every replica\'s Adam gets the learning rate and the weight decay (default 0)', async () => {
    const a = await gpu();
    const decayed = new Replicated([a], [buildPatchNetwork(a, TINY_CONFIG, 4)], 2e-3, 5e-4);
    expect(decayed.adams.map((adam) => [adam.lr, adam.options.weightDecay])).toEqual([[2e-3, 5e-4]]);
    const plain = new Replicated([a], [buildPatchNetwork(a, TINY_CONFIG, 4)], 1e-3);
    expect(plain.adam.options.weightDecay).toBe(0);
    [decayed, plain].forEach((r) => r.net.destroy());
  });

  it('a step trains against the label-smoothed target it was given, on one device and on two', async () => {
    const a = await gpu();
    second ??= await createNodeRuntime();
    const n = 4;
    const labels = Uint32Array.of(0, 3, 1, 3);
    const x = Tensor.fromArray(a, randomArray(n * 3 * size * size, 11, 0, 1), [n, 3, size, size]);
    const t = a.upload(labels);
    const reference = buildPatchNetwork(a, TINY_CONFIG, 4).eval();
    const logp = await predictBatch(reference, x);
    const classes = logp.length / n;
    for (const runtimes of [[a], [a, second]]) {
      // lr 0 and eval mode: the step's loss is the smoothed loss of the reference network's logp.
      const model = new Replicated(runtimes, runtimes.map((r) => buildPatchNetwork(r, TINY_CONFIG, 4)), 0, 0, 0.3);
      model.replicas.forEach((r) => r.eval());
      const { loss } = await model.step(x, t, labels, 0, 'smoothed step');
      expect(loss, `${runtimes.length} device(s)`).toBeCloseTo(nllLossForwardRef(logp, labels, { n, classes }, 0.3)[0] as number, 5);
      expect(Math.abs(loss - (nllLossForwardRef(logp, labels, { n, classes })[0] as number)), 'differs from the plain loss').toBeGreaterThan(1e-3);
      model.replicas.forEach((r) => r.destroy());
    }
    reference.destroy();
    x.release();
    a.release(t);
  });

  it('a batch of fewer rows than devices: the idle replica gets that batch\'s gradients, not stale ones', async () => {
    const a = await gpu();
    second ??= await createNodeRuntime();
    // lr 0 keeps the weights, so a one-device network can give the expected gradients afterwards.
    const pair = new Replicated([a, second], [buildPatchNetwork(a, TINY_CONFIG, 4), buildPatchNetwork(second, TINY_CONFIG, 4)], 0);
    pair.replicas.forEach((r) => r.eval());
    const batch = (n: number, seed: number) => ({ x: Tensor.fromArray(a, randomArray(n * 3 * size * size, seed, 0, 1), [n, 3, size, size]), labels: Uint32Array.from({ length: n }, (_, i) => (i + seed) % 4) });
    for (const [n, seed] of [[4, 1], [1, 2]] as const) {
      const { x, labels } = batch(n, seed);
      const t = a.upload(labels);
      expect((await pair.step(x, t, labels, 0, `step of ${n}`)).count).toBe(n);
      x.release();
      a.release(t);
    }
    const single = buildPatchNetwork(a, TINY_CONFIG, 4).eval();
    const { x, labels } = batch(1, 2);
    const t = a.upload(labels);
    const tape = new Tape();
    const logits = single.forward(x, { tape, seed: 0 });
    const { logp, loss } = logSoftmaxNllLoss(logits, t, tape);
    tape.backward(loss);
    [x, logits, logp, loss].forEach((tensor) => tensor.release());
    a.release(t);
    const [p0, p1] = pair.replicas.map((r) => r.parameters());
    for (const [i, p] of single.parameters().entries()) {
      const expected = await p.grad!.read();
      const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const g1 = await p1![i]!.grad!.read();
      expectClose(g1, expected, { atol: 1e-5 * scale + 1e-9, rtol: 1e-4 }, `gradient of ${p.name} on the idle replica`);
      expectBitwiseEqual(await p0![i]!.grad!.read(), g1, `${p.name} on both replicas`);
    }
    pair.destroy();
    pair.net.destroy();
    single.destroy();
  });

  it('splits rows into contiguous shards', () => {
    expect(shardRows(16, 2)).toEqual([[0, 8], [8, 16]]);
    expect(shardRows(5, 3)).toEqual([[0, 1], [1, 3], [3, 5]]);
    expect(shardRows(1, 2)).toEqual([[0, 1]]);
  });

  it('two devices give the same gradients as one on the same batch', async () => {
    const a = await gpu();
    second = await createNodeRuntime();
    const n = 6;
    const data = randomArray(n * 3 * size * size, 11, 0, 1);
    const labels = Uint32Array.from({ length: n }, (_, i) => (i * 3) % 4);

    const single = buildPatchNetwork(a, TINY_CONFIG, 9).eval();
    const x = Tensor.fromArray(a, data, [n, 3, size, size]);
    const t = a.upload(labels);
    const tape = new Tape();
    const logits = single.forward(x, { tape, seed: 0 });
    const { logp, loss } = logSoftmaxNllLoss(logits, t, tape);
    tape.backward(loss);
    [logits, logp].forEach((tensor) => tensor.release());

    const pair = new Replicated([a, second], [buildPatchNetwork(a, TINY_CONFIG, 9), buildPatchNetwork(second, TINY_CONFIG, 9)], 1e-3);
    pair.replicas.forEach((r) => r.eval());
    // The step of step.ts on each shard, gradients reduced by its hook (Adam's update leaves .grad).
    const r = await pair.step(x, t, labels, 0, 'two-device step');
    expect(r.count).toBe(n);
    expectClose(new Float32Array([r.loss]), await loss.read(), { atol: 1e-6, rtol: 1e-5 }, 'whole-batch loss');
    const [p0, p1] = pair.replicas.map((r) => r.parameters());
    for (const [i, p] of single.parameters().entries()) {
      const expected = await p.grad!.read();
      const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const g0 = await p0![i]!.grad!.read();
      expectClose(g0, expected, { atol: 1e-5 * scale + 1e-9, rtol: 1e-4 }, `gradient of ${p.name}`);
      expectBitwiseEqual(g0, await p1![i]!.grad!.read(), `${p.name} on both replicas`);
    }
    x.release();
    loss.release();
    a.release(t);
    pair.destroy();
    pair.net.destroy();
    single.destroy();
  });

  it('replicas stay identical over training steps', async () => {
    const a = await gpu();
    second ??= await createNodeRuntime();
    const pair = new Replicated([a, second], [buildPatchNetwork(a, TINY_CONFIG, 4), buildPatchNetwork(second, TINY_CONFIG, 4)], 1e-3);
    pair.train();
    const n = 8;
    const labels = Uint32Array.from({ length: n }, (_, i) => i % 4);
    const t = a.upload(labels);
    const losses: number[] = [];
    for (let step = 0; step < 3; step++) {
      const x = Tensor.fromArray(a, randomArray(n * 3 * size * size, step, 0, 1), [n, 3, size, size]);
      losses.push((await pair.step(x, t, labels, step, `step ${step}`)).loss);
      x.release();
    }
    const [s0, s1] = pair.replicas.map((r) => r.state());
    for (const [i, e] of s0!.entries()) {
      if (e.tensor) expectBitwiseEqual(await e.tensor.read(), await s1![i]!.tensor!.read(), e.name);
      else expect(s1![i]!.get!()).toBe(e.get!());
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    a.release(t);
    pair.destroy();
    pair.net.destroy();
  });

  it('a NaN in a shard: skipped with every replica as before, or stops the step', async () => {
    const a = await gpu();
    second ??= await createNodeRuntime();
    const pair = new Replicated([a, second], [buildPatchNetwork(a, TINY_CONFIG, 4), buildPatchNetwork(second, TINY_CONFIG, 4)], 1e-3);
    pair.train();
    const n = 4;
    const labels = Uint32Array.from({ length: n }, (_, i) => i % 4);
    const t = a.upload(labels);
    const data = randomArray(n * 3 * size * size, 5, 0, 1);
    data[data.length - 1] = NaN; // in the second device's shard
    const x = Tensor.fromArray(a, data, [n, 3, size, size]);
    const before = await Promise.all(pair.replicas.map(async (r) => Promise.all(r.state().map((e) => e.tensor?.read() ?? e.get!()))));
    const r = await pair.step(x, t, labels, 0, 'step 1', 'skip');
    expect(r.skipped?.parameters.length).toBeGreaterThan(0);
    expect(pair.adams.map((adam) => adam.step)).toEqual([0, 0]);
    for (const [k, replica] of pair.replicas.entries()) {
      for (const [i, e] of replica.state().entries()) {
        const was = before[k]![i]!;
        if (e.tensor) expectBitwiseEqual(await e.tensor.read(), was as Float32Array, `replica ${k} ${e.name}`);
        else expect(e.get!()).toBe(was);
      }
    }
    await expect(pair.step(x, t, labels, 0, 'step 1')).rejects.toThrow(/^step 1 \(optimizer step 1\): the loss is NaN; /);
    for (const [i, p] of pair.net.parameters().entries()) expectBitwiseEqual(await p.read(), before[0]![pair.net.state().findIndex((e) => e.name === p.name)] as Float32Array, `${p.name} after stopping (${i})`);
    x.release();
    a.release(t);
    pair.destroy();
    pair.net.destroy();
  });
});
