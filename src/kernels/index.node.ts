/// <reference types="@webgpu/types" preserve="true" />
/**
 * `lungpath/kernels`: the WebGPU runtime (pipelines, buffer pool, submission), the kernel launchers
 * with their float64 CPU references (each launcher's `...Ref` twin is its specification), kernel
 * autotuning, and the closeness checker. In Node (this file, the `node` export condition) also
 * `createNodeRuntime`: Dawn through npm `webgpu`, WGSL read from the package's wgsl/ folder; in a
 * bundle (index.ts) `createBrowserRuntime` on `navigator.gpu` with the WGSL embedded.
 *
 * @module lungpath/kernels
 */
export * from './index.ts';
export { createNodeRuntime, loadShaderSources, nodeGpu, wgslDirectory, type NodeDeviceOptions } from './node.ts';
