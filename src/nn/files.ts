/**
 * Node file helpers for weights: atomic writes (temporary file `.<name>.<pid>.tmp` in the same
 * folder, fsync, rename, fsync of the folder), so a crash never leaves a half-written file under
 * the final name, and the clean-up of temporary files a killed process left behind.
 *
 * Fault injection (test/fault/kill-resume.ts), inert unless the variable is set: with
 * `LUNGPATH_FAULT_SLOW_WRITE_MS=N`, an atomic write writes half its bytes, prints
 * `lungpath-fault: writing <path>` on stderr, sleeps N ms and then finishes, so a test can kill the
 * process while a checkpoint is half written. With `LUNGPATH_FAULT_DISK_FULL_FLAG=FILE`, every
 * write through `writeAll` fails with ENOSPC while FILE exists: the stand-in for a full disk where
 * a test cannot mount a small filesystem.
 *
 * A write that finds the disk full (ENOSPC, or EDQUOT: over quota) throws a DiskFullError naming
 * the file, the bytes it needed and the space left; the temporary file is deleted and the file
 * under the final name — the previous checkpoint, say — is untouched.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';

/** A write that ran out of disk space (or quota); the message names the file and the free space. */
export class DiskFullError extends Error {
  constructor(
    readonly path: string,
    /** Bytes the whole write needed (null: not known, e.g. a file written in pieces). */
    readonly neededBytes: number | null,
    /** Bytes free to this user on the file's filesystem after the failure (null: could not ask). */
    readonly freeBytes: number | null,
    readonly code: string,
  ) {
    const needed = neededBytes === null ? '' : `writing ${formatBytes(neededBytes)}; `;
    const free = freeBytes === null ? 'free space unknown' : `${formatBytes(freeBytes)} free on its filesystem`;
    super(`${path}: ${code === 'EDQUOT' ? 'disk quota exceeded' : 'no space left on the device'} (${needed}${free})`);
    this.name = 'DiskFullError';
  }
}

/** Bytes as B / KiB / MiB / GiB, three significant digits. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${x.toPrecision(3)} ${units[i]}`;
}

/** Bytes available to this user on the filesystem holding `dir`, or null if it cannot be asked. */
export function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/** `e` turned into a DiskFullError when it is ENOSPC or EDQUOT; any other error unchanged. */
export function asDiskFull(e: unknown, path: string, neededBytes: number | null): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return e;
  return new DiskFullError(path, neededBytes, freeBytes(dirname(path)), code);
}

/** The marker the fault hook prints before it sleeps in the middle of a write. */
export const FAULT_WRITE_MARKER = 'lungpath-fault: writing ';

function faultSlowWriteMs(): number {
  const ms = Number(process.env.LUNGPATH_FAULT_SLOW_WRITE_MS ?? 0);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
}

function faultDiskFull(): boolean {
  const flag = process.env.LUNGPATH_FAULT_DISK_FULL_FLAG;
  return Boolean(flag) && existsSync(flag as string);
}

/** Writes bytes[from, to) to `fd`, however many writeSync calls it takes. */
export function writeAll(fd: number, bytes: Uint8Array, from = 0, to = bytes.length): void {
  if (faultDiskFull()) throw Object.assign(new Error('ENOSPC: no space left on device (injected: LUNGPATH_FAULT_DISK_FULL_FLAG)'), { code: 'ENOSPC' });
  let written = from;
  while (written < to) written += writeSync(fd, bytes, written, to - written);
}

/** Writes `path` atomically: a reader sees the old file or the whole new one, never a part. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    throw asDiskFull(e, path, bytes.length);
  }
  try {
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
    throw asDiskFull(e, path, bytes.length);
  }
  try {
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    if (existsSync(tmp)) unlinkSync(tmp);
    throw asDiskFull(e, path, bytes.length);
  }
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
