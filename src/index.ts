/// <reference types="@webgpu/types" preserve="true" />
/**
 * `lungpath` in Node: open a trained run and classify images.
 *
 *   import { openRun } from 'lungpath';
 *   const model = await openRun('runs/default');
 *   console.log(await model.classifyFile('tile.png'));
 *   model.close();
 *
 * The layers below are their own entry points: `lungpath/kernels` (WebGPU runtime, launchers, CPU
 * references), `lungpath/nn` (tensors, tape, modules, networks, safetensors), `lungpath/train`
 * (data, training, evaluation; Node only). In a bundler the `browser` condition picks
 * index.browser.ts instead, which has no Node modules.
 *
 * @module lungpath
 */
export { openRun, type OpenRunOptions, type RunClassifier } from './train/open_run.ts';
export { createNodeRuntime, type NodeDeviceOptions } from './kernels/node.ts';
export { describeAdapter } from './kernels/device.ts';
export type { Runtime } from './kernels/runtime.ts';
export { classifyImage, loadModel, orderModelFiles, checkpointLevel, type ClassifyOptions, type ImagePrediction, type LoadedModel, type ModelFile, type PatchPrediction } from './nn/classify.ts';
export type { ModelConfig } from './nn/config.ts';
