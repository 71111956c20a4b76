// Types of ./allocator.js (plain JavaScript: bin/lungpath.js runs it before anything is compiled or loaded).
/** Where jemalloc's shared library may be installed. */
export function jemallocCandidates(): string[];
/** Path of an installed libjemalloc.so.2, or null. */
export function findJemalloc(): string | null;
/** Which allocator this process runs on: 'jemalloc' when libjemalloc is mapped into it, else 'system'. */
export function currentAllocator(): 'jemalloc' | 'system';
/** Why this process should not re-execute under jemalloc, or null when it should. */
export function reasonToStay(env: NodeJS.ProcessEnv, jemalloc: string | null): string | null;
/** Replaces this process with the same node, flags and arguments under jemalloc; returns (why not) only where it does not apply or fails. */
export function reexecUnderJemalloc(): string;
