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
 * through unchanged except Dawn's (a native function): for the first `spinMs` of a wait Dawn's
 * polls still run back to back (a short wait on a fast GPU is answered as before), later ones are
 * spaced by `setTimeout(…, 1)`, so a long wait sleeps and is answered at most ~1 ms late. A wait
 * starts at each mapAsync, onSubmittedWorkDone and popErrorScope call (wrapped here; Dawn's other
 * promises are polled at the spaced rate from the start). `withDawnSpinning` keeps the old
 * behaviour around a timed region (the autotuner's timings). `LUNGPATH_DAWN_POLL=spin` leaves Dawn
 * as it is.
 */

type Immediate = typeof globalThis.setImmediate;

/** How Dawn's polls are spaced. */
export interface DawnPollOptions {
  /** Polls run back to back for this long after a wait starts (ms, default 1). */
  spinMs?: number;
}

/** The WebGPU classes whose asynchronous methods start a wait (Dawn's `globals`). */
export interface DawnClasses {
  GPUBuffer?: { prototype: object };
  GPUQueue?: { prototype: object };
  GPUDevice?: { prototype: object };
}

let original: Immediate | null = null;
let waitStart = -Infinity;
let spinScopes = 0;

/**
 * True for a callback made by a native addon's function template (Dawn's poll: native code, no
 * name, a prototype object) — not a JavaScript function, and not a promise's resolve function or a
 * bound function (native code too, but without a prototype).
 */
export function isNativeCallback(fn: unknown): boolean {
  if (typeof fn !== 'function' || fn.name !== '' || typeof (fn as { prototype?: unknown }).prototype !== 'object') return false;
  return /\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(fn));
}

/** Marks the start of a wait: Dawn's next polls run back to back for `spinMs`. */
export function markDawnWait(): void {
  waitStart = performance.now();
}

/** Runs `fn` with Dawn polling back to back (as without the throttle): for timings of short waits. */
export async function withDawnSpinning<T>(fn: () => Promise<T>): Promise<T> {
  spinScopes++;
  try {
    return await fn();
  } finally {
    spinScopes--;
  }
}

function wrapWaitStarts(classes: DawnClasses): void {
  const methods: [object | undefined, string][] = [
    [classes.GPUBuffer?.prototype, 'mapAsync'],
    [classes.GPUQueue?.prototype, 'onSubmittedWorkDone'],
    [classes.GPUDevice?.prototype, 'popErrorScope'],
  ];
  for (const [proto, name] of methods) {
    const method = proto ? (proto as Record<string, unknown>)[name] : undefined;
    if (typeof method !== 'function') continue;
    (proto as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      markDawnWait();
      return (method as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
}

/**
 * Installs the throttled `setImmediate` (once per process; later calls do nothing) and marks a
 * wait at each asynchronous call of `classes`. Returns false when `LUNGPATH_DAWN_POLL=spin` asks to
 * keep Dawn's busy polling.
 */
export function throttleDawnPolling(classes: DawnClasses = {}, options: DawnPollOptions = {}, env: Record<string, string | undefined> = process.env): boolean {
  if (env.LUNGPATH_DAWN_POLL === 'spin') return false;
  if (original) return true;
  const spinMs = options.spinMs ?? 1;
  const immediate = globalThis.setImmediate;
  original = immediate;
  const throttled = function (callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (!isNativeCallback(callback)) return immediate(callback, ...args);
    if (spinScopes > 0 || performance.now() - waitStart < spinMs) return immediate(callback, ...args);
    return setTimeout(callback, 1, ...args) as unknown as NodeJS.Immediate;
  };
  // Keep setImmediate's own properties (util.promisify's custom form: `await setImmediate()` users).
  Object.defineProperties(throttled, Object.getOwnPropertyDescriptors(immediate));
  globalThis.setImmediate = throttled as unknown as Immediate;
  wrapWaitStarts(classes);
  return true;
}

/** Puts the original `setImmediate` back (tests); the wrapped wait starts stay (they only mark). */
export function restoreDawnPolling(): void {
  if (original) globalThis.setImmediate = original;
  original = null;
}
