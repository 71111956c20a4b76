/**
 * Node file helpers for weights: atomic writes (temporary file `.<name>.<pid>.tmp` in the same
 * folder, fsync, rename, fsync of the folder), so a crash never leaves a half-written file under
 * the final name, and the clean-up of temporary files a killed process left behind.
 *
 * Fault injection (test/fault/kill-resume.ts), inert unless the variable is set: with
 * `LUNGPATH_FAULT_SLOW_WRITE_MS=N`, an atomic write writes half its bytes, prints
 * `lungpath-fault: writing <path>` on stderr, sleeps N ms and then finishes, so a test can kill the
 * process while a checkpoint is half written.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** The marker the fault hook prints before it sleeps in the middle of a write. */
export const FAULT_WRITE_MARKER = 'lungpath-fault: writing ';

function faultSlowWriteMs(): number {
  const ms = Number(process.env.LUNGPATH_FAULT_SLOW_WRITE_MS ?? 0);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

function writeAll(fd: number, bytes: Uint8Array, from: number, to: number): void {
  let written = from;
  while (written < to) written += writeSync(fd, bytes, written, to - written);
}

/** Writes `path` atomically: a reader sees the old file or the whole new one, never a part. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const slowMs = faultSlowWriteMs();
    const half = slowMs ? bytes.length >> 1 : bytes.length;
    writeAll(fd, bytes, 0, half);
    if (slowMs) {
      writeSync(2, `${FAULT_WRITE_MARKER}${path}\n`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, slowMs);
    }
    writeAll(fd, bytes, half, bytes.length);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  try {
    const dirFd = openSync(dirname(path), 'r');
    fsyncSync(dirFd);
    closeSync(dirFd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes the temporary files (`*.<pid>.tmp`) in `dir` left by processes that no longer run — a
 * write interrupted by a crash; returns their names. Never touches a live process's files.
 */
export function removeStaleTempFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const pid = /\.(\d+)\.tmp$/.exec(name)?.[1];
    if (!pid || Number(pid) === process.pid || processAlive(Number(pid))) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      // Already gone (another clean-up), or not ours to delete: leave it.
    }
  }
  return removed;
}

export function readFileBytes(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}
