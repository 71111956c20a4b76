/**
 * A micro training setup for tests of whole runs (resume, faults, determinism): the 128² `micro`
 * config, a synthetic dataset of 8 images per class, and `trainMicro` to train one in-process.
 * Kernel versions use the built-in heuristic (LUNGPATH_KERNELS=heuristic), so runs do not depend
 * on timing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../../src/kernels/runtime.ts';
import type { ModelConfig } from '../../src/nn/config.ts';
import { parseTrainArgs, train } from '../../src/train/commands/train.ts';
import { generateSynthDataset } from '../../src/train/synth.ts';

export const MICRO: ModelConfig = {
  classes: ['NORM', 'SCLC', 'SC', 'ADC'],
  imageSize: 128,
  patch: { size: 64, stride: 32 },
  level1: { widths: [4, 4, 8, 8, 8], downsample: [true, true, true, false, false] },
  level2: { patchStride: 64, widths: [8, 8], downsample: [true, false], hidden: [16, 16, 8], dropout: 0.5 },
};

export interface MicroSetup {
  root: string;
  data: string;
  preset: string;
}

/** A temporary folder with the micro preset file and a synthetic dataset (20 train / 8 val / 4 test images). */
export async function microSetup(prefix: string): Promise<MicroSetup> {
  process.env.LUNGPATH_KERNELS ??= 'heuristic';
  const root = mkdtempSync(join(tmpdir(), prefix));
  const preset = join(root, 'micro.json');
  writeFileSync(preset, JSON.stringify(MICRO));
  const data = join(root, 'data');
  await generateSynthDataset({ out: data, perClass: 8, size: 128, seed: 3, layout: 'split' });
  return { root, data, preset };
}

/** The `lungpath train` arguments of a micro run in `out` (seed 5, batch 8, quiet) plus `extra`. */
export function microArgs(s: MicroSetup, out: string, extra: string[]): string[] {
  return ['--data', s.data, '--out', out, '--preset', s.preset, '--seed', '5', '--quiet', '--batch-size', '8', ...extra];
}

/** Trains a micro run in-process on `rt`. */
export async function trainMicro(s: MicroSetup, rt: Runtime, out: string, extra: string[]): Promise<void> {
  const settings = parseTrainArgs(microArgs(s, out, extra));
  if (!settings) throw new Error('help printed');
  await train(settings, [rt]);
}
