/**
 * The run folder's lock (src/train/run_lock.ts): one holder at a time, the holder named; a lock
 * whose process is gone, whose pid now belongs to another process (start time differs) or that
 * cannot be read is stale and replaced; a release deletes only its own lock.
 * (test/fault/interrupt-resume.test.ts runs two `lungpath train` processes on one folder.)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireRunLock, LOCK_NAME, processStartTime, RunFolderBusyError, staleReason, type LockHolder } from '../../src/train/run_lock.ts';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function holder(fields: Partial<LockHolder>): LockHolder {
  return { pid: process.pid, start: processStartTime(process.pid), boot: null, host: hostname(), since: '2026-01-01T00:00:00.000Z', command: 'lungpath train --test', ...fields };
}

/** A pid that no longer runs: a child that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('run lock', () => {
  it('refuses a second holder, naming the first; free again after release', () => {
    const first = acquireRunLock(dir, 'lungpath train A');
    expect(first.replaced).toBeNull();
    expect(JSON.parse(readFileSync(join(dir, LOCK_NAME), 'utf8')).pid).toBe(process.pid);
    let error: unknown;
    try {
      acquireRunLock(dir, 'lungpath train B');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RunFolderBusyError);
    expect((error as Error).message).toContain(`in use by another 'lungpath train' (pid ${process.pid} on ${hostname()}`);
    expect((error as Error).message).toContain('lungpath train A');
    first.release();
    expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
    const again = acquireRunLock(dir, 'lungpath train C');
    again.release();
  });

  it('replaces the lock of a process that is gone', () => {
    const pid = deadPid();
    writeFileSync(join(dir, LOCK_NAME), JSON.stringify(holder({ pid, start: 1 })));
    const lock = acquireRunLock(dir, 'lungpath train');
    expect(lock.replaced).toBe(`a stale lock of pid ${pid} (pid ${pid} no longer runs)`);
    lock.release();
  });

  it('a recycled pid (same pid, another start time) is not taken for the holder', () => {
    const start = processStartTime(process.pid);
    expect(start, 'Linux /proc gives the start time').not.toBeNull();
    const recycled = holder({ start: (start as number) - 1 });
    expect(staleReason(recycled)).toMatch(/now belongs to another process/);
    expect(staleReason(holder({}))).toBeNull();
    writeFileSync(join(dir, LOCK_NAME), JSON.stringify(recycled));
    const lock = acquireRunLock(dir, 'lungpath train');
    expect(lock.replaced).toMatch(new RegExp(`stale lock of pid ${process.pid} .*now belongs to another process`));
    lock.release();
  });

  it('an unreadable lock file is replaced; a release leaves another holder\'s lock alone', () => {
    writeFileSync(join(dir, LOCK_NAME), 'not json');
    const lock = acquireRunLock(dir, 'lungpath train');
    expect(lock.replaced).toBe('an unreadable lock file');
    const other = holder({ since: '2027-01-01T00:00:00.000Z' });
    writeFileSync(join(dir, LOCK_NAME), JSON.stringify(other));
    lock.release();
    expect(existsSync(join(dir, LOCK_NAME))).toBe(true);
  });
});
