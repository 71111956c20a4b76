/**
 * The multi-version kernels a module launches for an input shape, without launching anything: each
 * module declares its own launches (Module.trace, modules.ts), walked here with shapes only, as
 * ops.ts would run them. This is what autotune is asked to decide before a run.
 */
import type { KernelRequest } from '../kernels/autotune.ts';
import type { KernelTrace, Module } from './modules.ts';

/**
 * The (op, shape) of each multi-version kernel `module` launches on an input of `shape`, layer by
 * layer (duplicates kept). `training`: with the backward pass (the module's parameters train).
 */
export function kernelUses(module: Module, shape: readonly number[], training: boolean): KernelRequest[] {
  const t: KernelTrace = { training, needsGrad: false, uses: [] };
  module.trace(shape, t);
  return t.uses;
}
