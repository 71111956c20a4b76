/**
 * Training checkpoints: one safetensors file per epoch holding the network's state_dict, the Adam
 * moments (`optim.<param>.exp_avg[_sq]`) and, in `__metadata__`, the epoch, optimizer step,
 * learning rate, RNG state and a SHA-256 of the tensor bytes. Written atomically; on load the
 * checksum is verified and a corrupt latest checkpoint falls back to the previous one.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { readFileBytes, writeFileAtomic } from '../nn/files.ts';
import type { Module } from '../nn/modules.ts';
import type { Adam } from '../nn/optim.ts';
import { entryToFloat32, parseSafetensors, serializeSafetensors, type TensorToWrite } from '../nn/safetensors.ts';
import { loadWeights } from '../nn/weights.ts';

export interface CheckpointState {
  /** Epochs completed. */
  epoch: number;
  optimizerStep: number;
  lr: number;
  /** Training RNG state words. */
  rng: number[];
  /** Anything else the trainer needs back (best validation accuracy, kernel variants, …). */
  extra: Record<string, unknown>;
}

const KEEP = 3;

function checkpointName(level: string, epoch: number): string {
  return `${level}-epoch-${String(epoch).padStart(4, '0')}.safetensors`;
}

function sha256(parts: readonly ArrayBufferView[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return hash.digest('hex');
}

/** Writes `dir/<level>-epoch-NNNN.safetensors` atomically and keeps the newest three. */
export async function saveCheckpoint(dir: string, level: string, net: Module, adam: Adam, state: CheckpointState, config: unknown): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const tensors: TensorToWrite[] = [];
  for (const entry of net.state()) {
    if (entry.dtype === 'I64') tensors.push({ name: entry.name, dtype: 'I64', shape: entry.shape, data: new BigInt64Array([BigInt(entry.get?.() ?? 0)]) });
    else if (entry.tensor) tensors.push({ name: entry.name, dtype: 'F32', shape: entry.shape, data: await entry.tensor.read() });
  }
  for (const t of adam.stateTensors()) tensors.push({ name: `optim.${t.label}`, dtype: 'F32', shape: t.shape, data: await t.read() });
  const metadata = {
    format: 'lungpath-checkpoint-1',
    level,
    config: JSON.stringify(config),
    state: JSON.stringify(state),
    sha256: sha256(tensors.map((t) => t.data)),
  };
  const path = join(dir, checkpointName(level, state.epoch));
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
  for (const old of listCheckpoints(dir, level).slice(0, -KEEP)) unlinkSync(join(dir, old));
  return path;
}

/** Checkpoint file names of `level`, oldest first. */
export function listCheckpoints(dir: string, level: string): string[] {
  if (!existsSync(dir)) return [];
  const pattern = new RegExp(`^${level}-epoch-\\d{4}\\.safetensors$`);
  return readdirSync(dir).filter((f) => pattern.test(f)).sort();
}

/** Parses and verifies one checkpoint file; throws a message naming the file when it is corrupt. */
export function readCheckpoint(path: string) {
  const file = parseSafetensors(readFileBytes(path), path);
  const { sha256: expected, state } = file.metadata;
  if (!expected || !state) throw new Error(`${path}: not a lungpath checkpoint (no checksum or state in its metadata)`);
  const actual = sha256([...file.tensors.values()].map((t) => t.data));
  if (actual !== expected) throw new Error(`${path}: checksum mismatch (file is corrupt)`);
  return { file, state: JSON.parse(state) as CheckpointState };
}

/**
 * Loads the newest valid checkpoint of `level` into `net` and `adam`; a corrupt one is skipped
 * with a warning. Returns null when there is none, or when `accept` turns the newest valid one down.
 */
export function loadLatestCheckpoint(
  dir: string,
  level: string,
  net: Module,
  adam: Adam,
  warn: (message: string) => void,
  accept: (state: CheckpointState, path: string) => boolean = () => true,
): CheckpointState | null {
  for (const name of listCheckpoints(dir, level).reverse()) {
    const path = join(dir, name);
    let checkpoint;
    try {
      checkpoint = readCheckpoint(path);
    } catch (e) {
      warn(`${(e as Error).message}; falling back to the previous checkpoint`);
      continue;
    }
    const { file, state } = checkpoint;
    if (!accept(state, path)) return null;
    const weights = new Map([...file.tensors].filter(([k]) => !k.startsWith('optim.')));
    loadWeights(net, { tensors: weights, metadata: {} }, path);
    const moments = new Map<string, Float32Array>();
    for (const [k, v] of file.tensors) if (k.startsWith('optim.')) moments.set(k.slice(6), entryToFloat32(v, k));
    adam.loadState(moments, state.optimizerStep);
    adam.lr = state.lr;
    return state;
  }
  return null;
}
