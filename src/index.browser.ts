/// <reference types="@webgpu/types" preserve="true" />
/**
 * `lungpath` in a browser bundle: load a trained model from its two safetensors files and classify
 * decoded pixels, on `navigator.gpu`. No Node modules; the WGSL is embedded in the package.
 *
 *   import { createBrowserRuntime, loadModel, classifyImage } from 'lungpath';
 *   const rt = await createBrowserRuntime();
 *   const model = await loadModel(rt, level1Bytes, level2Bytes);
 *   const prediction = await classifyImage(rt, model.level1, model.level2, model.config, rgb);
 *
 * @module lungpath (browser)
 */
export { createBrowserRuntime } from './kernels/browser.ts';
export { describeAdapter } from './kernels/device.ts';
export type { Runtime } from './kernels/runtime.ts';
export { classifyImage, loadModel, orderModelFiles, checkpointLevel, type ClassifyOptions, type ImagePrediction, type LoadedModel, type ModelFile, type PatchPrediction } from './nn/classify.ts';
export type { ModelConfig } from './nn/config.ts';
