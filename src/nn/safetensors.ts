/**
 * The safetensors format (huggingface/safetensors): u64 little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`, then the
 * raw little-endian tensor bytes. Pure functions over bytes, so Node and the browser share them.
 * The parser trusts nothing: every length, offset, dtype and shape is checked against the file, and
 * (as the reference Rust reader) the tensors must tile the data section exactly, with no gaps.
 *
 * Cost caps for hostile files (test/fuzz/safetensors.fuzz.test.ts checks them): the header is at
 * most MAX_HEADER_BYTES (1 MiB) and never longer than the file; parsing allocates no ArrayBuffer
 * (every tensor's `data` is a view into `bytes`, none is copied), only the header's string and JSON,
 * linear in its length (the costliest 1 MiB headers we know parse in a whole Node process capped at
 * 64 MiB of heap, in under 200 ms); error messages are a few hundred characters at most, whatever
 * the file holds. Every failure is a SafetensorsError whose message starts `<source>: `.
 */

export type Dtype = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'U64' | 'BOOL';

const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};

/**
 * Largest header we parse: real headers are a few KiB (a seed checkpoint's, Adam moments included,
 * about 20 KiB); a huge one is a hostile or broken file. JSON.parse of a hostile header can take
 * ~30× its length in heap, so a higher cap (it was 16 MiB) let a 16 MB file cost 500 MiB and 5 s.
 */
export const MAX_HEADER_BYTES = 1024 * 1024;

export interface TensorEntry {
  dtype: Dtype;
  shape: number[];
  /** The tensor's bytes (a view into the file). */
  data: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

/**
 * A header value for an error message: its JSON cut to 80 characters. Never throws: JSON.stringify
 * of a deeply nested value overflows the stack (a RangeError that names neither file nor problem).
 */
function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = '(a value nested too deeply to print)';
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** A name from the header, cut to 80 characters, for an error message. */
function clip(name: string): string {
  return name.length > 80 ? `${name.slice(0, 77)}...` : name;
}

/**
 * Exact bytes of a tensor of `shape`, or Infinity past 2^53: a plain product of safe integers
 * rounds once it passes 2^53, and [huge, huge, …, 0] would give Infinity·0 = NaN.
 */
function tensorBytes(shape: readonly number[], dtypeBytes: number): number {
  if (shape.includes(0)) return 0;
  let bytes = dtypeBytes;
  for (const d of shape) {
    bytes *= d;
    if (bytes > Number.MAX_SAFE_INTEGER) return Infinity;
  }
  return bytes;
}

export class SafetensorsError extends Error {
  constructor(source: string, message: string) {
    super(`${source}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

/** Parses and validates a whole file; `source` names it in errors. */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors'): SafetensorsFile {
  const fail = (message: string): never => {
    throw new SafetensorsError(source, message);
  };
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerEnd = 8 + Number(headerLength);
  if (headerEnd > bytes.length) fail(`header length ${headerLength} runs past the end of the ${bytes.length}-byte file (truncated?)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataBytes = bytes.length - headerEnd;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${clip(k)} is not a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const tensor = `tensor '${clip(name)}'`;
    if (typeof info !== 'object' || info === null) fail(`${tensor}: entry is not an object`);
    // hasOwn, not `in`: 'constructor' or '__proto__' is in every object.
    if (typeof info.dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, info.dtype)) fail(`${tensor}: unknown dtype ${show(info.dtype)}`);
    const dtype = info.dtype as Dtype;
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`${tensor}: shape ${show(info.shape)} is not a list of non-negative integers`);
    }
    const shape = info.shape as number[];
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`${tensor}: data_offsets ${show(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataBytes) fail(`${tensor}: data_offsets [${begin}, ${end}] lie outside the ${dataBytes} data bytes`);
    const expected = tensorBytes(shape, DTYPE_BYTES[dtype]);
    if (end - begin !== expected) fail(`${tensor}: ${end - begin} bytes stored, but ${dtype} ${show(shape)} needs ${expected === Infinity ? 'more than 2^53' : expected}`);
    ranges.push([begin, end, name]);
    tensors.set(name, { dtype, shape, data: bytes.subarray(headerEnd + begin, headerEnd + end) });
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  // The reference reader refuses holes too: every data byte belongs to exactly one tensor.
  let covered = 0;
  let previous = '';
  for (const [begin, end, name] of ranges) {
    if (begin < covered) fail(`tensors '${clip(previous)}' and '${clip(name)}' overlap in the data section`);
    if (begin > covered) fail(`data bytes [${covered}, ${begin}) before tensor '${clip(name)}' belong to no tensor`);
    covered = end;
    previous = name;
  }
  if (covered !== dataBytes) fail(`the last ${dataBytes - covered} of the ${dataBytes} data bytes belong to no tensor`);
  return { tensors, metadata };
}

export interface TensorToWrite {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

/** Serialises tensors (in the given order) and metadata; the header is space-padded to 8 bytes. */
export function serializeSafetensors(tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): Uint8Array {
  // No prototype: a tensor named 'toString' is not a duplicate, and one named '__proto__' is kept.
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) throw new Error(`safetensors: tensor '${t.name}' has ${t.data.byteLength} bytes, ${t.dtype} ${JSON.stringify(t.shape)} needs ${expected}`);
    if (t.name === '__metadata__') throw new Error(`safetensors: '__metadata__' is not a tensor name`);
    if (t.name in header) throw new Error(`safetensors: duplicate tensor name '${t.name}'`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + expected] };
    offset += expected;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const headerBytes = new Uint8Array(padded).fill(0x20);
  headerBytes.set(json);
  json = headerBytes;
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** The entry's values as float32 (F32 copied, so alignment never matters). */
export function entryToFloat32(entry: TensorEntry, name: string): Float32Array {
  if (entry.dtype !== 'F32') throw new Error(`tensor '${name}': expected F32, file has ${entry.dtype}`);
  const out = new Float32Array(entry.data.byteLength / 4);
  new Uint8Array(out.buffer).set(entry.data);
  return out;
}
