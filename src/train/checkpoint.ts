/**
 * Training checkpoints: one safetensors file per epoch (and, with --checkpoint-every, every N batches
 * inside an epoch: `<level>-epoch-EEEE-batch-BBBBBB`, EEEE the epoch in progress) holding the network's state_dict, the Adam
 * moments (`optim.<param>.exp_avg[_sq]`) and, in `__metadata__`, the epoch, optimizer step,
 * learning rate, RNG state and a SHA-256 of everything else in the file (format 2; format 1 files,
 * whose SHA-256 covers only the tensor bytes, still load). Written atomically; on load the checksum
 * and the state's fields are verified and a corrupt latest checkpoint falls back to the previous one.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { readFileBytes, writeFileAtomic } from '../nn/files.ts';
import type { Module } from '../nn/modules.ts';
import type { Adam } from '../nn/optim.ts';
import { entryToFloat32, parseSafetensors, serializeSafetensors, type TensorToWrite } from '../nn/safetensors.ts';
import { readTensors, type Tensor } from '../nn/tensor.ts';
import { loadWeights } from '../nn/weights.ts';
import { NonFiniteWeightsError } from './guard.ts';

export interface CheckpointState {
  /** Epochs completed. */
  epoch: number;
  /** Batches of the next epoch already trained (a checkpoint inside an epoch); absent or 0 at an epoch's end. */
  batch?: number;
  optimizerStep: number;
  lr: number;
  /** Training RNG state words. */
  rng: number[];
  /** Anything else the trainer needs back (best validation accuracy, kernel variants, …). */
  extra: Record<string, unknown>;
}

const KEEP = 3;

/** The file name of `level`'s checkpoint after `epoch` epochs (and `batch` batches of the next, if not 0). */
export function checkpointName(level: string, epoch: number, batch: number): string {
  if (batch === 0) return `${level}-epoch-${String(epoch).padStart(4, '0')}.safetensors`;
  return `${level}-epoch-${String(epoch + 1).padStart(4, '0')}-batch-${String(batch).padStart(6, '0')}.safetensors`;
}

/** (epochs completed, batches of the next one) of a checkpoint file name, or null if it is not one of `level`. */
function checkpointPosition(level: string, name: string): [number, number] | null {
  const m = new RegExp(`^${level}-epoch-(\\d{4,})(?:-batch-(\\d{6,}))?\\.safetensors$`).exec(name);
  if (!m) return null;
  return m[2] === undefined ? [Number(m[1]), 0] : [Number(m[1]) - 1, Number(m[2])];
}

function sha256(parts: readonly ArrayBufferView[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return hash.digest('hex');
}

const FORMAT = 'lungpath-checkpoint-2';

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The checksum of format 2: SHA-256 over every metadata entry but itself and every tensor's name,
 * dtype, shape and bytes (sorted by name), so a flipped byte anywhere in the file is caught. Format 1
 * hashed the tensor bytes only: a flipped digit of the learning rate in the state went unnoticed.
 */
function digest(tensors: readonly { name: string; dtype: string; shape: readonly number[]; data: ArrayBufferView }[], metadata: Record<string, string>): string {
  const sorted = [...tensors].sort((a, b) => compare(a.name, b.name));
  const meta = Object.entries(metadata).filter(([k]) => k !== 'sha256').sort((a, b) => compare(a[0], b[0]));
  const header = JSON.stringify({ metadata: meta, tensors: sorted.map((t) => [t.name, t.dtype, t.shape, t.data.byteLength]) });
  return sha256([new TextEncoder().encode(header), ...sorted.map((t) => t.data)]);
}

/** Throws naming the file unless `state` has the fields and types the trainer relies on. */
function checkState(state: unknown, path: string): CheckpointState {
  const s = state as Partial<CheckpointState>;
  const count = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const problem =
    typeof s !== 'object' || s === null || Array.isArray(s) ? 'is not an object'
    : !count(s.epoch) ? 'has no epoch count'
    : s.batch !== undefined && !count(s.batch) ? 'has a bad batch count'
    : !count(s.optimizerStep) ? 'has no optimizer step count'
    : typeof s.lr !== 'number' || !Number.isFinite(s.lr) || s.lr < 0 ? 'has no valid learning rate'
    : !Array.isArray(s.rng) || !s.rng.every((w) => typeof w === 'number') ? 'has no RNG state'
    : typeof s.extra !== 'object' || s.extra === null || Array.isArray(s.extra) ? 'has no extra object'
    : null;
  if (problem) throw new Error(`${path}: the checkpoint state in its metadata ${problem} (file is corrupt)`);
  return s as CheckpointState;
}

/**
 * Writes the checkpoint of `state` (epoch, batch) atomically into `dir` and keeps the newest three,
 * and also the newest `keepEpochEnds` taken at an epoch's end (Level-2 weight averaging reads
 * them); state holding NaN or Inf is never written (NonFiniteWeightsError), so the last checkpoint
 * stays good.
 */
export async function saveCheckpoint(dir: string, level: string, net: Module, adam: Adam, state: CheckpointState, config: unknown, keepEpochEnds = 0): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const tensors: TensorToWrite[] = [];
  // Every float tensor (weights, buffers, Adam moments) in one readback: readTensors.
  const entries = net.state().filter((e) => e.dtype === 'I64' || e.tensor);
  const moments = adam.stateTensors();
  const floats = await readTensors([...entries.filter((e) => e.dtype !== 'I64').map((e) => e.tensor as Tensor), ...moments]);
  let next = 0;
  for (const entry of entries) {
    if (entry.dtype === 'I64') tensors.push({ name: entry.name, dtype: 'I64', shape: entry.shape, data: new BigInt64Array([BigInt(entry.get?.() ?? 0)]) });
    else tensors.push({ name: entry.name, dtype: 'F32', shape: entry.shape, data: floats[next++] as Float32Array });
  }
  for (const t of moments) tensors.push({ name: `optim.${t.label}`, dtype: 'F32', shape: t.shape, data: floats[next++] as Float32Array });
  const nonFinite = tensors.filter((t) => t.dtype === 'F32' && !(t.data as Float32Array).every(Number.isFinite)).map((t) => t.name);
  if (nonFinite.length > 0) throw new NonFiniteWeightsError(`the ${level} checkpoint of optimizer step ${state.optimizerStep}`, nonFinite);
  const described = { format: FORMAT, level, config: JSON.stringify(config), state: JSON.stringify(state) };
  const metadata = { ...described, sha256: digest(tensors, described) };
  const path = join(dir, checkpointName(level, state.epoch, state.batch ?? 0));
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
  const all = listCheckpoints(dir, level);
  const epochEnds = new Set(keepEpochEnds > 0 ? all.filter((name) => checkpointPosition(level, name)?.[1] === 0).slice(-keepEpochEnds) : []);
  for (const old of all.slice(0, -KEEP)) if (!epochEnds.has(old)) unlinkSync(join(dir, old));
  return path;
}

/** Checkpoint file names of `level`, oldest first (temporary files of an unfinished write are not listed). */
export function listCheckpoints(dir: string, level: string): string[] {
  if (!existsSync(dir)) return [];
  const found = readdirSync(dir).flatMap((name) => {
    const position = checkpointPosition(level, name);
    return position ? [{ name, position }] : [];
  });
  return found.sort((a, b) => a.position[0] - b.position[0] || a.position[1] - b.position[1]).map((f) => f.name);
}

/** Parses and verifies one checkpoint file; throws a message naming the file when it is corrupt. */
export function readCheckpoint(path: string) {
  const file = parseSafetensors(readFileBytes(path), path);
  const { sha256: expected, state, format } = file.metadata;
  if (!expected || !state) throw new Error(`${path}: not a lungpath checkpoint (no checksum or state in its metadata)`);
  let actual: string;
  if (format === FORMAT) actual = digest([...file.tensors].map(([name, t]) => ({ name, ...t })), file.metadata);
  else if (format === undefined || format === 'lungpath-checkpoint-1') actual = sha256([...file.tensors.values()].map((t) => t.data));
  else throw new Error(`${path}: unknown checkpoint format ${JSON.stringify(format.slice(0, 80))} (file is corrupt, or from a newer lungpath)`);
  if (actual !== expected) throw new Error(`${path}: checksum mismatch (file is corrupt)`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(state);
  } catch (e) {
    throw new Error(`${path}: the checkpoint state in its metadata is not valid JSON (${(e as Error).message}; file is corrupt)`);
  }
  return { file, state: checkState(parsed, path) };
}

/**
 * Weight averaging (Izmailov et al. 2018): each named tensor's mean over the checkpoints at `paths`,
 * summed in float64 in the order given and rounded once to float32. Level 2's --level2-average-last
 * and tools/average-level1.ts.
 */
export function averageCheckpointTensors(paths: readonly string[], names: readonly string[]): Map<string, Float32Array> {
  const sums = new Map<string, Float64Array>();
  for (const path of paths) {
    const { file } = readCheckpoint(path);
    for (const name of names) {
      const entry = file.tensors.get(name);
      if (!entry) throw new Error(`${path}: no tensor ${name}`);
      const values = entryToFloat32(entry, name);
      const sum = sums.get(name) ?? new Float64Array(values.length);
      values.forEach((v, i) => (sum[i] = (sum[i] as number) + v));
      sums.set(name, sum);
    }
  }
  return new Map([...sums].map(([name, sum]) => [name, Float32Array.from(sum, (v) => v / paths.length)]));
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
    if (!accept(checkpoint.state, path)) return null;
    return applyCheckpoint(checkpoint, path, net, adam);
  }
  return null;
}

/** Loads a checkpoint read by `readCheckpoint` into `net` (weights, buffers) and `adam` (moments, step, rate); returns its state. */
export function applyCheckpoint({ file, state }: ReturnType<typeof readCheckpoint>, path: string, net: Module, adam: Adam): CheckpointState {
  const weights = new Map([...file.tensors].filter(([k]) => !k.startsWith('optim.')));
  loadWeights(net, { tensors: weights, metadata: {} }, path);
  const moments = new Map<string, Float32Array>();
  for (const [k, v] of file.tensors) if (k.startsWith('optim.')) moments.set(k.slice(6), entryToFloat32(v, k));
  adam.loadState(moments, state.optimizerStep);
  adam.lr = state.lr;
  return state;
}
