/**
 * Kernel benchmarks time short GPU waits, so Dawn polls back to back in them, as it does without
 * lungpath's throttle (src/kernels/dawn_ticks.ts answers a wait longer than 1 ms up to ~1 ms late,
 * which would be added to every sample of a fast kernel on a real GPU). Import it first; an
 * explicit LUNGPATH_DAWN_POLL wins.
 */
process.env.LUNGPATH_DAWN_POLL ??= 'spin';

export {};
