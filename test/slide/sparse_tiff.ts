/**
 * A fast writer of large, mostly empty pyramidal TIFFs for the memory test: every background tile
 * of every level points at one shared white JPEG (TIFF allows tiles to share bytes), and only tiles
 * that touch the tissue discs are encoded (sharp, YCbCr JPEG). A 40,960² slide takes a second or
 * two instead of libvips encoding 1.7 gigapixels. Classic little-endian TIFF, generic-tiff layout
 * (reduced-resolution levels marked NewSubfileType 1), mpp in the resolution tags; classic TIFF or,
 * with `bigTiff`, BigTIFF (8-byte offsets).
 */
import { writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { BACKGROUND, texture as classTexture } from './make_slide.ts';

export interface Disc {
  cx: number;
  cy: number;
  r: number;
}

const TILE = 256;

async function jpeg(rgb: Uint8Array): Promise<Buffer> {
  return sharp(rgb, { raw: { width: TILE, height: TILE, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
}

/** Writes a `size`² slide (level 0) at `mpp` with tissue in `discs` (level-0 pixels); levels halve down to ≤ 1 tile. */
export async function writeSparseSlide(path: string, size: number, mpp: number, discs: Disc[], bigTiff = false): Promise<{ tissueTiles: number; levels: number }> {
  const texture = classTexture('ADC', 5);
  const white = await jpeg(new Uint8Array(TILE * TILE * 3).map((_, i) => [BACKGROUND.r, BACKGROUND.g, BACKGROUND.b][i % 3]!));
  const chunks: Buffer[] = [];
  let offset = bigTiff ? 16 : 8;
  const put = (b: Buffer) => {
    const at = offset;
    chunks.push(b);
    offset += b.length;
    if (offset % 2) {
      chunks.push(Buffer.alloc(1));
      offset++;
    }
    return at;
  };
  const whiteAt = put(white);
  const levels: { width: number; height: number; offsets: number[]; counts: number[] }[] = [];
  let tissueTiles = 0;
  for (let ds = 1; ; ds *= 2) {
    const w = Math.ceil(size / ds);
    const across = Math.ceil(w / TILE);
    const offsets: number[] = [];
    const counts: number[] = [];
    for (let ty = 0; ty < across; ty++) for (let tx = 0; tx < across; tx++) {
      const x0 = tx * TILE * ds, y0 = ty * TILE * ds, x1 = x0 + TILE * ds, y1 = y0 + TILE * ds;
      const touches = discs.some((d) => Math.hypot(Math.max(x0, Math.min(d.cx, x1)) - d.cx, Math.max(y0, Math.min(d.cy, y1)) - d.cy) <= d.r);
      if (!touches) {
        offsets.push(whiteAt);
        counts.push(white.length);
        continue;
      }
      const rgb = new Uint8Array(TILE * TILE * 3);
      for (let y = 0; y < TILE; y++) for (let x = 0; x < TILE; x++) {
        const X = x0 + (x + 0.5) * ds, Y = y0 + (y + 0.5) * ds;
        const inside = X < size && Y < size && discs.some((d) => (X - d.cx) ** 2 + (Y - d.cy) ** 2 <= d.r * d.r);
        const o = (y * TILE + x) * 3;
        if (inside) {
          const t = ((Math.floor(Y / ds) % TILE) * TILE + (Math.floor(X / ds) % TILE)) * 3;
          rgb[o] = texture[t]!;
          rgb[o + 1] = texture[t + 1]!;
          rgb[o + 2] = texture[t + 2]!;
        } else {
          rgb[o] = BACKGROUND.r;
          rgb[o + 1] = BACKGROUND.g;
          rgb[o + 2] = BACKGROUND.b;
        }
      }
      const data = await jpeg(rgb);
      offsets.push(put(data));
      counts.push(data.length);
      tissueTiles++;
    }
    levels.push({ width: w, height: w, offsets, counts });
    if (w <= TILE) break;
  }
  // Directories, each followed by its out-of-line values.
  const ifdOffsets: number[] = [];
  const pxPerCm = 10_000 / mpp;
  const dirs: Buffer[] = [];
  const tables: Buffer[] = [];
  let dirAt = offset + (offset % 2);
  const pad = offset % 2 ? Buffer.alloc(1) : Buffer.alloc(0);
  // Classic TIFF: 12-byte entries, 4-byte counts and values; BigTIFF: 20-byte entries, 8-byte
  // counts and values, tile offsets and byte counts as LONG8.
  const [countBytes, entryBytes, valueBytes] = bigTiff ? [8, 20, 8] : [2, 12, 4];
  const width = (type: number) => (type === 3 ? 2 : type === 16 ? 8 : 4);
  const long = bigTiff ? 16 : 4;
  for (let l = 0; l < levels.length; l++) {
    const lv = levels[l]!;
    type E = [tag: number, type: number, values: number[]];
    const entries: E[] = [
      [254, 4, [l === 0 ? 0 : 1]], [256, 4, [lv.width]], [257, 4, [lv.height]], [258, 3, [8, 8, 8]], [259, 3, [7]], [262, 3, [6]], [277, 3, [3]],
      [282, 5, [pxPerCm, 1]], [283, 5, [pxPerCm, 1]], [284, 3, [1]], [296, 3, [3]], [322, 3, [TILE]], [323, 3, [TILE]], [324, long, lv.offsets], [325, long, lv.counts], [530, 3, [2, 2]],
    ];
    const head = countBytes + entries.length * entryBytes + valueBytes;
    const table = Buffer.alloc(head);
    const extra: Buffer[] = [];
    let extraAt = dirAt + head;
    if (bigTiff) table.writeBigUInt64LE(BigInt(entries.length), 0);
    else table.writeUInt16LE(entries.length, 0);
    entries.forEach(([tag, type, values], i) => {
      const at = countBytes + i * entryBytes;
      table.writeUInt16LE(tag, at);
      table.writeUInt16LE(type, at + 2);
      const count = type === 5 ? values.length / 2 : values.length;
      if (bigTiff) table.writeBigUInt64LE(BigInt(count), at + 4);
      else table.writeUInt32LE(count, at + 4);
      const bytes = Buffer.alloc(width(type) * values.length);
      values.forEach((v, k) => (type === 3 ? bytes.writeUInt16LE(v, 2 * k) : type === 16 ? bytes.writeBigUInt64LE(BigInt(v), 8 * k) : bytes.writeUInt32LE(Math.round(v), 4 * k)));
      const valueAt = at + (bigTiff ? 12 : 8);
      if (bytes.length <= valueBytes) bytes.copy(table, valueAt);
      else {
        if (bigTiff) table.writeBigUInt64LE(BigInt(extraAt), valueAt);
        else table.writeUInt32LE(extraAt, valueAt);
        extra.push(bytes);
        extraAt += bytes.length;
      }
    });
    ifdOffsets.push(dirAt);
    tables.push(table);
    dirs.push(table, ...extra);
    dirAt = extraAt;
  }
  tables.forEach((table, l) => {
    const next = l + 1 < tables.length ? ifdOffsets[l + 1]! : 0;
    if (bigTiff) table.writeBigUInt64LE(BigInt(next), table.length - 8);
    else table.writeUInt32LE(next, table.length - 4);
  });
  const header = Buffer.alloc(bigTiff ? 16 : 8);
  header.write('II', 0, 'latin1');
  if (bigTiff) {
    header.writeUInt16LE(43, 2);
    header.writeUInt16LE(8, 4);
    header.writeBigUInt64LE(BigInt(ifdOffsets[0]!), 8);
  } else {
    header.writeUInt16LE(42, 2);
    header.writeUInt32LE(ifdOffsets[0]!, 4);
  }
  writeFileSync(path, Buffer.concat([header, ...chunks, pad, ...dirs]));
  return { tissueTiles, levels: levels.length };
}
