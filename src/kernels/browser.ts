/**
 * Browser entry to the GPU: `navigator.gpu`, WGSL bundled from the same wgsl/ folder by Vite.
 */
import { createRuntimeFromGpu, NO_ADAPTER_HELP, type DeviceOptions } from './device.ts';
import type { Runtime } from './runtime.ts';

const modules = import.meta.glob('../../wgsl/*.wgsl', { query: '?raw', import: 'default', eager: true }) as Record<string, string>;

/** The bundled WGSL files keyed by name without extension, as loadShaderSources() in Node. */
export function bundledShaderSources(): Record<string, string> {
  const sources: Record<string, string> = {};
  for (const [path, text] of Object.entries(modules)) sources[path.slice(path.lastIndexOf('/') + 1, -5)] = text;
  return sources;
}

export async function createBrowserRuntime(options: DeviceOptions = {}): Promise<Runtime> {
  if (!('gpu' in navigator) || !navigator.gpu) throw new Error(`This browser has no WebGPU. ${NO_ADAPTER_HELP}`);
  return createRuntimeFromGpu(navigator.gpu, bundledShaderSources(), options);
}
