/**
 * releaseFreeNativeMemory (src/train/native_memory.ts): on Linux with glibc it gives malloc's free
 * pages back — here ~125 MiB freed between live 64 KiB blocks, which glibc keeps without it.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { releaseFreeNativeMemory } from '../../src/train/native_memory.ts';

function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('releaseFreeNativeMemory', () => {
  it.runIf(process.platform === 'linux')('returns the memory freed between live blocks to the system', async () => {
    expect(releaseFreeNativeMemory()).toBe(true); // glibc here (Debian); koffi loads libc.so.6
    let blocks: Buffer[] = [];
    for (let i = 0; i < 4000; i++) blocks.push(Buffer.allocUnsafeSlow(64 << 10).fill(1));
    blocks = blocks.filter((_, i) => i % 2 === 0); // every other 64 KiB block freed: no free run at the top of the heap to trim
    // V8 frees ArrayBuffer memory after sweeping, on its own threads: collect until the bytes are gone.
    for (let i = 0; i < 50 && process.memoryUsage().arrayBuffers > 200 << 20; i++) {
      fullGc();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(process.memoryUsage().arrayBuffers).toBeLessThan(200 << 20);
    const before = process.memoryUsage().rss;
    releaseFreeNativeMemory();
    const after = process.memoryUsage().rss;
    expect(blocks.length).toBe(2000);
    const freedMiB = (before - after) / (1 << 20);
    expect(freedMiB, `RSS ${(before / (1 << 20)).toFixed(1)} -> ${(after / (1 << 20)).toFixed(1)} MiB`).toBeGreaterThan(60);
  });
});
