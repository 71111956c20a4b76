/**
 * Hides Dawn's two start-up lines "Warning: maxDynamic{Uniform,Storage}BuffersPerPipelineLayout
 * artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit." (printed by the
 * native addon while it enumerates adapters: lavapipe reports 10^6 dynamic buffers and Dawn clamps
 * them). They are written with fprintf(stderr) inside dawn.node, out of reach of process.stderr
 * and of any limit we request, so for the duration of the adapter request file descriptor 2 is
 * pointed at a temporary file (dup/dup2 through koffi, Linux only); afterwards every line except
 * those two is written to the real stderr, in order. Without koffi or off Linux nothing is hidden.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Exactly Dawn's clamp notice; any other line is shown. */
export const DAWN_LIMIT_NOTICE = /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

interface Libc {
  dup(fd: number): number;
  dup2(from: number, to: number): number;
  close(fd: number): number;
}

let libc: Libc | null | undefined;

async function loadLibc(): Promise<Libc | null> {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== 'linux' || process.env.LUNGPATH_DAWN_STDERR === 'show') return libc;
  try {
    const koffi = (await import('koffi')).default;
    const lib = koffi.load('libc.so.6');
    libc = { dup: lib.func('int dup(int)'), dup2: lib.func('int dup2(int, int)'), close: lib.func('int close(int)') };
  } catch {
    libc = null;
  }
  return libc;
}

/** Runs `fn` with native writes to stderr captured, then shows every captured line but Dawn's notice. */
export async function withDawnNoticeHidden<T>(fn: () => Promise<T>): Promise<T> {
  const c = await loadLibc();
  if (!c) return fn();
  const dir = mkdtempSync(join(tmpdir(), 'lungpath-stderr-'));
  const path = join(dir, 'stderr');
  const fd = openSync(path, 'w+');
  const saved = c.dup(2);
  if (saved < 0 || c.dup2(fd, 2) < 0) {
    if (saved >= 0) c.close(saved);
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
    return fn();
  }
  try {
    return await fn();
  } finally {
    c.dup2(saved, 2);
    c.close(saved);
    closeSync(fd);
    const captured = readFileSync(path, 'utf8');
    rmSync(dir, { recursive: true, force: true });
    const kept = captured.split('\n').filter((line, i, all) => !DAWN_LIMIT_NOTICE.test(line) && !(i === all.length - 1 && line === ''));
    if (kept.length) process.stderr.write(`${kept.join('\n')}\n`);
  }
}
