/**
 * Browser entry to the GPU: `navigator.gpu`, WGSL bundled with the code (wgsl_sources.ts).
 */
import { createRuntimeFromGpu, NO_ADAPTER_HELP, type DeviceOptions } from './device.ts';
import type { Runtime } from './runtime.ts';
import { bundledShaderSources } from './wgsl_sources.ts';

export { bundledShaderSources } from './wgsl_sources.ts';

/** A Runtime on the browser's WebGPU adapter (`navigator.gpu`); throws a clear error without WebGPU. */
export async function createBrowserRuntime(options: DeviceOptions = {}): Promise<Runtime> {
  if (typeof navigator === 'undefined' || !('gpu' in navigator) || !navigator.gpu) throw new Error(`This browser has no WebGPU. ${NO_ADAPTER_HELP}`);
  return createRuntimeFromGpu(navigator.gpu, bundledShaderSources(), options);
}
