/** One Runtime per test file, created lazily on the real adapter (Dawn). */
import { afterAll } from 'vitest';
import { createNodeRuntime } from '../../src/kernels/node.ts';
import type { Runtime, RuntimeOptions } from '../../src/kernels/runtime.ts';

const runtimes = new Map<string, Promise<Runtime>>();

export function gpu(options: RuntimeOptions = {}): Promise<Runtime> {
  const key = JSON.stringify(options);
  let runtime = runtimes.get(key);
  if (!runtime) {
    runtime = createNodeRuntime(options);
    runtimes.set(key, runtime);
  }
  return runtime;
}

afterAll(async () => {
  for (const runtime of runtimes.values()) (await runtime).destroy();
  runtimes.clear();
});

/** Uploads a Float32Array; the caller releases the buffer. */
export function upload(rt: Runtime, data: Float32Array | Uint32Array | Uint8Array, label?: string): GPUBuffer {
  return rt.upload(data, label);
}
