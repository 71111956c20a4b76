/**
 * Stops Dawn's Node addon from busy-waiting on the main thread while the GPU works.
 *
 * While any of its promises is pending (mapAsync, onSubmittedWorkDone, popErrorScope), dawn.node
 * (npm `webgpu` 0.6.2) schedules its next event poll with the global `setImmediate`, again and
 * again: the main thread spins at 100% of a core and allocates a callback per turn for as long as
 * the GPU takes. On a GPU that costs a core; on lavapipe, whose compute threads run on the same
 * cores, it takes a core from the kernels themselves (measured: 181,651 polls in 12 s of one
 * readback loop; a `lungpath train` profile spends 40% of the main thread in processImmediate and
 * 17% in the garbage collector).
 *
 * `throttleDawnPolling` replaces the global `setImmediate` with one that passes every callback
 * through unchanged except Dawn's (a native function): the first `spinTicks` polls of a wait still
 * run at once (a short wait on a fast GPU costs nothing extra), later ones are spaced by
 * `setTimeout(…, 1)`, so a long wait sleeps and answers at most ~1 ms late. Polls less than
 * `gapMs` apart count as one wait. `LUNGPATH_DAWN_POLL=spin` leaves Dawn as it is.
 */

type Immediate = typeof globalThis.setImmediate;

/** How Dawn's polls are spaced. */
export interface DawnPollOptions {
  /** Polls of one wait run back to back before the rest are spaced (default 32). */
  spinTicks?: number;
  /** Polls closer than this (ms) belong to one wait (default 5). */
  gapMs?: number;
}

let original: Immediate | null = null;

/**
 * True for a callback made by a native addon's function template (Dawn's poll: native code, no
 * name, a prototype object) — not a JavaScript function, and not a promise's resolve function or a
 * bound function (native code too, but without a prototype).
 */
export function isNativeCallback(fn: unknown): boolean {
  if (typeof fn !== 'function' || fn.name !== '' || typeof (fn as { prototype?: unknown }).prototype !== 'object') return false;
  return /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(fn));
}

/**
 * Installs the throttled `setImmediate` (once per process; later calls do nothing). Returns false
 * when `LUNGPATH_DAWN_POLL=spin` asks to keep Dawn's busy polling.
 */
export function throttleDawnPolling(options: DawnPollOptions = {}, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.LUNGPATH_DAWN_POLL === 'spin') return false;
  if (original) return true;
  const spinTicks = options.spinTicks ?? 32;
  const gapMs = options.gapMs ?? 5;
  const immediate = globalThis.setImmediate;
  original = immediate;
  let streak = 0;
  let last = -Infinity;
  const throttled = function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (!isNativeCallback(callback)) return immediate(callback, ...args);
    const now = performance.now();
    streak = now - last < gapMs ? streak + 1 : 0;
    last = now;
    if (streak < spinTicks) return immediate(callback, ...args);
    return setTimeout(callback, 1, ...args) as unknown as NodeJS.Immediate;
  };
  // Keep setImmediate's own properties (util.promisify's custom form: `await setImmediate()` users).
  Object.defineProperties(throttled, Object.getOwnPropertyDescriptors(immediate));
  globalThis.setImmediate = throttled as unknown as Immediate;
  return true;
}

/** Puts the original `setImmediate` back (tests). */
export function restoreDawnPolling(): void {
  if (original) globalThis.setImmediate = original;
  original = null;
}
