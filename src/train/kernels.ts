/**
 * Kernel versions for a training run (Node side of src/kernels/autotune.ts): which (op, shape)
 * pairs a run will launch, the `--kernels autotune|heuristic|FILE.json` modes, the per-adapter disk
 * cache of autotune results, and the record RUN/kernels.json that a resume, evaluate and predict
 * reuse — so a resumed run launches exactly the versions the interrupted one did.
 *
 * Cache: `$XDG_CACHE_HOME/lungpath/kernels-<key>.json` (else `~/.cache/lungpath/`), where <key>
 * hashes the adapter (vendor, architecture, device, description — the description carries the
 * driver version) and the kernel-set id (KERNEL_SET_VERSION, every version name, every WGSL
 * source). Written atomically after each tuned shape, merged with what another process wrote; a
 * corrupt or foreign file is warned about and retuned.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  adapterIdentity,
  autotune,
  formatKernelChoicesFile,
  heuristicChoices,
  installKernelChoices,
  KERNEL_SET_VERSION,
  kernelVersions,
  KERNELS_FILE_FORMAT,
  parseKernelChoicesFile,
  type AutotuneOptions,
  type KernelChoicesFile,
  type KernelRequest,
  type TunedChoice,
} from '../kernels/autotune.ts';
import { describeAdapter } from '../kernels/device.ts';
import { KERNEL_OPS, kernelKey, type KernelChoice } from '../kernels/kernel_choices.ts';
import { loadShaderSources } from '../kernels/node.ts';
import type { AdapterReport, Runtime } from '../kernels/runtime.ts';
import { derivedSizes, type ModelConfig } from '../nn/config.ts';
import { writeFileAtomic } from '../nn/files.ts';
import { kernelUses } from '../nn/kernel_uses.ts';
import { buildImageNetwork, buildPatchNetwork } from '../nn/networks.ts';
import { listCheckpoints } from './checkpoint.ts';
import { UsageError } from './errors.ts';
import { shardRows } from './data_parallel.ts';
import type { RunFolder } from './run_folder.ts';

/** `--kernels`: measure (cached per adapter), today's per-adapter rule, or a table from a file. */
export type KernelsMode = { kind: 'autotune' } | { kind: 'heuristic' } | { kind: 'file'; path: string };

/** Parses a `--kernels` / LUNGPATH_KERNELS value. */
export function parseKernelsMode(value: string, flag = '--kernels'): KernelsMode {
  if (value === 'autotune' || value === 'heuristic') return { kind: value };
  if (value.endsWith('.json')) return { kind: 'file', path: resolve(value) };
  throw new UsageError(`${flag} must be autotune, heuristic or a .json file of kernel choices, got '${value}'`);
}

function key(c: { op: KernelChoice['op']; shape: KernelChoice['shape'] }): string {
  return kernelKey(c.op, c.shape);
}

// ---- what a run launches -------------------------------------------------------------------------

/** Batch sizes of `total` items cut into batches of `size`: the full one and the last partial one. */
export function batchSizes(total: number, size: number): number[] {
  const out: number[] = [];
  if (total >= size) out.push(size);
  if (total % size > 0) out.push(total % size);
  return out;
}

export interface RunShape {
  config: ModelConfig;
  /** Images per split. */
  images: { train: number; val: number; test: number };
  level1BatchSize: number;
  level2BatchSize: number;
  devices: number;
}

/**
 * Every (op, shape) `lungpath train` launches for `r` — Level-1 training (each batch split over
 * the devices), Level-1 validation and test, the Level-2 inputs (Level-1 features on one image's
 * patches), Level-2 training, validation and test — plus what `lungpath predict` launches at its
 * default batch of 16. Built networks are walked for shapes (nn/kernel_uses.ts) and destroyed.
 */
export function trainingKernelRequests(rt: Runtime, r: RunShape): KernelRequest[] {
  const level1 = buildPatchNetwork(rt, r.config, 0);
  const level2 = buildImageNetwork(rt, r.config, 0);
  try {
    const { level1Patches, level2Patches, featureMapSize } = derivedSizes(r.config);
    const p = r.config.patch.size;
    const patches = (n: number) => [n, 3, p, p];
    const maps = (n: number) => [n, level2Patches, featureMapSize, featureMapSize];
    const shards = (n: number) => shardRows(n, r.devices).map(([a, b]) => b - a);
    const uses: KernelRequest[] = [];
    for (const n of batchSizes(r.images.train * level1Patches, r.level1BatchSize)) for (const k of shards(n)) uses.push(...kernelUses(level1, patches(k), true));
    for (const count of [r.images.val, r.images.test]) for (const n of batchSizes(count * level1Patches, r.level1BatchSize)) uses.push(...kernelUses(level1, patches(n), false));
    uses.push(...kernelUses(level1.features, patches(level2Patches), false));
    for (const n of batchSizes(r.images.train, r.level2BatchSize)) for (const k of shards(n)) uses.push(...kernelUses(level2, maps(k), true));
    for (const n of batchSizes(r.images.val, r.level2BatchSize)) uses.push(...kernelUses(level2, maps(n), false));
    for (const n of batchSizes(r.images.test, r.level1BatchSize)) uses.push(...kernelUses(level2, maps(n), false));
    for (const n of batchSizes(level1Patches, 16)) uses.push(...kernelUses(level1, patches(n), false));
    uses.push(...kernelUses(level2, maps(1), false));
    const unique = new Map(uses.map((u) => [key(u), u]));
    return [...unique.values()];
  } finally {
    level1.destroy();
    level2.destroy();
  }
}

// ---- the disk cache ------------------------------------------------------------------------------

/** KERNEL_SET_VERSION, the version names of every op and a hash of every WGSL source. */
export function kernelSetId(shaders: Readonly<Record<string, string>> = loadShaderSources()): string {
  const hash = createHash('sha256');
  hash.update(`lungpath kernel set ${KERNEL_SET_VERSION}\n`);
  for (const op of KERNEL_OPS) hash.update(`${op}: ${kernelVersions(op).join(',')}\n`);
  for (const name of Object.keys(shaders).sort()) hash.update(`${name}\0${shaders[name]}\0`);
  return `${KERNEL_SET_VERSION}-${hash.digest('hex').slice(0, 16)}`;
}

/** The cache folder: `$XDG_CACHE_HOME/lungpath`, else `~/.cache/lungpath`. */
export function defaultKernelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'lungpath');
}

/** `DIR/kernels-<hash of adapter and kernel set>.json`. */
export function kernelCachePath(dir: string, adapter: AdapterReport, kernelSet: string): string {
  const id = JSON.stringify({ adapter: adapterIdentity(adapter), kernelSet });
  return join(dir, `kernels-${createHash('sha256').update(id).digest('hex').slice(0, 16)}.json`);
}

/**
 * The cached choices for this adapter and kernel set, by key. A missing file is empty; a corrupt
 * one, or one made for another adapter or kernel set, is warned about and treated as empty.
 */
export function readKernelCache(path: string, adapter: AdapterReport, kernelSet: string, warn: (m: string) => void): Map<string, KernelChoice> {
  const out = new Map<string, KernelChoice>();
  if (!existsSync(path)) return out;
  let file: KernelChoicesFile;
  try {
    file = parseKernelChoicesFile(readFileSync(path, 'utf8'), path);
  } catch (e) {
    warn(`corrupt kernel cache, ignored and retuned: ${(e as Error).message}`);
    return out;
  }
  if (file.kernelSet !== kernelSet || JSON.stringify(file.adapter) !== JSON.stringify(adapterIdentity(adapter))) {
    warn(`${path}: made for another adapter or kernel set (${file.kernelSet}); ignored and retuned`);
    return out;
  }
  for (const c of file.choices) out.set(key(c), c);
  return out;
}

/** Writes `choices` into the cache atomically, keeping entries another process added meanwhile. */
export function writeKernelCache(path: string, adapter: AdapterReport, kernelSet: string, choices: readonly KernelChoice[]): void {
  const merged = readKernelCache(path, adapter, kernelSet, () => {});
  for (const c of choices) merged.set(key(c), c);
  mkdirSync(resolve(path, '..'), { recursive: true });
  const file: KernelChoicesFile = { format: KERNELS_FILE_FORMAT, kernelSet, adapter: adapterIdentity(adapter), mode: 'autotune', choices: [...merged.values()] };
  writeFileAtomic(path, formatKernelChoicesFile(file));
}

export interface KernelsContext {
  log: (m: string) => void;
  warn: (m: string) => void;
  /** Default defaultKernelCacheDir(). */
  cacheDir?: string;
  /** Passed to autotune (tests use fewer repetitions). */
  autotune?: Pick<AutotuneOptions, 'reps' | 'margin'>;
  /** Default kernelSetId(). */
  kernelSet?: string;
}

/**
 * The measured choice for every request: from the disk cache where it has the shape, else tuned
 * now on `rt` (and added to the cache). Returns one choice per distinct request.
 */
export async function autotuneCached(rt: Runtime, all: readonly KernelRequest[], ctx: KernelsContext): Promise<KernelChoice[]> {
  const requests = [...new Map(all.map((r) => [key(r), r])).values()];
  const kernelSet = ctx.kernelSet ?? kernelSetId();
  const path = kernelCachePath(ctx.cacheDir ?? defaultKernelCacheDir(), rt.adapter, kernelSet);
  const known = readKernelCache(path, rt.adapter, kernelSet, ctx.warn);
  const todo = requests.filter((r) => !known.has(key(r)));
  if (todo.length > 0) {
    ctx.log(`kernels: autotuning ${todo.length} shapes on ${describeAdapter(rt.adapter)} (${requests.length - todo.length} cached in ${path})`);
    const start = performance.now();
    const tuned: TunedChoice[] = [];
    let writable = true;
    await autotune(rt, todo, {
      ...ctx.autotune,
      onChoice: (c) => {
        tuned.push(c);
        known.set(key(c), c);
        if (!writable) return;
        try {
          writeKernelCache(path, rt.adapter, kernelSet, tuned);
        } catch (e) {
          writable = false;
          ctx.warn(`cannot write the kernel cache ${path} (${(e as Error).message}); the choices are still recorded in the run`);
        }
      },
    });
    const changed = tuned.filter((c) => c.variant !== heuristicChoices(rt, [c])[0]?.variant).length;
    ctx.log(`kernels: autotuned in ${((performance.now() - start) / 1000).toFixed(1)} s; ${changed} of ${tuned.length} shapes differ from the heuristic`);
  }
  return requests.map((r) => known.get(key(r)) as KernelChoice);
}

/**
 * The table for `requests` in `mode` (not installed): the heuristic's versions; a file's entries
 * plus the heuristic's for the requests it lacks; or measured (autotuneCached).
 */
export async function decideKernels(rt: Runtime, mode: KernelsMode, requests: readonly KernelRequest[], ctx: KernelsContext): Promise<KernelChoice[]> {
  switch (mode.kind) {
    case 'heuristic':
      return heuristicChoices(rt, requests);
    case 'file': {
      if (!existsSync(mode.path)) throw new UsageError(`--kernels ${mode.path}: no such file`);
      const given = parseKernelChoicesFile(readFileSync(mode.path, 'utf8'), mode.path).choices.map(({ op, shape, variant }) => ({ op, shape, variant }) as KernelChoice);
      const keys = new Set(given.map(key));
      return [...given, ...heuristicChoices(rt, requests).filter((c) => !keys.has(key(c)))];
    }
    case 'autotune':
      return autotuneCached(rt, requests, ctx);
    default:
      return mode satisfies never;
  }
}

/** For benches: LUNGPATH_KERNELS=autotune|heuristic|FILE.json decides `requests()` and installs them on `rt`; unset leaves the table empty. */
export async function useKernelsFromEnv(rt: Runtime, requests: () => readonly KernelRequest[], log: (m: string) => void = console.log): Promise<void> {
  const value = process.env.LUNGPATH_KERNELS;
  if (!value) return;
  const mode = parseKernelsMode(value, 'LUNGPATH_KERNELS');
  installKernelChoices(rt, await decideKernels(rt, mode, requests(), { log, warn: (m) => console.warn(`warning: ${m}`) }), value);
  log(`kernels: ${value} (${rt.kernels.entries().length} shapes)`);
}

// ---- a run's record ------------------------------------------------------------------------------

/** RUN/kernels.json. */
export function runKernelsPath(run: RunFolder): string {
  return join(run.dir, 'kernels.json');
}

/**
 * Decides the kernel versions of a training run, installs them on every runtime (`rts` share one
 * adapter) and records them in RUN/kernels.json before training starts. On `resume` with a record,
 * the record is used as it is, never retuned (a corrupt record stops the run: it cannot be
 * reproduced); a resumed run from before records existed uses the heuristic, which it ran.
 */
export async function prepareRunKernels(rts: readonly Runtime[], run: RunFolder, mode: KernelsMode, resume: boolean, requests: readonly KernelRequest[], ctx: KernelsContext): Promise<KernelChoicesFile> {
  const rt = rts[0] as Runtime;
  const path = runKernelsPath(run);
  const kernelSet = ctx.kernelSet ?? kernelSetId();
  if (resume && existsSync(path)) {
    const file = parseKernelChoicesFile(readFileSync(path, 'utf8'), path);
    if (file.kernelSet && file.kernelSet !== kernelSet) ctx.warn(`${path} was recorded with kernel set ${file.kernelSet}, this build has ${kernelSet}: its versions are used as recorded, but their bits may differ`);
    for (const r of rts) installKernelChoices(r, file.choices, path);
    ctx.log(`kernels: ${file.choices.length} versions as recorded in ${path} (${file.mode})`);
    return file;
  }
  const resumingOld = resume && ['level1', 'level2'].some((level) => listCheckpoints(run.checkpoints, level).length > 0);
  const effective: KernelsMode = resumingOld ? { kind: 'heuristic' } : mode;
  const choices = await decideKernels(rt, effective, requests, { ...ctx, kernelSet });
  for (const r of rts) installKernelChoices(r, choices, effective.kind === 'file' ? effective.path : 'kernel choices');
  const file: KernelChoicesFile = {
    format: KERNELS_FILE_FORMAT,
    kernelSet,
    adapter: adapterIdentity(rt.adapter),
    mode: effective.kind === 'file' ? `file ${effective.path}` : effective.kind,
    choices: rt.kernels.entries().map((c) => {
      const timings = (choices.find((d) => key(d) === key(c)) as TunedChoice | undefined)?.timings;
      return timings ? { ...c, timings } : c;
    }),
  };
  writeFileAtomic(path, formatKernelChoicesFile(file));
  if (resumingOld) ctx.log(`kernels: ${path} was missing (a run from before it was recorded): the heuristic versions, which it used, are recorded now`);
  return file;
}

/**
 * For evaluate and predict: the run's recorded versions when RUN/kernels.json exists (shapes it
 * lacks use the heuristic), else the heuristic. A corrupt record is warned about and ignored.
 */
export function useRunKernels(rt: Runtime, run: RunFolder, warn: (m: string) => void): void {
  const path = runKernelsPath(run);
  if (!existsSync(path)) return;
  try {
    installKernelChoices(rt, parseKernelChoicesFile(readFileSync(path, 'utf8'), path).choices, path);
  } catch (e) {
    warn(`${(e as Error).message}; using the heuristic kernel versions`);
  }
}
