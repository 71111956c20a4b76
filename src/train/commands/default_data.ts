/**
 * The built-in dataset of `lungpath train` without --data: synthetic H&E images of the `tiny`
 * preset's size, generated once into .cache/ (a marker file says the set is complete).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { generateSynthDataset, SYNTH_VERSION, type SynthOptions } from '../synth.ts';

export const DEFAULT_SYNTH: Omit<SynthOptions, 'out'> = { perClass: 80, size: 256, seed: 2026, layout: 'split' };

export function defaultDatasetDir(): string {
  const { perClass, size, seed } = DEFAULT_SYNTH;
  return resolve('.cache', `synth-${size}px-${perClass}-per-class-seed${seed}`);
}

export async function ensureDefaultDataset(log: (m: string) => void): Promise<string> {
  const dir = defaultDatasetDir();
  const marker = join(dir, 'synth.json');
  // A set from another generator version (other pixels for the same seed) is made again.
  const version = existsSync(marker) ? (JSON.parse(readFileSync(marker, 'utf8')) as { version?: number }).version : undefined;
  if (version === SYNTH_VERSION) return dir;
  if (version !== undefined) log(`the synthetic dataset in ${dir} is from generator version ${version}; this is version ${SYNTH_VERSION}`);
  rmSync(dir, { recursive: true, force: true });
  log(`generating the synthetic dataset (${DEFAULT_SYNTH.perClass} images per class, ${DEFAULT_SYNTH.size}²) in ${dir}`);
  await generateSynthDataset({ ...DEFAULT_SYNTH, out: dir });
  return dir;
}
