/**
 * Kernel autotuning: for each (op, shape) a network will launch, every version that applies is run
 * on that exact shape with scratch inputs, checked, timed, and the fastest median wins. What is fast
 * on lavapipe (uniform-buffer weights, lanes over channels) is not what is fast on a discrete GPU
 * (shared-memory tiles, coalesced loads), so the choice is measured per adapter and shape rather
 * than guessed; the result goes into `rt.kernels` (kernel_choices.ts) before training, and the
 * training loop never waits on a timing. After llm.c's dev/cuda mains: versions side by side, each
 * checked against a reference before it is timed.
 *
 * The checks, per version: its output on the full shape against the heuristic version's output
 * (atol + rtol·|ref| with atol relative to the largest |ref|), and on a reduced copy of the shape
 * (batch ≤ 2, ≤ 9×11 pixels, same channels and kernel) against the float64 CPU reference
 * (conv2d_ref.ts, linear.ts). A version that fails either, throws, or yields NaN is never chosen.
 * Also here: the table of ops and their versions, validation of a table's entries, and the
 * JSON file format shared by the disk cache and RUN/kernels.json (the disk itself is src/train's).
 */
import { chooseConv2dBackwardDataVariant, conv2dBackwardData } from './conv2d_data_grad.ts';
import { chooseConv2dForwardVariant, CONV2D_FORWARD_VARIANTS, conv2dForward, conv2dVariantApplies, isCpuAdapter, type Conv2dForwardVariant } from './conv2d_forward.ts';
import { isGemmRbVariant } from './conv2d_gemm_rb.ts';
import { withDawnSpinning } from './dawn_ticks.ts';
import { conv2dBackwardDataRef, conv2dBackwardWeightRef, conv2dForwardRef } from './conv2d_ref.ts';
import { conv2dOutputSize, validateConv2dShape, type Conv2dShape } from './conv2d_shape.ts';
import { chooseConv2dWeightGradVariant, CONV2D_WEIGHT_GRAD_VARIANTS, conv2dBackwardWeight, conv2dWeightGradSupports, type Conv2dWeightGradVariant } from './conv2d_weight_grad.ts';
import { KERNEL_OPS, KERNEL_SHAPE_FIELDS, kernelKey, keyShape, type KernelChoice, type KernelOp, type KernelShapes } from './kernel_choices.ts';
import {
  chooseLinearVariant,
  LINEAR_GEMM_VARIANTS,
  linearBackwardData,
  linearBackwardDataRef,
  linearBackwardWeight,
  linearBackwardWeightRef,
  linearForward,
  linearForwardRef,
  type LinearGemmVariant,
  type LinearShape,
} from './linear.ts';
import type { AdapterReport, Runtime } from './runtime.ts';

/**
 * Bump when a launcher changes what a version computes or how fast it is without its WGSL changing
 * (tile sizes in TypeScript, grid shapes): it is part of the kernel-set id that keys the disk cache.
 * 2: conv2d '2x2s2_sg' (forward and dx); packWeights / directConv take the kernel's lane layout.
 * 3: conv2d 'gemm_rb128' / 'gemm_rb64' / 'gemm_rb_n32' (forward, dx, dW: conv2d_gemm_rb.ts).
 */
export const KERNEL_SET_VERSION = 3;

/** How one op is launched, checked and keyed. */
interface OpRule<K extends KernelOp> {
  variants: readonly string[];
  applies(variant: string, s: KernelShapes[K]): boolean;
  heuristic(rt: Runtime, s: KernelShapes[K]): string;
  /** Throws a message naming the field when `s` is not a shape of this op. */
  validate(s: KernelShapes[K]): void;
  /** Float count of each input, in `run`'s order, and of the output. */
  sizes(s: KernelShapes[K]): { inputs: number[]; output: number };
  run(rt: Runtime, inputs: readonly GPUBuffer[], s: KernelShapes[K], variant: string): GPUBuffer;
  reference(inputs: readonly Float32Array[], s: KernelShapes[K]): Float64Array;
  /** A copy of `s` small enough for the float64 reference that still runs the same versions. */
  reduced(s: KernelShapes[K]): KernelShapes[K];
}

const at = (inputs: readonly GPUBuffer[], i: number) => inputs[i] as GPUBuffer;
const host = (inputs: readonly Float32Array[], i: number) => inputs[i] as Float32Array;

function convSizes(s: Conv2dShape) {
  const { ho, wo } = conv2dOutputSize(s);
  return { x: s.n * s.cIn * s.h * s.w, w: s.cOut * s.cIn * s.kh * s.kw, y: s.n * s.cOut * ho * wo };
}

const reducedConv = (s: Conv2dShape): Conv2dShape => ({ ...s, n: Math.min(s.n, 2), h: Math.min(s.h, 9), w: Math.min(s.w, 11) });
const reducedLinear = (s: LinearShape): LinearShape => ({ ...s, n: Math.min(s.n, 3) });

function validateLinearShape(s: LinearShape): void {
  for (const key of KERNEL_SHAPE_FIELDS['linear.forward']) {
    if (!Number.isInteger(s[key]) || s[key] < 1) throw new RangeError(`linear: ${key} must be a positive integer, got ${s[key]}`);
  }
}

const forwardOrDx = { variants: CONV2D_FORWARD_VARIANTS, applies: (v: string, s: Conv2dShape) => (CONV2D_FORWARD_VARIANTS as readonly string[]).includes(v) && conv2dVariantApplies(v as Conv2dForwardVariant, s), validate: validateConv2dShape, reduced: reducedConv };
const linearCommon = { variants: LINEAR_GEMM_VARIANTS, applies: (v: string) => (LINEAR_GEMM_VARIANTS as readonly string[]).includes(v), validate: validateLinearShape, reduced: reducedLinear };

const RULES: { readonly [K in KernelOp]: OpRule<K> } = {
  'conv2d.forward': {
    ...forwardOrDx,
    heuristic: chooseConv2dForwardVariant,
    sizes: (s) => ({ inputs: [convSizes(s).x, convSizes(s).w, s.cOut], output: convSizes(s).y }),
    run: (rt, i, s, v) => conv2dForward(rt, at(i, 0), at(i, 1), at(i, 2), s, { variant: v as Conv2dForwardVariant }),
    reference: (i, s) => conv2dForwardRef(host(i, 0), host(i, 1), host(i, 2), s),
  },
  'conv2d.dx': {
    ...forwardOrDx,
    heuristic: chooseConv2dBackwardDataVariant,
    sizes: (s) => ({ inputs: [convSizes(s).y, convSizes(s).w], output: convSizes(s).x }),
    run: (rt, i, s, v) => conv2dBackwardData(rt, at(i, 0), at(i, 1), s, { variant: v as Conv2dForwardVariant }),
    reference: (i, s) => conv2dBackwardDataRef(host(i, 0), host(i, 1), s),
  },
  'conv2d.dw': {
    variants: CONV2D_WEIGHT_GRAD_VARIANTS,
    applies: (v, s) => (CONV2D_WEIGHT_GRAD_VARIANTS as readonly string[]).includes(v) && conv2dWeightGradSupports(v as Conv2dWeightGradVariant, s),
    heuristic: chooseConv2dWeightGradVariant,
    validate: validateConv2dShape,
    reduced: reducedConv,
    sizes: (s) => ({ inputs: [convSizes(s).x, convSizes(s).y], output: convSizes(s).w }),
    run: (rt, i, s, v) => conv2dBackwardWeight(rt, at(i, 0), at(i, 1), s, { variant: v as Conv2dWeightGradVariant }),
    reference: (i, s) => conv2dBackwardWeightRef(host(i, 0), host(i, 1), s),
  },
  'linear.forward': {
    ...linearCommon,
    heuristic: (_rt, s) => chooseLinearVariant('forward', s),
    sizes: (s) => ({ inputs: [s.n * s.inFeatures, s.outFeatures * s.inFeatures, s.outFeatures], output: s.n * s.outFeatures }),
    run: (rt, i, s, v) => linearForward(rt, at(i, 0), at(i, 1), at(i, 2), s, v as LinearGemmVariant),
    reference: (i, s) => linearForwardRef(host(i, 0), host(i, 1), host(i, 2), s),
  },
  'linear.dx': {
    ...linearCommon,
    heuristic: (_rt, s) => chooseLinearVariant('dx', s),
    sizes: (s) => ({ inputs: [s.n * s.outFeatures, s.outFeatures * s.inFeatures], output: s.n * s.inFeatures }),
    run: (rt, i, s, v) => linearBackwardData(rt, at(i, 0), at(i, 1), s, v as LinearGemmVariant),
    reference: (i, s) => linearBackwardDataRef(host(i, 0), host(i, 1), s),
  },
  'linear.dw': {
    ...linearCommon,
    heuristic: (_rt, s) => chooseLinearVariant('dw', s),
    sizes: (s) => ({ inputs: [s.n * s.inFeatures, s.n * s.outFeatures], output: s.outFeatures * s.inFeatures }),
    run: (rt, i, s, v) => linearBackwardWeight(rt, at(i, 0), at(i, 1), s, v as LinearGemmVariant),
    reference: (i, s) => linearBackwardWeightRef(host(i, 0), host(i, 1), s),
  },
};

function rule<K extends KernelOp>(op: K): OpRule<K> {
  return RULES[op] as unknown as OpRule<K>;
}

/** Every version of `op`, in the launcher's order. */
export function kernelVersions(op: KernelOp): readonly string[] {
  return RULES[op].variants;
}

/** The versions of `op` that can run `shape`. */
export function applicableVersions<K extends KernelOp>(op: K, shape: KernelShapes[K]): string[] {
  const r = rule(op);
  return r.variants.filter((v) => r.applies(v, shape));
}

/**
 * The versions autotune times for `shape` on `rt`: the applicable ones, less the register-blocked
 * GEMMs ('gemm_rb*', conv2d_gemm_rb.ts) on CPU adapters — they are built for discrete GPUs, never
 * win on lavapipe's uniform-memory paths, and compiling them there costs seconds each — and less
 * '3x3_px16' (forward, dx) and '3x3_sg16' (dW) on layers narrower than 16 channels or smaller than
 * 64² (see pxTunable).
 */
export function tunedVersions<K extends KernelOp>(rt: Runtime, op: K, shape: KernelShapes[K]): string[] {
  const cpu = isCpuAdapter(rt);
  return applicableVersions(op, shape).filter((v) => !(cpu && isGemmRbVariant(v)) && ((v !== '3x3_px16' && v !== '3x3_sg16') || pxTunable(shape as Conv2dShape)));
}

/**
 * '3x3_px16' and '3x3_sg16' are timed only where they were measured (≥ 16 channels in and out, ≥ 64²). Offered on
 * every 3×3 shape, autotune chose it for most of the tiny preset's layers, and that default
 * `npm run train` (2026-12-03, commit 92cca64) trained Level 1 well (96.3% of test patches) but
 * Level 2 stalled at 50% of test images, where the heuristic kernels' run reached 100%. Not the
 * kernel's fault: '3x3_px16' gives the same bits as '3x3' (test/kernels/conv2d.test.ts; a whole
 * Level-1 step and 150 training batches too), so offering it changes no weight. That table's other
 * choices (the weight gradient 'general', '1x1' data gradient) round differently, the run diverged
 * from batch 4 by rounding, and Level 2's slow start with N(0, 0.01) linears did the rest (README,
 * "Measured"). It may be offered again for narrow layers; whether it is faster there in a whole run
 * was not measured.
 */
function pxTunable(s: Conv2dShape): boolean {
  return s.w >= 64 && Math.min(s.cIn, s.cOut) >= 16;
}

/** What the launcher runs for `shape` when the table has no entry. */
export function heuristicVersion<K extends KernelOp>(rt: Runtime, op: K, shape: KernelShapes[K]): string {
  return rule(op).heuristic(rt, shape);
}

/** What a launch of `op` on `shape` runs on `rt` now: the table's entry, else the heuristic. */
export function currentVersion<K extends KernelOp>(rt: Runtime, op: K, shape: KernelShapes[K]): string {
  return rt.kernels.lookup(op, shape) ?? heuristicVersion(rt, op, shape);
}

/** One (op, shape) to decide. */
export interface KernelRequest<K extends KernelOp = KernelOp> {
  op: K;
  shape: KernelShapes[K];
}

/**
 * Checks a table entry read from anywhere (a file, a cache): a known op, a valid shape with every
 * key field, a version of that op that runs the shape. Returns it with only the key fields;
 * throws a message that starts with `what`.
 */
export function checkKernelChoice(raw: unknown, what: string): KernelChoice {
  const c = raw as { op?: unknown; shape?: unknown; variant?: unknown };
  if (typeof c !== 'object' || c === null) throw new Error(`${what}: expected an object {op, shape, variant}`);
  if (typeof c.op !== 'string' || !(KERNEL_OPS as string[]).includes(c.op)) throw new Error(`${what}: unknown op ${JSON.stringify(c.op)} (expected one of ${KERNEL_OPS.join(', ')})`);
  const op = c.op as KernelOp;
  const shape = c.shape as Record<string, unknown>;
  if (typeof shape !== 'object' || shape === null) throw new Error(`${what}: ${op} needs a shape object`);
  for (const field of KERNEL_SHAPE_FIELDS[op] as readonly string[]) {
    if (typeof shape[field] !== 'number') throw new Error(`${what}: ${op} shape has no numeric '${field}'`);
  }
  const typed = keyShape(op, shape as unknown as KernelShapes[typeof op]);
  try {
    rule(op).validate(typed);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
  const r = rule(op);
  if (typeof c.variant !== 'string' || !r.variants.includes(c.variant)) {
    throw new Error(`${what}: ${op} has no version ${JSON.stringify(c.variant)} (versions: ${r.variants.join(', ')})`);
  }
  if (!r.applies(c.variant, typed)) throw new Error(`${what}: version '${c.variant}' of ${op} cannot run ${kernelKey(op, typed)}`);
  return { op, shape: typed, variant: c.variant };
}

/** Checks every entry and makes them `rt`'s table (replacing it); later entries for a shape win. */
export function installKernelChoices(rt: Runtime, choices: readonly KernelChoice[], what = 'kernel choices'): void {
  rt.kernels.replace(choices.map((c, i) => checkKernelChoice(c, `${what}[${i}]`)));
}

/** The heuristic's version for each request (what the launchers run with an empty table). */
export function heuristicChoices(rt: Runtime, requests: readonly KernelRequest[]): KernelChoice[] {
  return dedupe(requests).map((r) => ({ op: r.op, shape: keyShape(r.op, r.shape), variant: heuristicVersion(rt, r.op, r.shape) }) as KernelChoice);
}

function dedupe(requests: readonly KernelRequest[]): KernelRequest[] {
  const seen = new Map<string, KernelRequest>();
  for (const r of requests) {
    const key = kernelKey(r.op, r.shape);
    if (!seen.has(key)) seen.set(key, r);
  }
  return [...seen.values()];
}

// ---- autotune ------------------------------------------------------------------------------------

/** A measured choice: per version, its median ms per launch, or why it was not timed. */
export interface TunedChoice extends KernelChoice {
  timings: Record<string, number | string>;
}

export interface AutotuneOptions {
  /** Timed samples per version (default 5; 3 when one launch takes over 250 ms). */
  reps?: number;
  /** Keep the heuristic's version unless another is faster by more than this fraction (default 0.05). */
  margin?: number;
  /** One line per decided shape. */
  log?: (message: string) => void;
  /** Called after each shape is decided (e.g. to write a cache as it goes). */
  onChoice?: (choice: TunedChoice) => void;
}

/** Deterministic values in [-1, 1) (mulberry32). */
function scratch(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  }
  return out;
}

/** Null when `got` is within atol + rtol·|ref| of `ref` (atol relative to the largest |ref|), else why not. */
export function mismatch(got: ArrayLike<number>, ref: ArrayLike<number>, rtol = 1e-3): string | null {
  if (got.length !== ref.length) return `length ${got.length} ≠ ${ref.length}`;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i] as number));
  const atol = rtol * scale + 1e-6;
  let bad = 0;
  let first = -1;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs((got[i] as number) - (ref[i] as number));
    if (!(err <= atol + rtol * Math.abs(ref[i] as number))) {
      bad++;
      if (first < 0) first = i;
    }
  }
  return bad === 0 ? null : `${bad} of ${ref.length} values differ (first [${first}]: ${got[first]} vs ${ref[first]})`;
}

const MIN_SAMPLE_MS = 5;

/**
 * Median ms per launch over `reps` samples (each ≥ MIN_SAMPLE_MS of back-to-back launches); a first
 * launch slower than `giveUpMs` ends it early. Dawn polls back to back here (dawn_ticks.ts): a
 * throttled poll would add up to 1 ms to every sample.
 */
function timeVersion(rt: Runtime, launch: () => GPUBuffer, reps: number, giveUpMs: number): Promise<number> {
  return withDawnSpinning(() => timeVersionSpinning(rt, launch, reps, giveUpMs));
}

async function timeVersionSpinning(rt: Runtime, launch: () => GPUBuffer, reps: number, giveUpMs: number): Promise<number> {
  await rt.sync();
  const t0 = performance.now();
  rt.release(launch());
  await rt.sync();
  const first = performance.now() - t0;
  if (first > giveUpMs) return first;
  const launches = Math.min(64, Math.max(1, Math.ceil(MIN_SAMPLE_MS / Math.max(first, 1e-3))));
  const samples = [first];
  for (let r = 1; r < (first > 250 ? Math.min(reps, 3) : reps); r++) {
    const start = performance.now();
    for (let k = 0; k < launches; k++) rt.release(launch());
    await rt.sync();
    samples.push((performance.now() - start) / launches);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

/** Runs `variant` on `inputs` and reads the output back; releases it. */
async function runAndRead<K extends KernelOp>(rt: Runtime, op: K, inputs: readonly GPUBuffer[], s: KernelShapes[K], variant: string): Promise<Float32Array> {
  const out = rule(op).run(rt, inputs, s, variant);
  try {
    return await rt.readF32(out, rule(op).sizes(s).output);
  } finally {
    rt.release(out);
  }
}

/**
 * Decides each request by measurement on `rt` (duplicates decided once) and returns the choices
 * with their timings. Does not install them: see installKernelChoices. Scratch buffers are released
 * and the pool's free buffers trimmed at the end.
 */
export async function autotune(rt: Runtime, requests: readonly KernelRequest[], options: AutotuneOptions = {}): Promise<TunedChoice[]> {
  const reps = options.reps ?? 5;
  const margin = options.margin ?? 0.05;
  const reducedVerdicts = new Map<string, string | null>();
  const out: TunedChoice[] = [];
  for (const request of dedupe(requests)) {
    const choice = await tuneOne(rt, request, reps, margin, reducedVerdicts);
    out.push(choice);
    options.log?.(`autotune ${kernelKey(choice.op, choice.shape)}: ${choice.variant} (${formatTimings(choice.timings)})`);
    options.onChoice?.(choice);
  }
  await rt.sync();
  rt.pool.trim();
  return out;
}

/** e.g. `3x3 1.200 ms, gemm 4.100 ms, 1x1_narrow rejected: …` */
export function formatTimings(timings: Record<string, number | string>): string {
  return Object.entries(timings).map(([v, t]) => `${v} ${typeof t === 'number' ? `${t.toFixed(3)} ms` : t}`).join(', ');
}

async function tuneOne<K extends KernelOp>(rt: Runtime, request: KernelRequest<K>, reps: number, margin: number, reducedVerdicts: Map<string, string | null>): Promise<TunedChoice> {
  const { op } = request;
  const s = keyShape(op, request.shape);
  const r = rule(op);
  const heuristic = r.heuristic(rt, s);
  const versions = [heuristic, ...tunedVersions(rt, op, s).filter((v) => v !== heuristic)];
  const timings: Record<string, number | string> = {};
  const done = (variant: string): TunedChoice => ({ op, shape: s, variant, timings }) as TunedChoice;
  if (versions.length === 1) {
    timings[heuristic] = 'only version';
    return done(heuristic);
  }
  const sizes = r.sizes(s);
  const inputs = sizes.inputs.map((n, i) => rt.upload(scratch(n, 7 + i), `autotune input ${i}`));
  try {
    let reference: Float32Array;
    try {
      reference = await runAndRead(rt, op, inputs, s, heuristic);
    } catch (e) {
      timings[heuristic] = `error: ${(e as Error).message}`;
      return done(heuristic);
    }
    // The heuristic's output is the reference on the full shape only if it agrees with the CPU on the reduced one.
    const trusted = (await checkReduced(rt, op, s, heuristic, reducedVerdicts)) === null;
    let best = Infinity;
    for (const variant of versions) {
      try {
        const got = variant === heuristic ? reference : await runAndRead(rt, op, inputs, s, variant);
        const why = (variant !== heuristic && trusted ? mismatch(got, reference) : null) ?? (await checkReduced(rt, op, s, variant, reducedVerdicts));
        if (why) {
          timings[variant] = `rejected: ${why}`;
          continue;
        }
        const ms = await timeVersion(rt, () => r.run(rt, inputs, s, variant), reps, 3 * best);
        timings[variant] = ms;
        best = Math.min(best, ms);
      } catch (e) {
        timings[variant] = `error: ${(e as Error).message}`;
        await rt.sync().catch(() => {});
      }
    }
    const timed = versions.filter((v) => typeof timings[v] === 'number');
    if (timed.length === 0) return done(heuristic);
    const fastest = timed.reduce((a, b) => ((timings[b] as number) < (timings[a] as number) ? b : a));
    const keep = typeof timings[heuristic] === 'number' && (timings[heuristic] as number) <= (timings[fastest] as number) * (1 + margin);
    return done(keep ? heuristic : fastest);
  } finally {
    inputs.forEach((b) => rt.release(b));
  }
}

/** `variant` on the reduced shape against the float64 reference: null when it agrees (memoised). */
async function checkReduced<K extends KernelOp>(rt: Runtime, op: K, s: KernelShapes[K], variant: string, verdicts: Map<string, string | null>): Promise<string | null> {
  const r = rule(op);
  const small = r.reduced(s);
  try {
    r.validate(small);
  } catch {
    return null; // no smaller valid shape: the full-shape comparison stands alone
  }
  const key = `${kernelKey(op, small)} ${variant}`;
  const known = verdicts.get(key);
  if (known !== undefined) return known;
  const hostInputs = r.sizes(small).inputs.map((n, i) => scratch(n, 101 + i));
  const inputs = hostInputs.map((a) => rt.upload(a));
  try {
    let verdict: string | null;
    try {
      const why = mismatch(await runAndRead(rt, op, inputs, small, variant), r.reference(hostInputs, small));
      verdict = why ? `differs from the CPU reference on ${kernelKey(op, small)}: ${why}` : null;
    } catch (e) {
      verdict = `fails on ${kernelKey(op, small)}: ${(e as Error).message}`;
      await rt.sync().catch(() => {});
    }
    verdicts.set(key, verdict);
    return verdict;
  } finally {
    inputs.forEach((b) => rt.release(b));
  }
}

// ---- the file format -----------------------------------------------------------------------------

export const KERNELS_FILE_FORMAT = 'lungpath-kernels-1';

/** RUN/kernels.json, a `--kernels FILE.json`, and the disk cache: a table plus where it came from. */
export interface KernelChoicesFile {
  format: typeof KERNELS_FILE_FORMAT;
  /** KERNEL_SET_VERSION and a hash of the WGSL sources (src/train computes it). */
  kernelSet: string;
  adapter: Pick<AdapterReport, 'vendor' | 'architecture' | 'device' | 'description'>;
  /** How the table was made: autotune, heuristic, a file's path. */
  mode: string;
  choices: (KernelChoice & { timings?: Record<string, number | string> })[];
}

/** The adapter fields a table is tied to. */
export function adapterIdentity(a: AdapterReport): KernelChoicesFile['adapter'] {
  return { vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description };
}

/**
 * Parses a kernels file; throws a message that starts with `what`. Only `choices` is required (a
 * hand-written file may omit the rest); every entry is checked (checkKernelChoice).
 */
export function parseKernelChoicesFile(text: string, what: string): KernelChoicesFile {
  let raw: Partial<KernelChoicesFile>;
  try {
    raw = JSON.parse(text) as Partial<KernelChoicesFile>;
  } catch (e) {
    throw new Error(`${what}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || !Array.isArray(raw.choices)) throw new Error(`${what}: expected a JSON object with a "choices" array`);
  if (raw.format !== undefined && raw.format !== KERNELS_FILE_FORMAT) throw new Error(`${what}: format ${JSON.stringify(raw.format)} is not ${KERNELS_FILE_FORMAT}`);
  const choices = raw.choices.map((c, i) => {
    const checked = checkKernelChoice(c, `${what}: choices[${i}]`);
    const timings = (c as { timings?: unknown }).timings;
    return typeof timings === 'object' && timings !== null ? { ...checked, timings: timings as Record<string, number | string> } : checked;
  });
  const adapter = raw.adapter ?? { vendor: '', architecture: '', device: '', description: '' };
  return { format: KERNELS_FILE_FORMAT, kernelSet: typeof raw.kernelSet === 'string' ? raw.kernelSet : '', adapter, mode: typeof raw.mode === 'string' ? raw.mode : 'file', choices };
}

/** The file's text (pretty JSON, one choice per line, newline at the end). */
export function formatKernelChoicesFile(file: KernelChoicesFile): string {
  const { choices, ...head } = file;
  const lines = choices.map((c) => `    ${JSON.stringify(c)}`);
  const top = JSON.stringify(head, null, 2).slice(0, -2);
  return `${top},\n  "choices": [${lines.length ? `\n${lines.join(',\n')}\n  ` : ''}]\n}\n`;
}
