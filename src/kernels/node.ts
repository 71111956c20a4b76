/**
 * Node entry to the GPU: Dawn through the npm `webgpu` package, WGSL read from the wgsl/ folder.
 * Dawn's start-up notice about clamped dynamic-buffer limits is hidden (native_stderr.ts), and its
 * event polling sleeps instead of spinning on the main thread during long GPU waits (dawn_ticks.ts).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { throttleDawnPolling, type DawnClasses } from './dawn_ticks.ts';
import { createRuntimeFromGpu, type DeviceOptions } from './device.ts';
import { withDawnNoticeHidden } from './native_stderr.ts';
import type { Runtime } from './runtime.ts';

export interface NodeDeviceOptions extends DeviceOptions {
  /** Dawn toggles, e.g. `adapter=<name substring>` or `backend=vulkan`. */
  dawnFlags?: string[];
}

let gpuSingleton: GPU | null = null;

/** Dawn's `GPU` object for this process (created once; `flags` apply to the first call only). */
export async function nodeGpu(flags: string[] = dawnFlagsFromEnv()): Promise<GPU> {
  if (gpuSingleton) return gpuSingleton;
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  gpuSingleton = webgpu.create(flags);
  throttleDawnPolling(webgpu.globals as DawnClasses);
  return gpuSingleton;
}

function dawnFlagsFromEnv(): string[] {
  return process.env.LUNGPATH_DAWN_FLAGS?.split(',').filter(Boolean) ?? [];
}

/** The wgsl/ folder of this package, found by walking up from this file (src/ or dist/src/). */
export function wgslDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'wgsl');
    if (existsSync(candidate)) return candidate;
    dir = resolve(dir, '..');
  }
  throw new Error('lungpath: cannot find the wgsl/ folder next to the package sources');
}

/** Every wgsl/*.wgsl file, keyed by name without extension. */
export function loadShaderSources(dir = wgslDirectory()): Record<string, string> {
  const sources: Record<string, string> = {};
  for (const file of readdirSync(dir)) {
    if (file.endsWith('.wgsl')) sources[file.slice(0, -5)] = readFileSync(join(dir, file), 'utf8');
  }
  return sources;
}

/** A Runtime on Dawn's best adapter (override with `dawnFlags: ['adapter=...']`). */
export async function createNodeRuntime(options: NodeDeviceOptions = {}): Promise<Runtime> {
  const flags = options.dawnFlags ?? dawnFlagsFromEnv();
  const gpu = await nodeGpu(flags);
  return withDawnNoticeHidden(() => createRuntimeFromGpu(gpu, loadShaderSources(), options));
}
