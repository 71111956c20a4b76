/**
 * GPU memory limits: the pool refuses a buffer over maxBufferSize and, under a memory budget,
 * gives back free buffers before refusing; before training, a batch that does not fit the budget
 * is refused naming the largest that does — and that batch then trains under the same budget;
 * running out of memory in the middle of a run stops it with advice and the checkpoint intact;
 * the --gpu-memory flag reaches the CLI's runtime.
 */
import { execFile } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutOfMemoryError } from '../../src/kernels/pool.ts';
import { readCheckpoint } from '../../src/train/checkpoint.ts';
import { parseByteSize } from '../../src/train/commands/reliability_flags.ts';
import { patchProbe } from '../../src/train/level1.ts';
import { BatchTooLargeError, checkBatchFits, measureStep } from '../../src/train/memory.ts';
import { gpu } from '../helpers/gpu.ts';
import { MICRO, microArgs, microSetup, trainMicro, type MicroSetup } from '../helpers/micro_run.ts';

let setup: MicroSetup;
beforeAll(async () => {
  setup = await microSetup('lungpath-gpu-limits-');
});
afterAll(() => rmSync(setup.root, { recursive: true, force: true }));

describe('the buffer pool under limits', () => {
  it('refuses a buffer over maxBufferSize at once, naming it', async () => {
    const rt = await gpu();
    const size = rt.device.limits.maxBufferSize + 16;
    expect(() => rt.alloc(size, 'huge activation')).toThrow(OutOfMemoryError);
    expect(() => rt.alloc(size, 'huge activation')).toThrow(/buffer 'huge activation' of \d+ bytes does not fit .*maxBufferSize/);
  });

  it('under a budget: frees idle buffers to make room, then refuses', async () => {
    const rt = await gpu({ maxMemoryBytes: 1 << 20 });
    const base = rt.poolStats().allocatedBytes;
    const a = rt.alloc(600_000, 'a');
    rt.release(a);
    const b = rt.alloc(700_000 - base, 'b'); // a's idle buffer is destroyed to make room
    expect(rt.poolStats().allocatedBytes).toBe(base + Math.ceil((700_000 - base) / 16) * 16);
    expect(() => rt.alloc(400_000, 'c')).toThrow(/buffer 'c' of 400000 bytes does not fit with \d+ bytes already held \(memory budget 1048576 bytes\)/);
    rt.release(b);
  });

  it('parses --gpu-memory sizes', () => {
    expect([parseByteSize('6G', 'x'), parseByteSize('512M', 'x'), parseByteSize('1.5GiB', 'x'), parseByteSize('4096', 'x')]).toEqual([6 * 2 ** 30, 512 * 2 ** 20, 1.5 * 2 ** 30, 4096]);
    expect(() => parseByteSize('lots', 'gpu-memory')).toThrow(/--gpu-memory must be a size/);
  });
});

describe('does the batch fit', () => {
  /** A budget with room for the model, the loader and a step of about 3.5 patches. */
  async function budgetForThreeAndAHalf(): Promise<number> {
    const rt = await gpu();
    const probe = patchProbe(MICRO);
    const one = await measureStep(rt, probe, 1);
    const two = await measureStep(rt, probe, 2);
    const perSample = two.stepBytes - one.stepBytes;
    expect(perSample).toBeGreaterThan(0);
    const net = probe.build(rt);
    const modelBytes = 3 * 4 * net.parameterCount();
    net.destroy();
    return Math.floor(modelBytes + probe.extraBytes + one.stepBytes - perSample + 3.5 * perSample);
  }

  it('refuses a batch over the budget naming the largest that fits, which then trains under it', async () => {
    const budget = await budgetForThreeAndAHalf();
    const rt = await gpu({ maxMemoryBytes: budget });
    const refused = trainMicro(setup, rt, join(setup.root, 'too-big'), ['--epochs', '1', '--level2-epochs', '1', '--batch-size', '8']);
    await expect(refused).rejects.toThrow(BatchTooLargeError);
    await expect(refused).rejects.toThrow(/^level 1: a batch of 8 patches does not fit on this GPU: out of GPU memory: buffer .* \(about .* \+ .* per patch for a step, besides .* for the model and data\); the largest batch that fits is about 3: use --batch-size 3$/);
    const error = (await refused.catch((e: unknown) => e)) as BatchTooLargeError;
    expect(error.largest).toBe(3);
    await trainMicro(setup, rt, join(setup.root, 'fits'), ['--epochs', '1', '--level2-epochs', '1', '--batch-size', '3']);
    expect(rt.poolStats().allocatedBytes).toBeLessThanOrEqual(budget);
  });

  it('checkBatchFits passes a batch that fits and returns what its step needs', async () => {
    const rt = await gpu();
    const measured = await checkBatchFits(rt, patchProbe(MICRO), 4);
    expect(measured.batch).toBe(4);
    expect(measured.stepBytes).toBeGreaterThan(0);
  });

  it('out of memory in the middle of a run: a message with advice, the checkpoint intact', async () => {
    const rt = await gpu({ maxMemoryBytes: 1 << 30 });
    const limits = (rt.pool as unknown as { limits: { memoryBytes?: number } }).limits;
    // Every readback goes through readMany (a step's loss and flags, a whole checkpoint, validation):
    // the 10th comes after a few batches and checkpoints of epoch 1.
    const readMany = rt.readMany.bind(rt);
    let reads = 0;
    rt.readMany = (...args) => {
      if (++reads === 10) limits.memoryBytes = rt.poolStats().inUseBytes; // the device fills up: nothing new fits
      return readMany(...args);
    };
    const out = join(setup.root, 'oom-midway');
    const run = trainMicro(setup, rt, out, ['--epochs', '1', '--level2-epochs', '1', '--checkpoint-every', '2']);
    await expect(run).rejects.toThrow(/^out of GPU memory: buffer .* \(memory budget \d+ bytes\); a step at batch 8 needed about .*: try --batch-size \d during .*level 1 epoch 1 .*; the last checkpoint, .*level1-epoch-0001-batch-\d{6}\.safetensors, is intact/s);
    for (const f of readdirSync(join(out, 'checkpoints'))) expect(() => readCheckpoint(join(out, 'checkpoints', f)), f).not.toThrow();
    limits.memoryBytes = 1 << 30;
  });

  it('the CLI refuses with --gpu-memory before training', async () => {
    const args = ['bin/lungpath.js', 'train', ...microArgs(setup, join(setup.root, 'cli'), ['--epochs', '1', '--level2-epochs', '1', '--gpu-memory', '2M'])];
    const result = await promisify(execFile)(process.execPath, args, { env: { ...process.env, LUNGPATH_KERNELS: 'heuristic' } }).catch((e: { code: number; stderr: string }) => e);
    expect((result as { code: number }).code).toBe(1);
    expect((result as { stderr: string }).stderr).toMatch(/lungpath train: level 1: a batch of 8 patches does not fit on this GPU: .*the largest batch that fits is about \d+: use --batch-size \d+/);
  });
});
