/**
 * Determinism and recovery of whole runs (micro config, in-process, each run on its own fresh
 * device): two full runs with the same seed, data and device end with the same bytes in
 * level1/level2.safetensors and every checkpoint; a run resumed from checkpoints taken inside an
 * epoch of Level 1 and of Level 2 ends with the same weights and optimizer state; and a run whose GPU device is lost
 * midway stops with a message naming the step and the intact checkpoint, and resumed on a new
 * device ends with the same weights too.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeRuntime } from '../../src/kernels/node.ts';
import { DeviceLostError, type Runtime } from '../../src/kernels/runtime.ts';
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.ts';
import { microSetup, trainMicro, type MicroSetup } from '../helpers/micro_run.ts';

let setup: MicroSetup;
beforeAll(async () => {
  setup = await microSetup('lungpath-determinism-');
});
afterAll(() => rmSync(setup.root, { recursive: true, force: true }));

const EPOCHS = ['--epochs', '2', '--level2-epochs', '2'];
/** What a finished run's weights are: the weights files and the last checkpoints (weights, Adam state, epoch summaries). */
const FINAL = ['level1.safetensors', 'level2.safetensors', 'checkpoints/level1-epoch-0002.safetensors', 'checkpoints/level2-epoch-0002.safetensors'];

/** Trains on a fresh device (destroyed afterwards); `onDevice` may tamper with it first. */
async function freshRun(out: string, extra: string[], onDevice?: (rt: Runtime) => void): Promise<void> {
  const rt = await createNodeRuntime();
  try {
    onDevice?.(rt);
    await trainMicro(setup, rt, out, [...EPOCHS, ...extra]);
  } finally {
    rt.destroy();
  }
}

function expectSameFiles(a: string, b: string, files: string[]): void {
  for (const f of files) expect(Buffer.compare(readFileSync(join(a, f)), readFileSync(join(b, f))), f).toBe(0);
}

describe('determinism', () => {
  let reference: string;
  beforeAll(async () => {
    reference = join(setup.root, 'reference');
    await freshRun(reference, ['--checkpoint-every', '2']);
  });

  it('two full runs with the same seed, data and device give the same bytes', async () => {
    const again = join(setup.root, 'again');
    await freshRun(again, ['--checkpoint-every', '2']);
    const checkpoints = readdirSync(join(reference, 'checkpoints')).sort();
    expect(readdirSync(join(again, 'checkpoints')).sort()).toEqual(checkpoints);
    expectSameFiles(reference, again, ['level1.safetensors', 'level2.safetensors', ...checkpoints.map((c) => join('checkpoints', c))]);
  });

  it('resuming from checkpoints inside an epoch of Level 1 and of Level 2 gives the same weights', async () => {
    const out = join(setup.root, 'inside-epochs');
    await freshRun(out, ['--checkpoint-every', '2']);
    const dir = join(out, 'checkpoints');
    // Level 1 from epoch 2 batch 22 of 23: the loader skips two windows of 8 images undecoded, then 32
    // patches; Level 2 from epoch 2 batch 2 of 3 (same Level-1 weights, so its checkpoint is taken).
    expect(listCheckpoints(dir, 'level1')).toEqual(['level1-epoch-0002-batch-000020.safetensors', 'level1-epoch-0002-batch-000022.safetensors', 'level1-epoch-0002.safetensors']);
    expect(listCheckpoints(dir, 'level2')).toEqual(['level2-epoch-0001.safetensors', 'level2-epoch-0002-batch-000002.safetensors', 'level2-epoch-0002.safetensors']);
    for (const f of ['level1-epoch-0002.safetensors', 'level2-epoch-0002.safetensors']) rmSync(join(dir, f));
    rmSync(join(out, 'level1.safetensors'));
    await freshRun(out, ['--checkpoint-every', '2', '--resume']);
    expectSameFiles(reference, out, FINAL);
  });

  it('a lost device stops the run naming the step and the intact checkpoint; resumed, the weights are the same', async () => {
    const out = join(setup.root, 'device-lost');
    // Every readback goes through readMany (a step's loss and flags, a whole checkpoint, validation):
    // the 20th lands inside Level 1's first epoch, after a few checkpoints.
    const loseDeviceAfterReads = (rt: Runtime) => {
      const readMany = rt.readMany.bind(rt);
      let reads = 0;
      rt.readMany = (...args) => {
        if (++reads === 20) rt.device.destroy();
        return readMany(...args);
      };
    };
    const lost = freshRun(out, ['--checkpoint-every', '2'], loseDeviceAfterReads);
    await expect(lost).rejects.toThrow(DeviceLostError);
    await expect(lost).rejects.toThrow(/^the GPU device was lost \(destroyed: .*\) during (a checkpoint after )?level 1 epoch \d (batch \d+|validation); the last checkpoint, .*level1-epoch-\d{4}(-batch-\d{6})?\.safetensors, is intact: fix the cause and run again with --resume$/);
    const dir = join(out, 'checkpoints');
    expect(listCheckpoints(dir, 'level1').length).toBeGreaterThan(0);
    for (const f of readdirSync(dir)) expect(() => readCheckpoint(join(dir, f)), f).not.toThrow();
    await freshRun(out, ['--checkpoint-every', '2', '--resume']);
    expectSameFiles(reference, out, FINAL);
  });
});
