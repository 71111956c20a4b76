/**
 * dawn_ticks.ts: Dawn's polls (a native function-template callback) are spaced after the first
 * few of a wait; JavaScript callbacks, promise resolvers and bound functions pass straight through;
 * a readback on the real runtime still completes, and its wait no longer spins the main thread.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { isNativeCallback, restoreDawnPolling, throttleDawnPolling, withDawnSpinning } from '../../src/kernels/dawn_ticks.ts';
import { createNodeRuntime } from '../../src/kernels/node.ts';

/** The main thread's user + system CPU seconds (Linux). */
function mainThreadCpuSeconds(): number {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(')').pop()?.trim().split(/\s+/) ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

describe('dawn_ticks', () => {
  afterAll(() => restoreDawnPolling());

  it('tells a native function-template callback from JavaScript, resolvers and bound functions', () => {
    let resolver: unknown;
    void new Promise((r) => (resolver = r));
    expect(isNativeCallback(() => {})).toBe(false);
    expect(isNativeCallback(function named() {})).toBe(false);
    expect(isNativeCallback(resolver)).toBe(false);
    expect(isNativeCallback((() => {}).bind(null))).toBe(false);
    expect(isNativeCallback(Math.max)).toBe(false); // named builtin
    expect(isNativeCallback(undefined)).toBe(false);
  });

  it('leaves setImmediate alone under LUNGPATH_DAWN_POLL=spin', () => {
    const before = globalThis.setImmediate;
    expect(throttleDawnPolling({}, {}, { LUNGPATH_DAWN_POLL: 'spin' })).toBe(false);
    expect(globalThis.setImmediate).toBe(before);
  });

  it("a readback waits for the GPU without spinning: Dawn's polls are spaced, JavaScript immediates are not", async () => {
    const rt = await createNodeRuntime(); // installs the throttle (nodeGpu)
    let dawnPolls = 0;
    const installed = globalThis.setImmediate;
    // Count the native polls that reach the throttle.
    globalThis.setImmediate = ((fn: (...a: unknown[]) => void, ...args: unknown[]) => {
      if (isNativeCallback(fn)) dawnPolls++;
      return installed(fn, ...args);
    }) as typeof setImmediate;
    try {
      const src = rt.upload(new Float32Array(1 << 20), 'src');
      const dst = rt.alloc(4 << 20, 'dst');
      // 1,000 copies of 4 MiB: a wait of ~100 ms here, long enough that the back-to-back first
      // millisecond of a spaced wait is not mistaken for spinning (with 100 copies, a ~10 ms wait
      // spun only 47 times in a fresh-clone CI run sharing the 2 cores with other test files).
      const COPIES = 1000;
      /** Dawn polls and ms of one readback after COPIES copies of 4 MiB. */
      const timedRead = async () => {
        const [polls0, t] = [dawnPolls, performance.now()];
        for (let i = 0; i < COPIES; i++) rt.copy(src, dst, 4 << 20);
        await rt.read(dst, 16);
        return { polls: dawnPolls - polls0, ms: performance.now() - t };
      };
      await timedRead(); // warm-up: the first submit of the copies
      // Inside withDawnSpinning (the autotuner's timings) Dawn polls back to back, as without the throttle.
      const spun = await withDawnSpinning(timedRead);
      expect(spun.polls).toBeGreaterThan(64 + 2 * spun.ms);
      dawnPolls = 0;
      const cpu0 = mainThreadCpuSeconds();
      const t0 = performance.now();
      for (let i = 0; i < COPIES; i++) rt.copy(src, dst, 4 << 20);
      const bytes = await rt.read(dst, 16);
      const waitMs = performance.now() - t0;
      const cpu = mainThreadCpuSeconds() - cpu0;
      expect(new Float32Array(bytes)).toEqual(new Float32Array(4));
      // Spinning, Dawn polls every ~10-50 µs; spaced, back to back for the first millisecond of each
      // wait and then about once a millisecond: well under half the spinning rate of the same readback
      // (a fixed bound of 64 + 2/ms, written for the first version's 32 polls at once, failed a quiet
      // CI run with 135 polls in ~19 ms).
      expect(dawnPolls / waitMs).toBeLessThan(0.5 * (spun.polls / spun.ms));
      // The main thread sleeps through most of the wait (CPU time has 10 ms ticks: allow for them).
      expect(cpu).toBeLessThan(0.5 * (waitMs / 1000) + 0.03);
      // A JavaScript immediate still runs at once.
      const t1 = performance.now();
      await new Promise((r) => setImmediate(r));
      expect(performance.now() - t1).toBeLessThan(50);
      rt.release(src);
      rt.release(dst);
    } finally {
      globalThis.setImmediate = installed;
      rt.destroy();
    }
  });
});
