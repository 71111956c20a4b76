/**
 * Numerical faults: a NaN planted in one gradient (loss finite) stops the step with the parameter
 * named and nothing updated, or — skipping — leaves weights, Adam and BatchNorm statistics as they
 * were; a learning rate that overflows the weights stops a run naming the step and layers with the
 * checkpoint on disk untouched; a NaN in one Level-2 input stops the run, and with
 * --skip-nonfinite is skipped once per epoch, counted in metrics.jsonl, until the limit.
 */
import { createHash } from 'node:crypto';
import { existsSync, openSync, readdirSync, readFileSync, writeSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { derivedSizes } from '../../src/nn/config.ts';
import { buildImageNetwork, type TwoPartNetwork } from '../../src/nn/networks.ts';
import { Adam } from '../../src/nn/optim.ts';
import { parseSafetensors, entryToFloat32 } from '../../src/nn/safetensors.ts';
import { Tape } from '../../src/nn/tape.ts';
import { Tensor } from '../../src/nn/tensor.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { NonFiniteError } from '../../src/train/guard.ts';
import { trainStep } from '../../src/train/step.ts';
import { expectBitwiseEqual } from '../helpers/check.ts';
import { gpu } from '../helpers/gpu.ts';
import { MICRO, microSetup, trainMicro, type MicroSetup } from '../helpers/micro_run.ts';

let setup: MicroSetup;
beforeAll(async () => {
  setup = await microSetup('lungpath-nonfinite-');
});
afterAll(() => rmSync(setup.root, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const hash = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Every F32 state entry of a network (weights, running statistics), read back. */
async function stateValues(net: TwoPartNetwork): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const e of net.state()) if (e.tensor) out.set(e.name, await e.tensor.read());
  return out;
}

/** After the real backward, the gradient of `name` gets a NaN — a fault the loss does not show. */
function poisonGradient(net: TwoPartNetwork, name: string): void {
  const backward = Tape.prototype.backward;
  vi.spyOn(Tape.prototype, 'backward').mockImplementation(function (this: Tape, loss, dLoss) {
    backward.call(this, loss, dLoss);
    const p = net.parameters().find((q) => q.name === name);
    if (!p?.grad) throw new Error(`no gradient of ${name}`);
    p.rt.write(p.grad.buffer, new Float32Array([NaN]), 4 * 5);
  });
}

describe('the non-finite guard of a step', () => {
  async function stepCase(policy: 'stop' | 'skip') {
    const rt = await gpu();
    const net = buildImageNetwork(rt, MICRO, 1);
    const adam = new Adam(net.parameters(), { lr: 1e-3 });
    const { level2Patches: k, featureMapSize: m } = derivedSizes(MICRO);
    const x = Tensor.fromArray(rt, new Float32Array(4 * k * m * m).map((_, i) => Math.sin(i)), [4, k, m, m], 'x');
    const labels = rt.upload(new Uint32Array([0, 1, 2, 3]));
    net.train();
    await trainStep(net, adam, x, labels, [0, 1, 2, 3], 7, 'warm-up');
    const before = await stateValues(net);
    const counters = net.state().flatMap((e) => (e.get ? [e.get()] : []));
    poisonGradient(net, 'features.3.weight');
    return { rt, net, adam, x, labels, before, counters, step: () => trainStep(net, adam, x, labels, [0, 1, 2, 3], 8, 'test step 2', { onNonFinite: policy }) };
  }

  it('stops naming the step and the parameter; no weight or Adam state changes', async () => {
    const { net, adam, x, before, step } = await stepCase('stop');
    const moments = await Promise.all(adam.stateTensors().map((t) => t.read()));
    const error = await step().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonFiniteError);
    expect((error as Error).message).toMatch(/^test step 2 \(optimizer step 2\): 1 of \d+ parameter gradients hold NaN or Inf, nearest the loss first: features\.3\.weight \(NaN\); this step's update was not applied/);
    expect(Number.isFinite((error as NonFiniteError).report.loss)).toBe(true);
    expect(adam.step).toBe(1);
    const after = await stateValues(net);
    for (const p of net.parameters()) expectBitwiseEqual(after.get(p.name)!, before.get(p.name)!, p.name);
    (await Promise.all(adam.stateTensors().map((t) => t.read()))).forEach((m, i) => expectBitwiseEqual(m, moments[i]!, `moment ${i}`));
    x.release();
  });

  it('with policy skip: reports the skip and puts back weights, running statistics and counters', async () => {
    const { net, adam, x, before, counters, step } = await stepCase('skip');
    const r = await step();
    expect(r.skipped?.parameters).toEqual([{ name: 'features.3.weight', kind: 'NaN' }]);
    expect(adam.step).toBe(1);
    const after = await stateValues(net);
    for (const [name, values] of before) expectBitwiseEqual(after.get(name)!, values, name);
    expect(net.state().flatMap((e) => (e.get ? [e.get()] : []))).toEqual(counters);
    vi.restoreAllMocks();
    const next = await step();
    expect([next.skipped, adam.step]).toEqual([undefined, 2]);
    x.release();
  });
});

describe('non-finite values in a run', () => {
  it('a learning rate that overflows the weights stops at the next step; the checkpoint stays the last good one', async () => {
    const rt = await gpu();
    const out = join(setup.root, 'overflow');
    await trainMicro(setup, rt, out, ['--epochs', '1', '--level2-epochs', '1']);
    const files = readdirSync(join(out, 'checkpoints')).sort();
    const hashes = files.map((f) => hash(join(out, 'checkpoints', f)));
    const weights = hash(join(out, 'level1.safetensors'));
    const run = trainMicro(setup, rt, out, ['--epochs', '2', '--level2-epochs', '1', '--resume', '--lr', '1e38', '--checkpoint-every', '1']);
    // Step 1 of epoch 2 moves every weight by ~1e38 (finite: checkpointed); step 2 overflows.
    await expect(run).rejects.toThrow(/^level 1 epoch 2 batch 2 \(optimizer step 25\): the loss is NaN; \d+ of \d+ parameter gradients hold NaN or Inf, nearest the loss first: classifier\.0\.bias \(NaN\), classifier\.0\.weight \(NaN\).*this step's update was not applied.*the last checkpoint, .*level1-epoch-0002-batch-000001\.safetensors, is intact/s);
    const now = readdirSync(join(out, 'checkpoints')).sort();
    expect(now).toEqual([...files, 'level1-epoch-0002-batch-000001.safetensors'].sort());
    files.forEach((f, i) => expect(hash(join(out, 'checkpoints', f)), f).toBe(hashes[i]));
    expect(readCheckpoint(join(out, 'checkpoints', 'level1-epoch-0002-batch-000001.safetensors')).state).toMatchObject({ epoch: 1, batch: 1, optimizerStep: 24 });
    expect(hash(join(out, 'level1.safetensors'))).toBe(weights);
  });

  it('a NaN in one Level-2 input: stops naming the step, or with --skip-nonfinite skips it once per epoch, counted', async () => {
    const rt = await gpu();
    const out = join(setup.root, 'nan-input');
    await trainMicro(setup, rt, out, ['--epochs', '1', '--level2-epochs', '1']);
    const cache = readdirSync(join(out, 'cache')).find((f) => f.startsWith('level2-train-') && f.endsWith('.f32'));
    const fd = openSync(join(out, 'cache', cache!), 'r+');
    writeSync(fd, new Uint8Array(new Float32Array([NaN]).buffer), 0, 4, 4 * 100); // image 0 of the training split
    closeSync(fd);

    const stop = trainMicro(setup, rt, out, ['--epochs', '1', '--level2-epochs', '3', '--resume', '--checkpoint-every', '1']);
    await expect(stop).rejects.toThrow(/^level 2 epoch 2 batch \d \(optimizer step \d+\): the loss is NaN; \d+ of \d+ parameter gradients hold NaN or Inf, nearest the loss first: classifier\.\d+\.bias \(NaN\).*the last checkpoint, .*level2-epoch-000(1|2-batch-00000\d)\.safetensors, is intact/s);

    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    await trainMicro(setup, rt, out, ['--epochs', '1', '--level2-epochs', '3', '--resume', '--skip-nonfinite', '--max-skips', '1']);
    const warnings = warn.mock.calls.map((c) => String(c[0]));
    expect(warnings.filter((w) => /level 2 epoch \d batch \d: skipped \(1 this epoch, at most 1\)/.test(w))).toHaveLength(2);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics.filter((m) => m.kind === 'skip').map((m) => [m.level, m.epoch, m.skippedThisEpoch])).toEqual([[2, 2, 1], [2, 3, 1]]);
    expect(metrics.filter((m) => m.kind === 'epoch' && m.level === 2 && m.epoch > 1).map((m) => m.skipped)).toEqual([1, 1]);
    const file = parseSafetensors(new Uint8Array(readFileSync(join(out, 'checkpoints', 'level2-epoch-0003.safetensors'))), 'checkpoint');
    for (const [name, entry] of file.tensors) if (entry.dtype === 'F32') expect(entryToFloat32(entry, name).every(Number.isFinite), name).toBe(true);

    // Two bad batches in an epoch with a limit of one: stops.
    const fd2 = openSync(join(out, 'cache', cache!), 'r+');
    const { level2Patches, featureMapSize } = derivedSizes(MICRO);
    const itemBytes = 4 * level2Patches * featureMapSize ** 2;
    for (let i = 1; i < 20; i++) writeSync(fd2, new Uint8Array(new Float32Array([NaN]).buffer), 0, 4, i * itemBytes);
    closeSync(fd2);
    const limited = trainMicro(setup, rt, out, ['--epochs', '1', '--level2-epochs', '4', '--resume', '--skip-nonfinite', '--max-skips', '1']);
    await expect(limited).rejects.toThrow(/level 2 epoch 4 batch \d: 2 batches of this epoch skipped for NaN or Inf, more than the limit of 1 \(--max-skips\)/);
    expect(existsSync(join(out, 'checkpoints', 'level2-epoch-0004.safetensors'))).toBe(false);
  });
});
