// The C allocator of a long lungpath process: jemalloc, preloaded by replacing the process image.
//
// Why (issue 16): glibc's malloc keeps what the many threads of a training run free (lavapipe's
// render threads, libuv's pool for sharp and the file system, Dawn's), so the RSS of a process that
// trains round after round rose ~3 MiB a round with nothing of ours leaked; under jemalloc it stayed
// flat (test/soak/rss_rounds.ts). Preloading needs LD_PRELOAD before the process starts, so a long
// command re-executes itself: execve(2) through koffi (already a dependency, for OpenSlide) with the
// same node, the same node flags (process.execArgv) and arguments, and LD_PRELOAD naming jemalloc.
// execve keeps the pid and the start time (the run lock records both), the parent's wait, signals
// and exit code: nothing to forward, no second process. Node marks stdin/stdout/stderr
// close-on-exec, so that flag is cleared on them (and on an IPC channel's fd) first.
//
// It does nothing — the process goes on with the system allocator — when: not Linux;
// LUNGPATH_ALLOCATOR=system; LD_PRELOAD already names jemalloc (the re-executed process, or a user
// who preloads it); no libjemalloc.so.2 is installed (setup.sh installs Debian's libjemalloc2);
// koffi or execve fails. Plain JavaScript, no TypeScript: bin/lungpath.js runs it before anything
// else is loaded, also from dist/.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const MULTIARCH = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu' };

/** Where jemalloc's shared library may be installed (Debian/Ubuntu multiarch first, then Fedora/Arch/local). */
export function jemallocCandidates() {
  const arch = MULTIARCH[process.arch];
  const dirs = arch ? [`/usr/lib/${arch}`, `/lib/${arch}`] : [];
  return [...dirs, '/usr/lib64', '/usr/lib', '/usr/local/lib'].map((d) => `${d}/libjemalloc.so.2`);
}

/** Path of an installed libjemalloc.so.2, or null. */
export function findJemalloc() {
  return jemallocCandidates().find((p) => existsSync(p)) ?? null;
}

/** Which allocator this process runs on: 'jemalloc' when libjemalloc is mapped into it, else 'system'. */
export function currentAllocator() {
  try {
    return readFileSync('/proc/self/maps', 'utf8').includes('libjemalloc') ? 'jemalloc' : 'system';
  } catch {
    return 'system'; // no /proc: not Linux
  }
}

/**
 * Why this process should not re-execute under jemalloc (a short reason), or null when it should.
 * @param {NodeJS.ProcessEnv} env
 * @param {string | null} jemalloc the library's path (findJemalloc())
 */
export function reasonToStay(env, jemalloc) {
  if (process.platform !== 'linux') return 'not Linux';
  if (env.LUNGPATH_ALLOCATOR === 'system') return 'LUNGPATH_ALLOCATOR=system';
  if (env.LUNGPATH_ALLOCATOR && env.LUNGPATH_ALLOCATOR !== 'jemalloc') return `LUNGPATH_ALLOCATOR=${env.LUNGPATH_ALLOCATOR} is neither 'jemalloc' nor 'system'`;
  if ((env.LD_PRELOAD ?? '').includes('jemalloc')) return 'LD_PRELOAD already names jemalloc';
  if (!jemalloc) return 'no libjemalloc.so.2 installed';
  return null;
}

/**
 * Replaces this process with the same node, flags and arguments under jemalloc (LD_PRELOAD). On
 * success it does not return. Otherwise it returns why not (see the file header), and the caller
 * simply goes on with the system allocator.
 * @returns {string}
 */
export function reexecUnderJemalloc() {
  const jemalloc = findJemalloc();
  const reason = reasonToStay(process.env, jemalloc);
  if (reason) return reason;
  let libc;
  try {
    const koffi = createRequire(import.meta.url)('koffi');
    libc = { lib: koffi.load('libc.so.6'), koffi };
  } catch (e) {
    return `koffi cannot load libc (${e?.message ?? e})`;
  }
  const { lib, koffi } = libc;
  const fcntl = lib.func('int fcntl(int fd, int cmd, ...)');
  const execve = lib.func('int execve(const char *path, const char **argv, const char **envp)');
  const F_GETFD = 1;
  const F_SETFD = 2;
  const FD_CLOEXEC = 1;
  const keep = [0, 1, 2];
  if (/^\d+$/.test(process.env.NODE_CHANNEL_FD ?? '')) keep.push(Number(process.env.NODE_CHANNEL_FD));
  const cleared = [];
  for (const fd of keep) {
    const flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && flags & FD_CLOEXEC) {
      fcntl(fd, F_SETFD, 'int', flags & ~FD_CLOEXEC);
      cleared.push([fd, flags]);
    }
  }
  const preload = process.env.LD_PRELOAD ? `${jemalloc}:${process.env.LD_PRELOAD}` : jemalloc;
  const env = Object.entries({ ...process.env, LD_PRELOAD: preload }).map(([k, v]) => `${k}=${v}`);
  const argv = [process.argv0, ...process.execArgv, ...process.argv.slice(1)];
  execve(process.execPath, [...argv, null], [...env, null]);
  // Still here: execve failed (the process is unchanged); put the flags back and go on as before.
  const errno = koffi.errno();
  for (const [fd, flags] of cleared) fcntl(fd, F_SETFD, 'int', flags);
  return `execve failed (errno ${errno})`;
}
