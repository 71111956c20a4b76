/**
 * Atomic writes and their clean-up: the final file appears whole and no temporary file is left;
 * temporary files of dead processes are deleted, a live process's and other files are kept; the
 * fault hook (LUNGPATH_FAULT_SLOW_WRITE_MS) pauses halfway with the temporary file half written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { removeStaleTempFiles, writeFileAtomic } from '../../src/nn/files.ts';

const dir = mkdtempSync(join(tmpdir(), 'lungpath-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  delete process.env.LUNGPATH_FAULT_SLOW_WRITE_MS;
});

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(child.stdout.trim());
}

describe('atomic files', () => {
  it('writes the whole file under its name and leaves no temporary file', () => {
    const path = join(dir, 'a.bin');
    writeFileAtomic(path, new Uint8Array(100_000).fill(7));
    writeFileAtomic(path, 'replaced');
    expect(readFileSync(path, 'utf8')).toBe('replaced');
    expect(readdirSync(dir).filter((f) => f.includes('a.bin'))).toEqual(['a.bin']);
  });

  it('deletes the temporary files of dead processes only', () => {
    const sub = mkdtempSync(join(dir, 'stale-'));
    const dead = deadPid();
    const names = [`.ckpt.safetensors.${dead}.tmp`, `level2-train-abc.f32.${dead}.tmp`, `.mine.${process.pid}.tmp`, 'level1-epoch-0001.safetensors', 'notes.tmp'];
    for (const n of names) writeFileSync(join(sub, n), 'x');
    expect(removeStaleTempFiles(sub).sort()).toEqual([names[0], names[1]].sort());
    expect(readdirSync(sub).sort()).toEqual(names.slice(2).sort());
    expect(removeStaleTempFiles(join(dir, 'no-such-folder'))).toEqual([]);
  });

  it('the fault hook pauses halfway through the write, the temporary file half written', async () => {
    const path = join(dir, 'slow.bin');
    const tmp = join(dir, `.slow.bin.${process.pid}.tmp`);
    // A second thread watches the temporary file while the main thread sleeps in the hook.
    const { Worker } = await import('node:worker_threads');
    const watcher = new Worker(
      `const { existsSync, statSync } = require('node:fs'); const { parentPort, workerData } = require('node:worker_threads');
       const t0 = Date.now(); let seen = -1;
       while (Date.now() - t0 < 5000 && seen < 0) if (existsSync(workerData)) { const s = statSync(workerData).size; if (s > 0) seen = s; }
       parentPort.postMessage(seen);`,
      { eval: true, workerData: tmp },
    );
    const seen = new Promise<number>((resolve) => watcher.once('message', resolve));
    await new Promise((resolve) => watcher.once('online', resolve));
    process.env.LUNGPATH_FAULT_SLOW_WRITE_MS = '300';
    const t0 = Date.now();
    writeFileAtomic(path, new Uint8Array(4000).fill(1));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(await seen).toBe(2000);
    expect(statSync(path).size).toBe(4000);
    expect(existsSync(tmp)).toBe(false);
    await watcher.terminate();
  });
});
