/**
 * The `lungpath train` flags of crash safety and fault handling — checkpoints inside an epoch,
 * what a NaN/Inf does, a GPU memory budget — their help lines and their parsing (kept apart from
 * train.ts so that file only wires them in).
 */
import { intFlag, UsageError } from './args.ts';
import type { NonFinitePolicy } from '../guard.ts';

/** Batches between checkpoints inside an epoch by default: a seed-preset epoch (6,075 batches of 16) gets six, a tiny one (735) none. */
export const DEFAULT_CHECKPOINT_EVERY = 1000;

/** parseArgs options of these flags. */
export const RELIABILITY_FLAGS = {
  'checkpoint-every': { type: 'string' },
  'skip-nonfinite': { type: 'boolean' },
  'max-skips': { type: 'string' },
  'gpu-memory': { type: 'string' },
} as const;

/** Their lines of `lungpath train --help`. */
export const RELIABILITY_HELP = `  --checkpoint-every N  also checkpoint every N batches inside an epoch, so a crash loses at most N
                        batches (default ${DEFAULT_CHECKPOINT_EVERY}; 0: only at the end of each epoch)
  --skip-nonfinite      skip a batch whose loss or gradients hold NaN or Inf (no update; counted and
                        logged) instead of stopping
  --max-skips N         with --skip-nonfinite, stop when more than N batches of one epoch are skipped
                        (default 1% of an epoch's batches, at least 1)
  --gpu-memory SIZE     use at most SIZE of GPU memory (e.g. 6G, 512M, bytes); a batch that does not
                        fit is refused before training, naming the largest that does`;

/** Per-level options from these flags. */
export interface ReliabilityOptions {
  checkpointEvery: number;
  onNonFinite: NonFinitePolicy;
  maxSkips: number | null;
}

/** A size like `6G`, `512M`, `1.5GiB` or a byte count, in bytes. */
export function parseByteSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[(m?.[2] ?? '').toLowerCase()];
  const bytes = m && scale ? Math.floor(Number(m[1]) * scale) : NaN;
  if (!Number.isFinite(bytes) || bytes < 1) throw new UsageError(`--${flag} must be a size such as 6G, 512M or a byte count, got '${value}'`);
  return bytes;
}

/** Reads the flags (values from parseArgs). */
export function reliabilityOptions(values: Record<string, string | boolean | undefined>): ReliabilityOptions & { gpuMemoryBytes: number | null } {
  const skip = Boolean(values['skip-nonfinite']);
  if (values['max-skips'] !== undefined && !skip) throw new UsageError('--max-skips needs --skip-nonfinite');
  return {
    checkpointEvery: intFlag(values['checkpoint-every'], 'checkpoint-every', DEFAULT_CHECKPOINT_EVERY, 0),
    onNonFinite: skip ? 'skip' : 'stop',
    maxSkips: values['max-skips'] === undefined ? null : intFlag(values['max-skips'], 'max-skips', 0, 0),
    gpuMemoryBytes: typeof values['gpu-memory'] === 'string' ? parseByteSize(values['gpu-memory'], 'gpu-memory') : null,
  };
}
