/**
 * Property-based fuzzing (fast-check) of the safetensors reader, src/nn/safetensors.ts, and of the
 * paths that load weights through it (weights.ts loadWeights, classify.ts orderModelFiles and
 * loadModel, checkpoint.ts readCheckpoint).
 *
 * The property, for every input: parseSafetensors either returns a file that is consistent with the
 * bytes (checked here from the bytes alone: every header entry is there, each tensor's bytes are a
 * view inside the file's data section of exactly shape·dtype bytes, the tensors tile that section,
 * the metadata is strings) or throws a SafetensorsError whose message starts with the file's name
 * and is at most MAX_MESSAGE characters after it. Never another exception, never a hang.
 *
 * Caps (stated in safetensors.ts too), checked on every case: a parse of these few-KB inputs takes
 * under PARSE_BUDGET_MS and grows process.memoryUsage().arrayBuffers by under ARRAY_BUFFER_SLACK
 * bytes (the reader allocates no ArrayBuffer: tensors are views, not copies); the header is at most
 * MAX_HEADER_BYTES (1 MiB), and the costliest 1 MiB headers parse in a child process whose heap
 * is capped at 64 MiB (worst_headers.ts).
 *
 * Inputs: valid files (round trip), every prefix of a valid file, valid files with bytes appended,
 * headers built from hostile parts (unknown and prototype-key dtypes, negative, fractional, huge and
 * overflowing shapes and offsets, nested and non-array shapes, overlapping and gapped offsets,
 * metadata of wrong types), hostile header-length fields (2^53, 2^64-1, …), byte edits of valid
 * files, and random bytes. Runs: fixed seeds, see fuzz.ts for LUNGPATH_FUZZ_RUNS.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/kernels/runtime.ts';
import { loadModel, orderModelFiles, type ModelFile } from '../../src/nn/classify.ts';
import { TINY_CONFIG } from '../../src/nn/config.ts';
import { buildImageNetwork, type TwoPartNetwork } from '../../src/nn/networks.ts';
import { Adam } from '../../src/nn/optim.ts';
import { MAX_HEADER_BYTES, parseSafetensors, SafetensorsError, serializeSafetensors, type Dtype, type SafetensorsFile, type TensorToWrite } from '../../src/nn/safetensors.ts';
import { loadWeightsFromBytes, weightsToSafetensors } from '../../src/nn/weights.ts';
import { readCheckpoint, saveCheckpoint, type CheckpointState } from '../../src/train/checkpoint.ts';
import { gpu } from '../helpers/gpu.ts';
import { applyEdits, byteEdits, fuzzParameters, fuzzTimeout, Tally } from './fuzz.ts';

const NAME = 'fuzzed/model.safetensors';
const MAX_MESSAGE = 400;
const PARSE_BUDGET_MS = 250;
const ARRAY_BUFFER_SLACK = 1024;

const DTYPE_BYTES: Record<Dtype, number> = { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1 };
const DTYPES = Object.keys(DTYPE_BYTES) as Dtype[];

// ---- the oracle ------------------------------------------------------------------------------

/** Checks, from the bytes alone, that `file` is what they hold. */
function expectConsistent(bytes: Uint8Array, file: SafetensorsFile): void {
  const headerEnd = 8 + Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, headerEnd))) as Record<string, { data_offsets: unknown }>;
  const dataBytes = bytes.length - headerEnd;
  expect([...file.tensors.keys()].sort()).toEqual(Object.keys(header).filter((k) => k !== '__metadata__').sort());
  const ranges: [number, number][] = [];
  for (const [name, t] of file.tensors) {
    expect(DTYPES).toContain(t.dtype);
    expect(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0), `shape ${t.shape}`).toBe(true);
    expect(t.data.buffer, 'tensor data is a view into the file, not a copy').toBe(bytes.buffer);
    const begin = t.data.byteOffset - bytes.byteOffset - headerEnd;
    const end = begin + t.data.byteLength;
    expect(begin >= 0 && end <= dataBytes, `tensor '${name}' at [${begin}, ${end}) of ${dataBytes} data bytes`).toBe(true);
    expect(header[name]?.data_offsets).toEqual([begin, end]);
    expect(BigInt(t.data.byteLength)).toBe(t.shape.reduce((a, d) => a * BigInt(d), BigInt(DTYPE_BYTES[t.dtype])));
    ranges.push([begin, end]);
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let covered = 0;
  for (const [begin, end] of ranges) {
    expect(begin, 'tensors tile the data section').toBe(covered);
    covered = end;
  }
  expect(covered, 'every data byte belongs to a tensor').toBe(dataBytes);
  for (const v of Object.values(file.metadata)) expect(typeof v).toBe('string');
}

/** One timed parse: the file or the error, how long it took, and the ArrayBuffer bytes it added. */
function timedParse(bytes: Uint8Array): { file?: SafetensorsFile; error?: unknown; ms: number; grown: number } {
  const arrayBuffers = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  try {
    const file = parseSafetensors(bytes, NAME);
    return { file, ms: performance.now() - start, grown: process.memoryUsage().arrayBuffers - arrayBuffers };
  } catch (error) {
    return { error, ms: performance.now() - start, grown: process.memoryUsage().arrayBuffers - arrayBuffers };
  }
}

/** Parses `bytes` and checks the property; returns whether it parsed. */
function outcome(bytes: Uint8Array, tally: Tally): boolean {
  let parsed = timedParse(bytes);
  // A hang is slow every time; a garbage collection or a busy machine only once.
  if (parsed.ms >= PARSE_BUDGET_MS) parsed = timedParse(bytes);
  const { file, error, ms, grown } = parsed;
  expect(ms, 'parse time (ms), twice').toBeLessThan(PARSE_BUDGET_MS);
  expect(grown, 'ArrayBuffer bytes allocated by the parse').toBeLessThan(ARRAY_BUFFER_SLACK);
  tally.add(file !== undefined, ms);
  if (file) {
    expectConsistent(bytes, file);
    return true;
  }
  expect(error, `threw ${String(error)}`).toBeInstanceOf(SafetensorsError);
  const message = (error as Error).message;
  expect(message.startsWith(`${NAME}: `), message).toBe(true);
  expect(message.length - NAME.length, message.slice(0, 200)).toBeLessThanOrEqual(MAX_MESSAGE);
  expect(message, 'a message saying NaN names no problem').not.toMatch(/\bNaN\b/);
  return false;
}

// ---- generators ------------------------------------------------------------------------------

interface ValidFile {
  tensors: TensorToWrite[];
  metadata: Record<string, string>;
}

/** Deterministic bytes for a tensor (the content does not matter to the reader). */
function filler(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 131 + seed * 7) & 255);
}

const tensorName = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('toString', '__proto__', 'constructor')).filter((n) => n !== '__metadata__');
const validFile: fc.Arbitrary<ValidFile> = fc
  .record({
    specs: fc.uniqueArray(fc.record({ name: tensorName, dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.nat(3), { maxLength: 4 }) }), { selector: (t) => t.name, maxLength: 6 }),
    metadata: fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 16 }), { maxKeys: 3 }),
  })
  .map(({ specs, metadata }) => ({
    tensors: specs.map((s, i) => ({ ...s, data: filler(s.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[s.dtype], i) })),
    metadata,
  }));

const serialize = (f: ValidFile) => serializeSafetensors(f.tensors, f.metadata);

/** Numbers no dimension or offset may be: negative, fractional, unsafe or beyond 2^64. */
const badNumber = fc.oneof(fc.constantFrom(-1, -0.5, 0.5, 1.5, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e308, -1e308, 1e-300), fc.double({ noNaN: true, noDefaultInfinity: true }));
const notANumber = fc.oneof(fc.string({ maxLength: 4 }), fc.constant(null), fc.boolean(), fc.constant([]), fc.constant([1]), fc.constant({}));
const dimension = fc.oneof(
  { weight: 8, arbitrary: fc.nat(4) },
  { weight: 2, arbitrary: fc.constantFrom(2 ** 20, 2 ** 26, 2 ** 32, 2 ** 40, 2 ** 52, 2 ** 53 - 1) },
  { weight: 1, arbitrary: badNumber },
  { weight: 1, arbitrary: notANumber },
);
/** Stands for an array nested this deep; spliced into the JSON text (JSON.stringify would overflow). */
const DEEP = '\u0000deep:';
const shape = fc.oneof(
  { weight: 10, arbitrary: fc.array(dimension, { maxLength: 5 }) },
  // Products past 2^53, and past a double (26+ dimensions of 2^40 or more), some with a zero
  // dimension: zero elements, though a plain product gives Infinity·0 = NaN.
  { weight: 2, arbitrary: fc.array(fc.constantFrom(2 ** 53 - 1, 2 ** 40, 2 ** 31), { minLength: 2, maxLength: 8 }) },
  { weight: 2, arbitrary: fc.tuple(fc.array(fc.constantFrom(2 ** 53 - 1, 2 ** 40), { minLength: 26, maxLength: 40 }), fc.boolean()).chain(([s, zero]) => fc.nat(s.length).map((i) => (zero ? [...s.slice(0, i), 0, ...s.slice(i)] : s))) },
  { weight: 1, arbitrary: fc.array(fc.constant(1), { minLength: 100, maxLength: 3000 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20000 }).map((d) => `${DEEP}${d}`) },
);
const dtype = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom<unknown>(...DTYPES) },
  { weight: 3, arbitrary: fc.constantFrom<unknown>('constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'f32', 'F32 ', 'Q8', '') },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) },
);
/** How an entry's data_offsets are derived from where an honest writer would put it. */
const offsetsEdit = fc.oneof(
  { weight: 12, arbitrary: fc.constant<unknown>('honest') },
  { weight: 3, arbitrary: fc.record({ begin: fc.integer({ min: -8, max: 8 }), end: fc.integer({ min: -8, max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant<unknown>('previous') },
  { weight: 1, arbitrary: fc.constant<unknown>('swapped') },
  { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.nat(64), badNumber), fc.oneof(fc.nat(64), badNumber)) },
  { weight: 1, arbitrary: fc.oneof(fc.array(fc.nat(64), { maxLength: 4 }), notANumber, fc.jsonValue({ maxDepth: 1 })) },
);
const entryForm = fc.constantFrom('entry', 'entry', 'entry', 'entry', 'entry', 'entry', 'no dtype', 'no shape', 'no offsets', 'null', 'number', 'string', 'array');
const metadataValue = fc.oneof(
  { weight: 4, arbitrary: fc.constant<unknown>(undefined) },
  { weight: 4, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 12 }), { maxKeys: 4 }) },
  { weight: 2, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
);
/** The u64 header-length field: honest, a little off, or hostile. */
const lengthField = fc.oneof(
  { weight: 12, arbitrary: fc.constant<bigint | number>(0) },
  { weight: 2, arbitrary: fc.integer({ min: -16, max: 16 }) },
  { weight: 1, arbitrary: fc.constantFrom<bigint | number>(0n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(MAX_HEADER_BYTES), BigInt(MAX_HEADER_BYTES) + 1n, 2n ** 32n) },
  { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) },
);

interface HostilePlan {
  entries: { name: string; dtype: unknown; shape: unknown; offsets: unknown; form: string }[];
  metadata: unknown;
  extraData: number;
  length: bigint | number;
}

const hostilePlan: fc.Arbitrary<HostilePlan> = fc.record({
  entries: fc.array(fc.record({ name: fc.oneof({ weight: 9, arbitrary: fc.string({ maxLength: 6 }) }, { weight: 1, arbitrary: fc.constant('__metadata__') }), dtype, shape, offsets: offsetsEdit, form: entryForm }), { maxLength: 5 }),
  metadata: metadataValue,
  extraData: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: -8, max: 8 }) }, { weight: 1, arbitrary: fc.nat(512) }),
  length: lengthField,
});

/** The bytes of a plan: entries laid out as an honest writer would, then disturbed as planned. */
function buildHostile(plan: HostilePlan): Uint8Array {
  const header: Record<string, unknown> = {};
  if (plan.metadata !== undefined) header.__metadata__ = plan.metadata;
  let at = 0;
  let previous: [number, number] = [0, 0];
  for (const e of plan.entries) {
    const dims = Array.isArray(e.shape) ? (e.shape as unknown[]) : [];
    const size = typeof e.dtype === 'string' && Object.hasOwn(DTYPE_BYTES, e.dtype) ? DTYPE_BYTES[e.dtype as Dtype] : 4;
    const product = dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) ? dims.reduce<bigint>((a, d) => a * BigInt(d as number), BigInt(size)) : 4n;
    const bytes = product <= 4096n ? Number(product) : 4;
    const honest: [number, number] = [at, at + bytes];
    const o = e.offsets;
    const offsets =
      o === 'honest' ? honest
      : o === 'previous' ? previous
      : o === 'swapped' ? [honest[1], honest[0]]
      : typeof o === 'object' && o !== null && 'begin' in o ? [honest[0] + (o as { begin: number; end: number }).begin, honest[1] + (o as { begin: number; end: number }).end]
      : o;
    at = honest[1];
    previous = honest;
    const entry: Record<string, unknown> = { dtype: e.dtype, shape: e.shape, data_offsets: offsets };
    if (e.form === 'no dtype') delete entry.dtype;
    if (e.form === 'no shape') delete entry.shape;
    if (e.form === 'no offsets') delete entry.data_offsets;
    const forms: Record<string, unknown> = { null: null, number: 7, string: 'F32', array: [entry] };
    header[e.name] = e.form in forms ? forms[e.form] : entry;
  }
  const text = JSON.stringify(header).replace(/"\\u0000deep:(\d+)"/g, (_, d: string) => '['.repeat(Number(d)) + ']'.repeat(Number(d)));
  const json = new TextEncoder().encode(text);
  const dataBytes = Math.max(0, at + plan.extraData);
  const out = new Uint8Array(8 + json.length + dataBytes);
  const length = typeof plan.length === 'bigint' ? plan.length : BigInt(Math.max(0, json.length + plan.length));
  new DataView(out.buffer).setBigUint64(0, length, true);
  out.set(json, 8);
  out.set(filler(dataBytes, 1), 8 + json.length);
  return out;
}

// ---- the reader ------------------------------------------------------------------------------

describe('parseSafetensors on hostile input', () => {
  it('reads back every valid file exactly', () => {
    const tally = new Tally('safetensors valid files');
    fc.assert(
      fc.property(validFile, (f) => {
        const bytes = serialize(f);
        expect(outcome(bytes, tally)).toBe(true);
        const file = parseSafetensors(bytes, NAME);
        expect(file.metadata).toEqual(f.metadata);
        for (const t of f.tensors) {
          const got = file.tensors.get(t.name);
          expect([got?.dtype, got?.shape]).toEqual([t.dtype, t.shape]);
          expect(Buffer.from(got?.data ?? []).equals(Buffer.from(t.data as Uint8Array))).toBe(true);
        }
      }),
      fuzzParameters(101, 200),
    );
    tally.report();
  });

  it('refuses every truncation (each prefix length) and every file with bytes appended', () => {
    const tally = new Tally('safetensors prefixes and appends');
    fc.assert(
      fc.property(validFile, fc.uint8Array({ minLength: 1, maxLength: 16 }), (f, tail) => {
        const bytes = serialize(f);
        for (let n = 0; n < bytes.length; n++) expect(outcome(bytes.subarray(0, n), tally), `prefix of ${n} of ${bytes.length} bytes`).toBe(false);
        const longer = new Uint8Array(bytes.length + tail.length);
        longer.set(bytes);
        longer.set(tail, bytes.length);
        expect(outcome(longer, tally), 'trailing bytes').toBe(false);
      }),
      fuzzParameters(102, 50),
    );
    tally.report();
  });

  it('headers built from hostile parts: consistent or a SafetensorsError naming the file', () => {
    const tally = new Tally('safetensors hostile headers');
    fc.assert(
      fc.property(hostilePlan, (plan) => {
        outcome(buildHostile(plan), tally);
      }),
      fuzzParameters(103, 3000),
    );
    tally.report();
    // The generator reaches both sides of every check, so the oracle is exercised too.
    expect(tally.accepted).toBeGreaterThan(tally.cases / 20);
    expect(tally.refused).toBeGreaterThan(tally.cases / 2);
  });

  it.each<[string, bigint]>([
    ['2^53', 2n ** 53n],
    ['2^64 - 1', 2n ** 64n - 1n],
    ['2^63', 2n ** 63n],
    ['MAX_HEADER_BYTES + 1', BigInt(MAX_HEADER_BYTES) + 1n],
    ['the file length', -1n],
    ['one past the file', -2n],
  ])('refuses a header length of %s, naming the file and the problem', (_, field) => {
    const bytes = serialize({ tensors: [{ name: 'w', dtype: 'F32', shape: [2], data: new Float32Array(2) }], metadata: {} });
    new DataView(bytes.buffer).setBigUint64(0, field === -1n ? BigInt(bytes.length) : field === -2n ? BigInt(bytes.length - 7) : field, true);
    expect(outcome(bytes, new Tally('length'))).toBe(false);
    expect(() => parseSafetensors(bytes, NAME)).toThrow(/^fuzzed\/model\.safetensors: header length \d+ (exceeds the 1048576-byte limit|runs past the end)/);
  });

  it('byte edits of valid files', () => {
    const tally = new Tally('safetensors byte edits');
    fc.assert(
      fc.property(validFile, byteEdits(160), (f, edits) => {
        outcome(applyEdits(serialize(f), edits), tally);
      }),
      fuzzParameters(104, 3000),
    );
    tally.report();
    expect(tally.accepted).toBeGreaterThan(0);
  });

  it('random bytes, and random text as a header', () => {
    const tally = new Tally('safetensors random bytes');
    const header = fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.json({ maxDepth: 3 }), fc.uint8Array({ maxLength: 200 }));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), header, fc.uint8Array({ maxLength: 64 }), (random, text, data) => {
        outcome(random, tally);
        const json = typeof text === 'string' ? new TextEncoder().encode(text) : text;
        const bytes = new Uint8Array(8 + json.length + data.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
        bytes.set(json, 8);
        bytes.set(data, 8 + json.length);
        outcome(bytes, tally);
      }),
      fuzzParameters(105, 1000),
    );
    tally.report();
  });

  it('the costliest headers at the 1 MiB cap parse in a process capped at 64 MiB of heap, quickly', () => {
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const child = spawnSync(process.execPath, ['--max-old-space-size=64', '--import', 'tsx', join(repo, 'test/fuzz/worst_headers.ts')], { cwd: repo, encoding: 'utf8' });
    expect(child.status, child.stderr.slice(-2000)).toBe(0);
    const results = child.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; bytes: number; ms: number; message: string | null });
    expect(results.length).toBe(8);
    for (const r of results) {
      expect(r.bytes, r.kind).toBeGreaterThan(MAX_HEADER_BYTES * 0.99);
      expect(r.ms, r.kind).toBeLessThan(2000);
      if (r.message !== null) expect(r.message, r.kind).toMatch(/^worst\.safetensors: .{1,400}$/);
    }
  });
});

// ---- the paths that load weights -------------------------------------------------------------

describe('loading weights from hostile files', () => {
  let rt: Runtime;
  let net: TwoPartNetwork;
  let weights: Uint8Array;
  let modelFiles: [ModelFile, ModelFile];
  const dir = mkdtempSync(join(tmpdir(), 'lungpath-fuzz-'));
  afterAll(() => {
    net?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeAll(async () => {
    rt = await gpu();
    net = buildImageNetwork(rt, TINY_CONFIG, 0);
    weights = await weightsToSafetensors(net, { config: JSON.stringify(TINY_CONFIG), level: 'level2' });
    // The PyTorch fixtures, given the `level` metadata lungpath train writes.
    modelFiles = (['level1', 'level2'] as const).map((level) => {
      const parsed = parseSafetensors(new Uint8Array(readFileSync(`test/fixtures/tiny-${level}-torch-state.safetensors`)));
      const tensors = [...parsed.tensors].map(([name, t]) => ({ name, ...t }));
      return { name: `${level}.safetensors`, bytes: serializeSafetensors(tensors, { ...parsed.metadata, level }) };
    }) as [ModelFile, ModelFile];
  });

  const named = (e: unknown, name: string) => {
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message, String(e)).toContain(name);
  };

  it('loadWeights: the weights load, or an Error names the file', async () => {
    const tally = new Tally('loadWeights byte edits');
    await fc.assert(
      fc.asyncProperty(byteEdits(6000, 4), async (edits) => {
        const start = performance.now();
        let loaded = false;
        try {
          loadWeightsFromBytes(net, applyEdits(weights, edits), NAME);
          await rt.sync();
          loaded = true;
        } catch (e) {
          named(e, NAME);
        }
        tally.add(loaded, performance.now() - start);
      }),
      fuzzParameters(201, 300),
    );
    tally.report();
    expect(tally.accepted).toBeGreaterThan(0);
  }, fuzzTimeout(60_000));

  it('orderModelFiles and loadModel: a model, or an Error naming the edited file', async () => {
    const tally = new Tally('loadModel byte edits');
    // One edit per case; the next test covers a config edited into a huge network.
    await fc.assert(
      fc.asyncProperty(fc.nat(1), byteEdits(9000, 1), async (which, edits) => {
        const files = modelFiles.map((f, i) => (i === which ? { ...f, bytes: applyEdits(f.bytes, edits) } : f));
        const edited = (files[which] as ModelFile).name;
        const start = performance.now();
        let loaded = false;
        try {
          const [first, second] = orderModelFiles(files);
          (await loadModel(rt, first, second)).destroy();
          loaded = true;
        } catch (e) {
          named(e, edited);
        }
        tally.add(loaded, performance.now() - start);
      }),
      fuzzParameters(202, 300),
    );
    tally.report();
    expect(tally.accepted).toBeGreaterThan(0);
  }, fuzzTimeout(60_000));

  it('loadModel refuses a config far larger than the file before building anything', async () => {
    // Level-1 widths of 1024 (≈ 60 M floats) in a 77 KB file's metadata: refused on sizes alone.
    const huge = { ...TINY_CONFIG, level1: { ...TINY_CONFIG.level1, widths: [1024, 1024, 1024, 1024, 1024] } };
    const withConfig = modelFiles.map((f) => {
      const parsed = parseSafetensors(f.bytes, f.name);
      const tensors = [...parsed.tensors].map(([name, t]) => ({ name, ...t }));
      return { name: f.name, bytes: serializeSafetensors(tensors, { ...parsed.metadata, config: JSON.stringify(huge) }) };
    });
    const before = rt.poolStats().allocatedBytes;
    const start = performance.now();
    await expect(loadModel(rt, withConfig[0]!, withConfig[1]!)).rejects.toThrow(/^level1\.safetensors: holds \d+ float values, but the network its config describes has \d+/);
    expect(performance.now() - start).toBeLessThan(500);
    expect(rt.poolStats().allocatedBytes).toBe(before);
  });

  it('readCheckpoint: a byte edit anywhere is refused naming the file, or changes nothing', async () => {
    const adam = new Adam(net.parameters(), { lr: 1e-3 });
    const state: CheckpointState = { epoch: 3, batch: 5, optimizerStep: 42, lr: 0.00125, rng: [1, 2, 3], extra: { best: { accuracy: 0.5 }, level1: 'ab12' } };
    const saved = await saveCheckpoint(join(dir, 'checkpoints'), 'level2', net, adam, state, TINY_CONFIG);
    adam.destroy();
    const original = readCheckpoint(saved);
    const bytes = new Uint8Array(readFileSync(saved));
    const headerBytes = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const path = join(dir, 'edited.safetensors');
    const tally = new Tally('readCheckpoint byte edits');
    fc.assert(
      fc.property(byteEdits(headerBytes), (edits) => {
        writeFileSync(path, applyEdits(bytes, edits));
        const start = performance.now();
        let read: ReturnType<typeof readCheckpoint> | undefined;
        try {
          read = readCheckpoint(path);
        } catch (e) {
          named(e, path);
        }
        tally.add(read !== undefined, performance.now() - start);
        if (!read) return;
        expect(read.state).toEqual(original.state);
        expect(read.file.metadata).toEqual(original.file.metadata);
        expect([...read.file.tensors.keys()]).toEqual([...original.file.tensors.keys()]);
        for (const [name, t] of read.file.tensors) {
          const o = original.file.tensors.get(name);
          expect([t.dtype, t.shape]).toEqual([o?.dtype, o?.shape]);
          expect(Buffer.from(t.data).equals(Buffer.from(o?.data ?? [])), name).toBe(true);
        }
      }),
      fuzzParameters(203, 500),
    );
    tally.report();
  }, fuzzTimeout(60_000));

  it('readCheckpoint: a well-checksummed (format 1) file with any state JSON is refused naming the file, or its state is usable', () => {
    const original = parseSafetensors(weights);
    const tensors = [...original.tensors].map(([name, t]) => ({ name, ...t }));
    const sha256 = createHash('sha256');
    for (const t of tensors) sha256.update(t.data);
    const digest = sha256.digest('hex');
    const path = join(dir, 'format1.safetensors');
    const write = (state: string) => writeFileSync(path, serializeSafetensors(tensors, { format: 'lungpath-checkpoint-1', level: 'level2', state, sha256: digest }));
    write(JSON.stringify({ epoch: 1, optimizerStep: 2, lr: 0.1, rng: [], extra: {} }));
    expect(readCheckpoint(path).state.epoch).toBe(1);

    // A valid state with some fields replaced (or dropped: undefined vanishes in JSON), or any JSON, or text.
    const valid = { epoch: 1, batch: 0, optimizerStep: 2, lr: 0.1, rng: [7], extra: { best: null } };
    const field = fc.oneof(fc.nat(5), fc.double(), fc.string({ maxLength: 3 }), fc.constant(null), fc.constant(undefined), fc.array(fc.nat(3), { maxLength: 2 }), fc.constant({}));
    const stateText = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(fc.subarray(Object.keys(valid)), fc.array(field, { minLength: 6, maxLength: 6 })).map(([keys, values]) => JSON.stringify({ ...valid, ...Object.fromEntries(keys.map((k, i) => [k, values[i]])) })) },
      { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
      { weight: 1, arbitrary: fc.string({ maxLength: 20 }).filter((s) => s !== '') },
    );
    const tally = new Tally('readCheckpoint state JSON');
    fc.assert(
      fc.property(stateText, (text) => {
        write(text);
        let state: CheckpointState | undefined;
        try {
          state = readCheckpoint(path).state;
        } catch (e) {
          named(e, path);
        }
        tally.add(state !== undefined, 0);
        if (!state) return;
        for (const count of [state.epoch, state.optimizerStep, state.batch ?? 0]) expect(Number.isSafeInteger(count) && count >= 0).toBe(true);
        expect(Number.isFinite(state.lr) && state.lr >= 0).toBe(true);
        expect(Array.isArray(state.rng) && state.rng.every((w) => typeof w === 'number')).toBe(true);
        expect(typeof state.extra === 'object' && state.extra !== null && !Array.isArray(state.extra)).toBe(true);
      }),
      fuzzParameters(204, 300),
    );
    tally.report();
    expect(tally.accepted).toBeGreaterThan(0);
  });
});
