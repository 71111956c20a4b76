/**
 * TIFF and BigTIFF structure: the header and the chain of image file directories (IFDs), with the
 * values of the tags a slide reader needs (TIFF 6.0; BigTIFF as libtiff writes it). Hostile input
 * is refused with a SlideError naming the file: a loop in the IFD chain, offsets or counts past
 * the end of the file, more than MAX_IFDS directories or MAX_ENTRIES entries in one, tag values
 * larger than MAX_TAG_BYTES. Only tags in WANTED are read; the rest are skipped unread.
 */
import { SlideError } from './slide.ts';
import type { ByteSource } from './source.ts';

export const MAX_IFDS = 1024;
export const MAX_ENTRIES = 4096;
/** One tag's values at most (a 400k × 400k slide in 256-pixel tiles has 2.4M tiles: 20 MiB of LONG8 offsets). */
export const MAX_TAG_BYTES = 64 * 1024 * 1024;

export const TAG = {
  NewSubfileType: 254,
  ImageWidth: 256,
  ImageLength: 257,
  BitsPerSample: 258,
  Compression: 259,
  Photometric: 262,
  ImageDescription: 270,
  StripOffsets: 273,
  SamplesPerPixel: 277,
  RowsPerStrip: 278,
  StripByteCounts: 279,
  XResolution: 282,
  YResolution: 283,
  PlanarConfiguration: 284,
  ResolutionUnit: 296,
  TileWidth: 322,
  TileLength: 323,
  TileOffsets: 324,
  TileByteCounts: 325,
  JPEGTables: 347,
  YCbCrSubSampling: 530,
} as const;

const WANTED = new Set<number>(Object.values(TAG));

/** A tag's values: numbers (rationals as their quotient), a string (ASCII) or raw bytes (UNDEFINED). */
export type TagValue = number[] | string | Uint8Array;

export interface Ifd {
  /** Position in the chain, from 0. */
  index: number;
  offset: number;
  tags: Map<number, TagValue>;
}

export interface TiffFile {
  littleEndian: boolean;
  bigTiff: boolean;
  ifds: Ifd[];
}

/** Bytes per value of each TIFF field type (TIFF 6.0 §2 and BigTIFF's 16–18). */
const TYPE_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    private readonly le: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u16(at: number): number {
    return this.view.getUint16(at, this.le);
  }
  u32(at: number): number {
    return this.view.getUint32(at, this.le);
  }
  /** A 64-bit unsigned value as a number; values past 2^53 come back as Infinity (refused as offsets). */
  u64(at: number): number {
    const v = this.view.getBigUint64(at, this.le);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v);
  }
  value(type: number, at: number): number {
    const v = this.view;
    switch (type) {
      case 1: case 7: return v.getUint8(at);
      case 6: return v.getInt8(at);
      case 3: return v.getUint16(at, this.le);
      case 8: return v.getInt16(at, this.le);
      case 4: case 13: return v.getUint32(at, this.le);
      case 9: return v.getInt32(at, this.le);
      case 5: return v.getUint32(at, this.le) / v.getUint32(at + 4, this.le);
      case 10: return v.getInt32(at, this.le) / v.getInt32(at + 4, this.le);
      case 11: return v.getFloat32(at, this.le);
      case 12: return v.getFloat64(at, this.le);
      case 16: case 18: return this.u64(at);
      case 17: { const s = v.getBigInt64(at, this.le); return Number(s); }
      default: return NaN;
    }
  }
}

/** Reads the header and every IFD of a TIFF or BigTIFF file. */
export async function readTiff(source: ByteSource): Promise<TiffFile> {
  const fail = (problem: string): never => {
    throw new SlideError(source.name, problem);
  };
  if (source.size < 8) fail(`not a TIFF file: ${source.size} bytes, shorter than a TIFF header`);
  const head = await source.read(0, Math.min(16, source.size));
  const order = String.fromCharCode(head[0]!, head[1]!);
  if (order !== 'II' && order !== 'MM') fail(`not a TIFF file (it starts with bytes ${hex(head.subarray(0, 4))}, not 'II' or 'MM')`);
  const le = order === 'II';
  const r = new Reader(head, le);
  const magic = r.u16(2);
  if (magic !== 42 && magic !== 43) fail(`not a TIFF file (version ${magic}, expected 42, or 43 for BigTIFF)`);
  const bigTiff = magic === 43;
  if (bigTiff && (source.size < 16 || r.u16(4) !== 8 || r.u16(6) !== 0)) fail('bad BigTIFF header (offset size must be 8)');
  let next = bigTiff ? r.u64(8) : r.u32(4);
  const ifds: Ifd[] = [];
  const seen = new Set<number>();
  while (next !== 0) {
    if (ifds.length >= MAX_IFDS) fail(`more than ${MAX_IFDS} image directories`);
    if (seen.has(next)) fail(`image directory ${ifds.length} points back to the one at byte ${next} (a loop in the directory chain)`);
    seen.add(next);
    const { ifd, nextOffset } = await readIfd(source, next, ifds.length, le, bigTiff, fail);
    ifds.push(ifd);
    next = nextOffset;
  }
  if (ifds.length === 0) fail('TIFF file has no image directories');
  return { littleEndian: le, bigTiff, ifds };
}

async function readIfd(source: ByteSource, offset: number, index: number, le: boolean, bigTiff: boolean, fail: (p: string) => never): Promise<{ ifd: Ifd; nextOffset: number }> {
  const where = `image directory ${index} (byte ${offset})`;
  const countBytes = bigTiff ? 8 : 2;
  const entryBytes = bigTiff ? 20 : 12;
  const offsetBytes = bigTiff ? 8 : 4;
  if (!Number.isSafeInteger(offset) || offset < 8 || offset + countBytes > source.size) fail(`${where} lies past the end of the file (${source.size} bytes): truncated or not a TIFF`);
  const countRaw = new Reader(await source.read(offset, countBytes), le);
  const count = bigTiff ? countRaw.u64(0) : countRaw.u16(0);
  if (count === 0) fail(`${where} has no entries`);
  if (count > MAX_ENTRIES) fail(`${where} has ${count} entries, more than ${MAX_ENTRIES}`);
  const size = count * entryBytes + offsetBytes;
  if (offset + countBytes + size > source.size) fail(`${where} runs past the end of the file (${source.size} bytes): truncated`);
  const r = new Reader(await source.read(offset + countBytes, size), le);
  const tags = new Map<number, TagValue>();
  for (let i = 0; i < count; i++) {
    const at = i * entryBytes;
    const tag = r.u16(at);
    if (!WANTED.has(tag) || tags.has(tag)) continue;
    const type = r.u16(at + 2);
    const n = bigTiff ? r.u64(at + 4) : r.u32(at + 4);
    const width = TYPE_BYTES[type];
    if (width === undefined) fail(`${where}: tag ${tag} has unknown field type ${type}`);
    const bytes = n * width!;
    if (!Number.isSafeInteger(bytes) || bytes > MAX_TAG_BYTES) fail(`${where}: tag ${tag} holds ${n} values, more than the ${MAX_TAG_BYTES} bytes allowed`);
    const inline = bytes <= offsetBytes;
    const valueAt = bigTiff ? r.u64(at + 12) : r.u32(at + 8);
    let data: Reader;
    let base: number;
    if (inline) {
      data = r;
      base = at + (bigTiff ? 12 : 8);
    } else {
      if (!Number.isSafeInteger(valueAt) || valueAt + bytes > source.size) fail(`${where}: the values of tag ${tag} (${bytes} bytes at byte ${valueAt}) lie past the end of the file (${source.size} bytes): truncated`);
      data = new Reader(await source.read(valueAt, bytes), le);
      base = 0;
    }
    if (type === 2) {
      const raw = data.bytes.subarray(base, base + bytes);
      const end = raw.indexOf(0);
      tags.set(tag, new TextDecoder('latin1').decode(end >= 0 ? raw.subarray(0, end) : raw));
    } else if (type === 7) {
      tags.set(tag, data.bytes.slice(base, base + bytes));
    } else {
      const values = new Array<number>(n);
      for (let k = 0; k < n; k++) values[k] = data.value(type, base + k * width!);
      tags.set(tag, values);
    }
  }
  const nextOffset = bigTiff ? r.u64(count * entryBytes) : r.u32(count * entryBytes);
  if (!Number.isSafeInteger(nextOffset)) fail(`${where}: the next directory offset is past 2^53`);
  return { ifd: { index, offset, tags }, nextOffset };
}

/** The numbers of a tag, or undefined when absent; a string or bytes where numbers belong is refused. */
export function numbers(ifd: Ifd, tag: number, name: string, fail: (p: string) => never): number[] | undefined {
  const v = ifd.tags.get(tag);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) fail(`image directory ${ifd.index}: tag ${tag} (${name}) should hold numbers`);
  return v as number[];
}

/** The first number of a tag, or `fallback`. */
export function scalar(ifd: Ifd, tag: number, name: string, fail: (p: string) => never, fallback?: number): number | undefined {
  const v = numbers(ifd, tag, name, fail);
  return v && v.length > 0 ? v[0] : fallback;
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}
