/**
 * One writer per run folder: `lungpath train` holds RUN/train.lock while it runs. The lock file
 * is created with O_EXCL (link of a finished temporary file, so it is never seen half written) and
 * says who holds it: pid, the process's start time (Linux: /proc/<pid>/stat field 22, clock
 * ticks since boot, with the boot id) and host. A second train on the folder is refused naming
 * the holder. A lock whose holder is gone — no such pid, or a pid now used by another process
 * (another start time), or a previous boot — is stale: it is replaced, with a note. Readers
 * (`evaluate`, `predict`) take no lock: every file train writes is replaced atomically.
 *
 * Where /proc is missing (macOS), only the pid is checked: a recycled pid then looks like a live
 * holder, and the message says how to remove the lock by hand.
 */
import { existsSync, linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface LockHolder {
  pid: number;
  /** Process start time in clock ticks since boot (Linux), or null where it cannot be read. */
  start: number | null;
  /** /proc/sys/kernel/random/boot_id, or null. */
  boot: string | null;
  host: string;
  /** When the lock was taken (ISO time). */
  since: string;
  command: string;
}

/** Thrown when another live process holds the run folder. */
export class RunFolderBusyError extends Error {
  constructor(
    readonly dir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `${dir} is in use by another 'lungpath train' (pid ${holder.pid} on ${holder.host}, since ${holder.since}: ${holder.command}); ` +
        `one run folder takes one trainer at a time — wait for it, stop it (Ctrl-C saves a checkpoint), or pass another --out. ` +
        `If that process is not lungpath, delete ${join(dir, LOCK_NAME)}`,
    );
    this.name = 'RunFolderBusyError';
  }
}

export const LOCK_NAME = 'train.lock';

/** Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or null. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isFinite(start) ? start : null;
  } catch {
    return null;
  }
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why the holder of a lock is gone, or null when it still runs. */
export function staleReason(holder: LockHolder): string | null {
  if (holder.host !== hostname()) return null; // another machine's process: cannot tell, assume alive
  const boot = bootId();
  if (boot && holder.boot && boot !== holder.boot) return `pid ${holder.pid} was from before the last reboot`;
  if (!pidExists(holder.pid)) return `pid ${holder.pid} no longer runs`;
  const start = processStartTime(holder.pid);
  if (start !== null && holder.start !== null && start !== holder.start) return `pid ${holder.pid} now belongs to another process (started at tick ${start}, the holder at ${holder.start})`;
  return null;
}

function readHolder(path: string): LockHolder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    return Number.isSafeInteger(h.pid) ? h : null;
  } catch {
    return null; // gone meanwhile, or unreadable
  }
}

/** A held lock; `release` deletes the lock file (also done on process exit). */
export interface RunLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** The stale lock that was replaced, and why, if there was one. */
  readonly replaced: string | null;
  release(): void;
}

/**
 * Takes the run folder `dir` (it must exist) for this process, or throws RunFolderBusyError
 * naming the live holder. A stale lock is replaced (`replaced` says whose and why).
 */
export function acquireRunLock(dir: string, command: string): RunLock {
  const path = join(dir, LOCK_NAME);
  const self: LockHolder = { pid: process.pid, start: processStartTime(process.pid), boot: bootId(), host: hostname(), since: new Date().toISOString(), command };
  const tmp = join(dir, `.${LOCK_NAME}.${process.pid}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(self)}\n`);
  let replaced: string | null = null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path); // fails with EEXIST while anyone holds the lock
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      }
      const holder = readHolder(path);
      const stale = holder;
      if (holder === null) {
        // Unreadable (cut short by a crash between create and write cannot happen with link, but a
        // hand-edited or foreign file can): treat as stale.
        replaced = `an unreadable lock file`;
      } else {
        const reason = staleReason(holder);
        if (reason === null) throw new RunFolderBusyError(dir, holder);
        replaced = `a stale lock of pid ${holder.pid} (${reason})`;
      }
      // Move the stale lock aside under our own name, so two starters cannot both delete a fresh one.
      const aside = join(dir, `.${LOCK_NAME}.stale.${process.pid}.tmp`);
      try {
        renameSync(path, aside);
        const moved = readHolder(aside);
        // Another starter replaced the stale lock between our read and our rename: put theirs back.
        if (moved && (moved.pid !== stale?.pid || moved.since !== stale?.since)) linkSync(aside, path);
        unlinkSync(aside);
      } catch {
        // another starter moved it first, or took the lock back meanwhile: look again
      }
    }
  } finally {
    unlinkSync(tmp);
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    const current = readHolder(path);
    if (current && current.pid === self.pid && current.since === self.since && existsSync(path)) unlinkSync(path);
  };
  process.on('exit', release);
  return { path, holder: self, replaced, release };
}
