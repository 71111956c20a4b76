/// <reference types="@webgpu/types" preserve="true" />
/**
 * `lungpath/kernels` in Node: everything of index.ts plus Dawn (npm `webgpu`) and the WGSL read
 * from the package's wgsl/ folder.
 */
export * from './index.ts';
export { createNodeRuntime, loadShaderSources, nodeGpu, wgslDirectory, type NodeDeviceOptions } from './node.ts';
