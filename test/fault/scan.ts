/**
 * Inspection of a run folder after a kill, for the fault script: every checkpoint file is read and
 * its checksum verified (readCheckpoint), the weights files and config.json must parse, and the
 * temporary files of interrupted atomic writes are listed — they must never be taken for
 * checkpoints, and the next start must delete them.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors } from '../../src/nn/safetensors.ts';
import { listCheckpoints, readCheckpoint } from '../../src/train/checkpoint.ts';

export interface ScanResult {
  checkpoints: string[];
  /** Files that failed to verify (besides the one corrupted on purpose), with the reason. */
  corrupt: string[];
  /** Temporary files of interrupted writes (full paths). */
  tempFiles: string[];
}

const TEMP = /\.\d+\.tmp$/;

export function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * Scans `run`. `deliberate` is a file corrupted on purpose and the hash it was left with: while it
 * still holds those bytes it is not counted as corrupt.
 */
export function scanRun(run: string, deliberate: { path: string; hash: string } | null): ScanResult {
  const result: ScanResult = { checkpoints: [], corrupt: [], tempFiles: [] };
  const dirs = [run, join(run, 'checkpoints'), join(run, 'cache')].filter(existsSync);
  for (const dir of dirs) for (const name of readdirSync(dir)) if (TEMP.test(name)) result.tempFiles.push(join(dir, name));
  const dir = join(run, 'checkpoints');
  for (const level of ['level1', 'level2']) {
    for (const name of listCheckpoints(dir, level)) {
      const path = join(dir, name);
      result.checkpoints.push(name);
      if (deliberate?.path === path && existsSync(path) && fileHash(path) === deliberate.hash) continue;
      try {
        readCheckpoint(path);
      } catch (e) {
        result.corrupt.push(`${name}: ${(e as Error).message}`);
      }
    }
  }
  for (const name of ['level1.safetensors', 'level2.safetensors']) {
    const path = join(run, name);
    if (!existsSync(path)) continue;
    try {
      parseSafetensors(new Uint8Array(readFileSync(path)), path);
    } catch (e) {
      result.corrupt.push(`${name}: ${(e as Error).message}`);
    }
  }
  const config = join(run, 'config.json');
  if (existsSync(config)) {
    try {
      JSON.parse(readFileSync(config, 'utf8'));
    } catch (e) {
      result.corrupt.push(`config.json: ${(e as Error).message}`);
    }
  }
  return result;
}

/** The newest checkpoint file of the run by modification time (the one a resume loads first), or null. */
export function newestCheckpoint(run: string): string | null {
  const dir = join(run, 'checkpoints');
  const all = ['level1', 'level2'].flatMap((level) => listCheckpoints(dir, level).slice(-1)).map((name) => join(dir, name));
  all.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  return all.at(-1) ?? null;
}

/** Corrupts `path` on purpose: flips a byte in the middle of its tensor data, or cuts it short. Returns the new hash. */
export function corruptFile(path: string, how: 'flip' | 'truncate'): string {
  const bytes = readFileSync(path);
  if (how === 'truncate') truncateSync(path, Math.floor(bytes.length * 0.6));
  else {
    const i = Math.floor(bytes.length * 0.75);
    bytes[i] = (bytes[i] as number) ^ 0x5a;
    writeFileSync(path, bytes);
  }
  return fileHash(path);
}
