/// <reference types="@webgpu/types" preserve="true" />
/**
 * `lungpath/nn` (browser-safe): tensors on the GPU, the tape (reverse-mode autodiff), ops with
 * their backward rules, modules, Adam, the two networks of the model, safetensors, and
 * classification of one decoded image.
 *
 * @module lungpath/nn
 */
export { Tensor, Parameter, shapeSize, formatShape } from './tensor.ts';
export { Tape, type TapeNode } from './tape.ts';
export * from './ops.ts';
export * from './modules.ts';
export { Adam, stepLr, type AdamOptions } from './optim.ts';
export { Rng, mixSeed, fmix32, hashText } from './random.ts';
export * from './architecture.ts';
export * from './networks.ts';
export { kernelUses } from './kernel_uses.ts';
export * from './config.ts';
export * from './safetensors.ts';
export * from './weights.ts';
export * from './classify.ts';
export * from './heatmap_cells.ts';
