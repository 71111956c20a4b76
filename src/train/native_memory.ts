/**
 * Gives the native memory that is free but still held by the C allocator back to the system, at the
 * boundaries of a run's phases.
 *
 * Why: glibc's malloc serves each thread from an arena of its own (lavapipe's render threads,
 * libuv's pool for sharp and the file system, Dawn's) and keeps what those threads free, so the RSS
 * of a process that trains round after round rose by ~3 MiB per `train()` call (micro rounds 2–20) with nothing leaked:
 * the JS heap, the ArrayBuffers, the GPU objects the runtime holds and the bytes malloc has in use
 * stayed flat while the bytes malloc held free grew (issue 16; test/soak/rss_rounds.ts measures it;
 * under jemalloc the same rounds were flat). `malloc_trim(0)` returns the whole free pages of every
 * arena (well under a millisecond; loading koffi the first time, ~0.4 s under load): RSS 60–90 MiB
 * lower, but the slow rise (~3 MiB a round) remains — free memory among live blocks it cannot return.
 *
 * Linux with glibc only, through koffi (already a dependency, for OpenSlide); elsewhere, when koffi
 * cannot load, or with LUNGPATH_MALLOC_TRIM=0 in the environment (to measure without it), it does nothing.
 */
import { createRequire } from 'node:module';

type Trim = (pad: number) => number;

let trim: Trim | null | undefined;

function glibcTrim(): Trim | null {
  if (trim !== undefined) return trim;
  trim = null;
  if (process.platform !== 'linux' || process.env.LUNGPATH_MALLOC_TRIM === '0') return trim;
  try {
    // glibc's soname; musl has neither it nor malloc_trim, and the lookup throws.
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as unknown as Trim;
  } catch {
    trim = null; // not glibc, or no koffi build for this platform: the allocator keeps its default behaviour
  }
  return trim;
}

/**
 * Returns the C allocator's free memory to the system (glibc's malloc_trim(0)); true when it ran.
 * Call it where a phase has just freed much (a level trained, an evaluation done), not per batch.
 */
export function releaseFreeNativeMemory(): boolean {
  const f = glibcTrim();
  if (!f) return false;
  f(0);
  return true;
}
