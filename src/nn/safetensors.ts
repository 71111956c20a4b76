/**
 * The safetensors format (huggingface/safetensors): u64 little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`, then the
 * raw little-endian tensor bytes. Pure functions over bytes, so Node and the browser share them.
 * The parser trusts nothing: every length, offset, dtype and shape is checked against the file.
 */

export type Dtype = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'U64' | 'BOOL';

const DTYPE_BYTES: Readonly<Record<Dtype, number>> = {
  F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Largest header we parse: real headers are a few KiB; a huge one is a hostile or broken file. */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;

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
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) fail(`tensor '${name}': entry is not an object`);
    if (typeof info.dtype !== 'string' || !(info.dtype in DTYPE_BYTES)) fail(`tensor '${name}': unknown dtype ${JSON.stringify(info.dtype)}`);
    const dtype = info.dtype as Dtype;
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor '${name}': shape ${JSON.stringify(info.shape)} is not a list of non-negative integers`);
    }
    const shape = info.shape as number[];
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      fail(`tensor '${name}': data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataBytes) fail(`tensor '${name}': data_offsets [${begin}, ${end}] lie outside the ${dataBytes} data bytes`);
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) fail(`tensor '${name}': ${end - begin} bytes stored, but ${dtype} ${JSON.stringify(shape)} needs ${expected}`);
    ranges.push([begin, end, name]);
    tensors.set(name, { dtype, shape, data: bytes.subarray(headerEnd + begin, headerEnd + end) });
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1] as [number, number, string];
    const cur = ranges[i] as [number, number, string];
    if (cur[0] < prev[1]) fail(`tensors '${prev[2]}' and '${cur[2]}' overlap in the data section`);
  }
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
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== expected) throw new Error(`safetensors: tensor '${t.name}' has ${t.data.byteLength} bytes, ${t.dtype} ${JSON.stringify(t.shape)} needs ${expected}`);
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
