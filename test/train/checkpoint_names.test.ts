/**
 * Checkpoint files inside and at the end of epochs sort by training progress (not by name), and
 * nothing else in the folder — temporary files of an interrupted write, other levels — is listed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listCheckpoints } from '../../src/train/checkpoint.ts';

describe('listCheckpoints', () => {
  it('orders by (epochs done, batches into the next) and ignores everything else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lungpath-ckpt-names-'));
    const progress = [
      'level1-epoch-0001-batch-000500.safetensors', // epoch 1 in progress
      'level1-epoch-0001-batch-001000.safetensors',
      'level1-epoch-0001.safetensors', // epoch 1 done
      'level1-epoch-0002-batch-000009.safetensors', // epoch 2 in progress
      'level1-epoch-0002-batch-000010.safetensors',
      'level1-epoch-0002.safetensors',
      'level1-epoch-0010.safetensors',
    ];
    const others = ['.level1-epoch-0003.safetensors.4242.tmp', 'level2-epoch-0001.safetensors', 'level1-epoch-0004.safetensors.bak', 'level1-epoch-12.safetensors'];
    for (const name of [...[...progress].reverse(), ...others]) writeFileSync(join(dir, name), '');
    expect(listCheckpoints(dir, 'level1')).toEqual(progress);
    expect(listCheckpoints(dir, 'level2')).toEqual(['level2-epoch-0001.safetensors']);
    rmSync(dir, { recursive: true, force: true });
  });
});
