/// <reference types="@webgpu/types" preserve="true" />
/**
 * `lungpath/kernels` (browser-safe): the WebGPU runtime, the kernel launchers with their CPU
 * references, kernel autotuning, and `createBrowserRuntime`. Node adds `createNodeRuntime`
 * (index.node.ts, chosen by the package's `node` export condition).
 *
 * A launcher takes GPUBuffers and a shape, returns a new pooled buffer, and has a `...Ref` twin in
 * float64 on the CPU that is its specification (see the tests).
 */
export { Runtime, BindingLimitError, DeviceLostError, ShaderError, formatBytes, type AdapterReport, type Binding, type DispatchArgs, type RuntimeOptions } from './runtime.ts';
export { createRuntimeFromGpu, describeAdapter, NO_ADAPTER_HELP, type DeviceOptions } from './device.ts';
export { createBrowserRuntime, bundledShaderSources } from './browser.ts';
export { defineKernel, flatWorkgroups, Uniforms, type KernelSpec, type StorageAccess, type UniformBlock } from './kernel.ts';
export { OutOfMemoryError, type PoolLimits, type PoolStats } from './pool.ts';

export * from './conv2d.ts';
export { conv2dBackwardWeight, conv2dBackwardBias, conv2dWeightGradSupports, chooseConv2dWeightGradVariant, CONV2D_WEIGHT_GRAD_VARIANTS, type Conv2dWeightGradVariant, type Conv2dWeightGradOptions } from './conv2d_weight_grad.ts';
export { conv2dBackwardWeightRef, conv2dBackwardBiasRef } from './conv2d_ref.ts';
export * from './batchnorm2d.ts';
export { BATCHNORM_EPS, BATCHNORM_MOMENTUM } from './batchnorm2d_ref.ts';
export * from './linear.ts';
export * from './relu.ts';
export * from './vec4_pass.ts';
export * from './check.ts';
export * from './dropout.ts';
export * from './elementwise.ts';
export * from './log_softmax_nll.ts';
export * from './adam.ts';
export * from './crop_patches.ts';
export * from './nonfinite.ts';
export * from './kernel_choices.ts';
export * from './autotune.ts';
