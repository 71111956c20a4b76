/**
 * Property-based fuzzing (fast-check) of the image decoder, src/train/decode.ts (decodeImage,
 * inspectImage), and of the dataset validation that runs inspectImage on every file.
 *
 * The property, for every file: decodeImage gives the S×S RGB8 it was asked for, and inspectImage a
 * PNG/JPEG/TIFF/WebP header within the pixel cap and the file's size, or each throws an ImageError
 * whose message starts with the path (at most MAX_MESSAGE characters after it) — never another
 * exception, and never longer than CASE_BUDGET_MS (a hang).
 *
 * Inputs: byte edits and truncations of valid PNG, JPEG, TIFF and WebP files of many kinds (sharp
 * writes them), JPEGs padded with thousands of marker bytes, non-images with image extensions
 * (random bytes, text, SVG, GIF, AVIF, PDF, zip), zero-byte files, and decompression bombs: a few
 * hundred bytes declaring more pixels than the cap (PNG with a valid IHDR CRC and a zlib stream of
 * zeros, JPEG SOF, TIFF tags, WebP VP8L header), which must be refused by the pixel cap itself,
 * before any decoding, within BOMB_BUDGET_MS and naming the file and the cap.
 *
 * Memory cap: decoding costs memory in proportion to the pixels the header declares, so the cap on
 * pixels is the cap on memory: a file declaring up to maxPixels pixels makes the process's peak RSS
 * grow by at most BYTES_PER_PIXEL·maxPixels + RSS_SLACK (at DEFAULT_MAX_PIXELS, 20000², that is a
 * few GB: the cap is the user's to lower). Each property checks it against the process's peak RSS.
 * Runs: fixed seeds, see fuzz.ts for LUNGPATH_FUZZ_RUNS.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import fc from 'fast-check';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_CONFIG, type ModelConfig } from '../../src/nn/config.ts';
import { validateDataset, type Dataset } from '../../src/train/dataset.ts';
import { DEFAULT_MAX_PIXELS, decodeImage, ImageError, inspectImage } from '../../src/train/decode.ts';
import { applyEdits, byteEdits, fuzzParameters, fuzzTimeout, note, Tally, withinMs } from './fuzz.ts';

const S = 24;
/** The pixel cap of the fuzzed calls: small, so a damaged header's size decodes in milliseconds. */
const CAP = 1 << 20;
const CASE_BUDGET_MS = 3000;
const BOMB_BUDGET_MS = 500;
const MAX_MESSAGE = 400;
const BYTES_PER_PIXEL = 8;
const RSS_SLACK = 256 * 1024 * 1024;
const FORMATS = ['png', 'jpeg', 'tiff', 'webp'];

const dir = mkdtempSync(join(tmpdir(), 'lungpath-fuzz-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---- valid files -----------------------------------------------------------------------------

const plain = Uint8Array.from({ length: S * S * 3 }, (_, k) => (k * 37 + (k >> 5) * 11) & 255);
const rgba = Uint8Array.from({ length: S * S * 4 }, (_, k) => (k * 29 + 7) & 255);
const raw = (channels: 1 | 3 | 4) => ({ raw: { width: S, height: S, channels } });
const rgb = () => sharp(plain, raw(3));

const SOURCES: [name: string, ext: string, image: () => Sharp][] = [
  ['png', 'png', () => rgb().png()],
  ['png interlaced', 'png', () => rgb().png({ progressive: true })],
  ['png palette', 'png', () => rgb().png({ palette: true })],
  ['png rgba', 'png', () => sharp(rgba, raw(4)).png()],
  ['png gray', 'png', () => sharp(plain.subarray(0, S * S), raw(1)).png()],
  ['png 16-bit', 'png', () => sharp(Uint16Array.from(plain, (v) => v * 257), raw(3)).toColourspace('rgb16').png()],
  ['jpeg', 'jpg', () => rgb().jpeg()],
  ['jpeg progressive', 'jpg', () => rgb().jpeg({ progressive: true })],
  ['jpeg exif-rotated', 'jpeg', () => rgb().jpeg({ chromaSubsampling: '4:4:4', quality: 95 }).withMetadata({ orientation: 6 })],
  ['jpeg gray', 'jpg', () => sharp(plain.subarray(0, S * S), raw(1)).jpeg()],
  ['tiff lzw', 'tif', () => rgb().tiff({ compression: 'lzw' })],
  ['tiff deflate', 'tiff', () => rgb().tiff({ compression: 'deflate', predictor: 'horizontal' })],
  ['tiff jpeg', 'tif', () => rgb().tiff({ compression: 'jpeg' })],
  ['tiff none', 'tif', () => rgb().tiff({ compression: 'none' })],
  ['tiff tiled', 'tif', () => rgb().tiff({ tile: true, tileWidth: 16, tileHeight: 16 })],
  ['webp', 'webp', () => rgb().webp()],
  ['webp lossless', 'webp', () => rgb().webp({ lossless: true })],
  ['webp rgba', 'webp', () => sharp(rgba, raw(4)).webp()],
];
let sources: { name: string; ext: string; bytes: Uint8Array }[] = [];
const source = (name: string): Uint8Array => (sources.find((s) => s.name === name) as { bytes: Uint8Array }).bytes;

beforeAll(async () => {
  sources = await Promise.all(SOURCES.map(async ([name, ext, image]) => ({ name, ext, bytes: new Uint8Array(await image().toBuffer()) })));
});

// ---- the oracle ------------------------------------------------------------------------------

let fileCount = 0;
/** Writes `bytes` to a new file with extension `ext`; returns its path. */
function put(bytes: Uint8Array, ext: string): string {
  const path = join(dir, `case-${fileCount++}.${ext}`);
  writeFileSync(path, bytes);
  return path;
}

function expectImageError(e: unknown, path: string): void {
  expect(e, `threw ${String(e)}`).toBeInstanceOf(ImageError);
  const message = (e as ImageError).message;
  expect(message.startsWith(`${path}: `), message).toBe(true);
  expect((e as ImageError).path).toBe(path);
  expect(message.length - path.length, message.slice(0, 300)).toBeLessThanOrEqual(MAX_MESSAGE);
}

/** Runs `call` within the budget; returns its value, or the ImageError it threw (checked). */
async function settle<T>(path: string, what: string, call: () => Promise<T>, tally: Tally, budgetMs = CASE_BUDGET_MS): Promise<T | ImageError> {
  const isHang = (e: unknown) => e instanceof Error && e.message.endsWith('(a hang)');
  const start = performance.now();
  let result: T | ImageError;
  try {
    // A hang is slow every time, a busy machine only once: over the budget twice fails.
    result = await withinMs(budgetMs, `${what} ${path}`, call).catch((e: unknown): Promise<T> => {
      if (isHang(e)) return withinMs(budgetMs, `${what} ${path}, twice`, call);
      throw e;
    });
  } catch (e) {
    if (isHang(e)) throw e;
    expectImageError(e, path);
    result = e as ImageError;
  }
  tally.add(!(result instanceof ImageError), performance.now() - start);
  return result;
}

/** decodeImage and inspectImage on `path`, each checked against the property. */
async function checkFile(path: string, tally: Tally, options: { fullDecode?: boolean; maxPixels?: number } = {}): Promise<{ decoded: boolean; inspected: boolean }> {
  const maxPixels = options.maxPixels ?? CAP;
  const decoded = await settle(path, 'decodeImage', () => decodeImage(path, { imageSize: S, onMismatch: 'resize', maxPixels, warn: () => {} }), tally);
  if (!(decoded instanceof ImageError)) {
    expect([decoded.width, decoded.height, decoded.rgb.length]).toEqual([S, S, S * S * 3]);
    expect(decoded.rgb).toBeInstanceOf(Uint8Array);
  }
  const inspected = await settle(path, 'inspectImage', () => inspectImage(path, { maxPixels, fullDecode: options.fullDecode }), tally);
  if (!(inspected instanceof ImageError)) {
    expect(FORMATS).toContain(inspected.format);
    expect(inspected.width * inspected.height).toBeLessThanOrEqual(maxPixels);
    expect(inspected.width >= 1 && inspected.height >= 1).toBe(true);
    expect(inspected.bytes).toBe(statSync(path).size);
  }
  return { decoded: !(decoded instanceof ImageError), inspected: !(inspected instanceof ImageError) };
}

/**
 * Peak-RSS guard for one property: fails if the process's peak RSS rose more than `bytes` above
 * its RSS at the start (a new peak is the only way the growth can show).
 */
function rssGuard(name: string, bytes: number): () => void {
  const rss = process.memoryUsage.rss();
  const peak = process.resourceUsage().maxRSS * 1024;
  return () => {
    const after = process.resourceUsage().maxRSS * 1024;
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    note(`${name}: peak RSS ${mib(after)}, ${after > peak ? `${mib(after - rss)} over the RSS at the start` : 'no new peak'} (cap ${mib(bytes)})`);
    if (after > peak) expect((after - rss) / 2 ** 20, 'peak RSS growth (MiB)').toBeLessThanOrEqual(bytes / 2 ** 20);
  };
}

// ---- bombs: tiny files that declare width×height -----------------------------------------------

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A PNG declaring width×height RGB8 with a valid IHDR CRC, then a short zlib stream of zeros. */
function pngBomb(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const signature = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(new Uint8Array(1 << 16))), pngChunk('IEND', new Uint8Array(0))]);
}

/** A valid JPEG with its SOF0/SOF2 size replaced (at most 65535 a side). */
function jpegBomb(width: number, height: number): Uint8Array {
  const out = Buffer.from(source('jpeg'));
  const sof = out.findIndex((b, i) => b === 0xff && (out[i + 1] === 0xc0 || out[i + 1] === 0xc2));
  out.writeUInt16BE(height, sof + 5);
  out.writeUInt16BE(width, sof + 7);
  return out;
}

/** A valid TIFF with width, height and rows-per-strip of its first IFD replaced (LONG tags). */
function tiffBomb(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const out = Buffer.from(bytes);
  const ifd = out.readUInt32LE(4);
  for (let k = 0; k < out.readUInt16LE(ifd); k++) {
    const entry = ifd + 2 + 12 * k;
    const value = ({ 256: width, 257: height, 278: height } as Record<number, number>)[out.readUInt16LE(entry)];
    if (value === undefined) continue;
    out.writeUInt16LE(4, entry + 2);
    out.writeUInt32LE(value, entry + 8);
  }
  return out;
}

/** A lossless WebP with its VP8L header's size replaced (at most 16383 a side). */
function webpBomb(bytes: Uint8Array, width: number, height: number): Uint8Array {
  const out = Buffer.from(bytes);
  const at = out.indexOf('VP8L') + 9;
  const bits = out.readUInt32LE(at);
  out.writeUInt32LE(((bits & ~0x0fffffff) | (width - 1) | ((height - 1) << 14)) >>> 0, at);
  return out;
}

type BombFormat = 'png' | 'jpeg' | 'tiff' | 'tiff-jpeg' | 'webp';
/** The largest side each decoder reads a header of (larger, it refuses the file itself). */
const SIDE_LIMIT: Record<BombFormat, number> = { png: 10_000_000, jpeg: 65_500, tiff: 10_000_000, 'tiff-jpeg': 10_000_000, webp: 16_383 };
const EXT: Record<BombFormat, string> = { png: 'png', jpeg: 'jpg', tiff: 'tif', 'tiff-jpeg': 'tiff', webp: 'webp' };

function bomb(format: BombFormat, width: number, height: number): Uint8Array {
  if (format === 'png') return pngBomb(width, height);
  if (format === 'jpeg') return jpegBomb(width, height);
  if (format === 'tiff') return tiffBomb(source('tiff none'), width, height);
  if (format === 'tiff-jpeg') return tiffBomb(source('tiff jpeg'), width, height);
  return webpBomb(source('webp lossless'), width, height);
}

/** A format and a size with width·height in (lo, hi], each side within the format's limit. */
function sizedBomb(lo: number, hi: number, formats: readonly BombFormat[] = ['png', 'jpeg', 'tiff', 'tiff-jpeg', 'webp']) {
  return fc
    .record({ format: fc.constantFrom(...formats), aspect: fc.double({ min: -1, max: 1, noNaN: true }), fill: fc.double({ min: 0, max: 1, noNaN: true }) })
    .map(({ format, aspect, fill }) => {
      const limit = SIDE_LIMIT[format];
      const pixels = Math.floor(lo + 1 + (hi - lo - 1) * fill);
      let width = Math.min(limit, Math.max(1, Math.round(Math.sqrt(pixels) * 16 ** aspect)));
      let height = Math.min(limit, Math.ceil(pixels / width));
      if (width * height > hi) height = Math.floor(hi / width);
      if (width * height <= lo) width = Math.min(limit, Math.floor(hi / height));
      return { format, width, height };
    })
    .filter(({ width, height }) => width >= 1 && height >= 1 && width * height > lo && width * height <= hi);
}

// ---- properties ------------------------------------------------------------------------------

describe('decodeImage and inspectImage on hostile files', () => {
  it('byte edits of valid PNG, JPEG, TIFF and WebP files', async () => {
    const tally = new Tally('image byte edits');
    const guard = rssGuard('image byte edits', BYTES_PER_PIXEL * CAP + RSS_SLACK);
    await fc.assert(
      fc.asyncProperty(fc.nat(SOURCES.length - 1), byteEdits(96), fc.boolean(), async (i, edits, fullDecode) => {
        const { ext, bytes } = sources[i] as { ext: string; bytes: Uint8Array };
        await checkFile(put(applyEdits(bytes, edits), ext), tally, { fullDecode });
      }),
      fuzzParameters(301, 1200),
    );
    guard();
    tally.report();
    expect(tally.accepted).toBeGreaterThan(0);
  }, fuzzTimeout(60_000));

  it('every truncation is refused by inspectImage; decodeImage refuses it or decodes it whole', async () => {
    const tally = new Tally('image truncations');
    await fc.assert(
      fc.asyncProperty(fc.nat(SOURCES.length - 1), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), async (i, fraction) => {
        const { ext, bytes } = sources[i] as { ext: string; bytes: Uint8Array };
        const path = put(bytes.subarray(0, Math.floor(bytes.length * fraction)), ext);
        expect((await checkFile(path, tally)).inspected, `inspectImage accepted ${path}, cut at ${Math.floor(bytes.length * fraction)} of ${bytes.length} bytes`).toBe(false);
      }),
      fuzzParameters(302, 500),
    );
    tally.report();
  }, fuzzTimeout(60_000));

  it('the valid files themselves decode (so the edits above start from something readable)', async () => {
    for (const { ext, bytes } of sources) expect(await checkFile(put(bytes, ext), new Tally('valid'), { fullDecode: true }), ext).toEqual({ decoded: true, inspected: true });
  });

  it('non-images, and other formats, with image extensions are refused; empty files name the problem', async () => {
    const others = await Promise.all([
      sharp(plain, raw(3)).gif().toBuffer(),
      sharp(plain, raw(3)).avif().toBuffer(),
      Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${S}" height="${S}"><rect width="${S}" height="${S}" fill="red"/></svg>`),
      // Renders for minutes when an SVG reaches libvips: a 3000² blur of 300 px.
      Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="3000" height="3000"><filter id="f"><feGaussianBlur stdDeviation="300"/></filter><rect width="3000" height="3000" filter="url(#f)"/></svg>'),
      Buffer.from('%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n'),
      Buffer.from('PK\u0003\u0004 not really a zip'),
      Buffer.from('P6\n24 24\n255\n'),
    ]);
    const content = fc.oneof(
      fc.constantFrom(...others.map((b) => new Uint8Array(b))),
      fc.uint8Array({ minLength: 1, maxLength: 2048 }),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }).map((s) => new TextEncoder().encode(s)),
      fc.json().map((s) => new TextEncoder().encode(s)),
    );
    const tally = new Tally('image non-images');
    await fc.assert(
      fc.asyncProperty(content, fc.constantFrom('png', 'jpg', 'jpeg', 'tif', 'tiff', 'webp', 'PNG'), async (bytes, ext) => {
        expect(await checkFile(put(bytes, ext), tally)).toEqual({ decoded: false, inspected: false });
      }),
      fuzzParameters(303, 400),
    );
    tally.report();

    const empty = put(new Uint8Array(0), 'png');
    await expect(inspectImage(empty)).rejects.toThrow(`${empty}: empty file (0 bytes)`);
    await expect(decodeImage(empty, { imageSize: S, onMismatch: 'resize' })).rejects.toThrow(`${empty}: not an image`);
  }, fuzzTimeout(60_000));

  it('JPEGs padded with thousands of fill bytes or empty segments are walked in milliseconds', async () => {
    const tally = new Tally('image JPEG marker padding');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1000, max: 100_000 }), fc.boolean(), async (count, segments) => {
        const padding = segments ? Buffer.alloc(4 * count).map((_, k) => [0xff, 0xe5, 0, 2][k % 4] as number) : Buffer.alloc(count, 0xff);
        const jpeg = source('jpeg');
        const path = put(Buffer.concat([jpeg.subarray(0, 2), padding, jpeg.subarray(2)]), 'jpg');
        const header = await settle(path, 'inspectImage', () => inspectImage(path), tally, 1000);
        expect(header).not.toBeInstanceOf(ImageError);
      }),
      fuzzParameters(304, 20),
    );
    tally.report();
  }, fuzzTimeout(60_000));
});

describe('decompression bombs', () => {
  it.each<[string, BombFormat, number, number]>([
    ['PNG 100000×100000', 'png', 100_000, 100_000],
    ['PNG 20000×20001', 'png', 20_000, 20_001],
    ['JPEG 65500×65500', 'jpeg', 65_500, 65_500],
    ['TIFF 100000×100000', 'tiff', 100_000, 100_000],
    ['TIFF (JPEG-compressed) 10^7×10^7', 'tiff-jpeg', 10_000_000, 10_000_000],
  ])('%s is refused by the default cap before decoding, naming the file and the limit', async (_, format, width, height) => {
    const path = put(bomb(format, width, height), EXT[format]);
    const tally = new Tally('default-cap bomb');
    for (const call of [() => inspectImage(path), () => decodeImage(path, { imageSize: S, onMismatch: 'resize' })] as (() => Promise<unknown>)[]) {
      const error = await settle(path, 'refusing', call, tally, BOMB_BUDGET_MS);
      expect(error).toBeInstanceOf(ImageError);
      expect((error as Error).message).toContain(`image is ${width}×${height} = ${width * height} pixels, over the limit of ${DEFAULT_MAX_PIXELS} pixels`);
    }
  });

  it.each<[string, BombFormat, number, number]>([
    ['PNG 2^31-1 × 2^31-1', 'png', 2 ** 31 - 1, 2 ** 31 - 1],
    ['JPEG 65535×65535', 'jpeg', 65_535, 65_535],
    ['TIFF 2^32-1 × 2^32-1', 'tiff', 2 ** 32 - 1, 2 ** 32 - 1],
    ['WebP 16384×16384', 'webp', 16_384, 16_384],
  ])('%s, past what the decoder reads, is refused quickly naming the file', async (_, format, width, height) => {
    const path = put(bomb(format, width, height), EXT[format]);
    const tally = new Tally('oversized bomb');
    for (const call of [() => inspectImage(path), () => decodeImage(path, { imageSize: S, onMismatch: 'resize' })] as (() => Promise<unknown>)[]) {
      expect(await settle(path, 'refusing', call, tally, BOMB_BUDGET_MS)).toBeInstanceOf(ImageError);
    }
  });

  it('any format and size over the cap: refused by the cap, quickly, without memory growth', async () => {
    const tally = new Tally('image bombs over the cap');
    const guard = rssGuard('image bombs over the cap', RSS_SLACK);
    await fc.assert(
      fc.asyncProperty(sizedBomb(CAP, 2 ** 40), fc.boolean(), async ({ format, width, height }, fullDecode) => {
        const path = put(bomb(format, width, height), EXT[format]);
        const limit = `image is ${width}×${height} = ${width * height} pixels, over the limit of ${CAP} pixels`;
        const decoded = await settle(path, 'decodeImage', () => decodeImage(path, { imageSize: S, onMismatch: 'resize', maxPixels: CAP }), tally, BOMB_BUDGET_MS);
        const inspected = await settle(path, 'inspectImage', () => inspectImage(path, { maxPixels: CAP, fullDecode }), tally, BOMB_BUDGET_MS);
        for (const result of [decoded, inspected]) {
          expect(result).toBeInstanceOf(ImageError);
          expect((result as ImageError).problem).toContain(limit);
        }
      }),
      fuzzParameters(305, 400),
    );
    guard();
    tally.report();
  }, fuzzTimeout(60_000));

  it('any format and size within the cap: decoded or refused in time, memory within BYTES_PER_PIXEL·maxPixels', async () => {
    const cap = 1 << 22;
    const tally = new Tally('image bombs within the cap');
    const guard = rssGuard('image bombs within the cap', BYTES_PER_PIXEL * cap + RSS_SLACK);
    await fc.assert(
      fc.asyncProperty(sizedBomb(cap / 4, cap), fc.boolean(), async ({ format, width, height }, fullDecode) => {
        await checkFile(put(bomb(format, width, height), EXT[format]), tally, { maxPixels: cap, fullDecode });
      }),
      fuzzParameters(306, 100),
    );
    guard();
    tally.report();
  }, fuzzTimeout(60_000));
});

describe('dataset validation over hostile files', () => {
  it('lists every bad file with its problem and keeps the good ones', async () => {
    const root = join(dir, 'dataset');
    const files: [string, Uint8Array, boolean][] = [
      ...sources.map((s, i): [string, Uint8Array, boolean] => [`good-${i}.${s.ext}`, s.bytes, true]),
      ['empty.png', new Uint8Array(0), false],
      ['text.jpg', new TextEncoder().encode('not an image'), false],
      ['svg.png', new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>'), false],
      ['bomb.png', pngBomb(100_000, 100_000), false],
      ['bomb.jpg', jpegBomb(65_535, 65_535), false],
      ['bomb.tif', bomb('tiff', 70_000, 70_000), false],
      ['cut.webp', source('webp').subarray(0, 40), false],
      ['cut.png', source('png').subarray(0, 60), false],
    ];
    mkdirSync(join(root, 'A'), { recursive: true });
    for (const [name, bytes] of files) writeFileSync(join(root, 'A', name), bytes);
    const images = files.map(([name], i) => ({ path: join(root, 'A', name), label: i % 2, className: i % 2 ? 'B' : 'A' }));
    const ds: Dataset = { root, classes: ['A', 'B'], layout: 'flat', splits: { train: images, val: [], test: [] } };
    const config: ModelConfig = { ...TINY_CONFIG, imageSize: S, patch: { size: 16, stride: 8 } };
    const result = await withinMs(10_000, 'validateDataset', () => validateDataset(ds, config));
    const bad = new Map(result.bad.map((p) => [p.path, p.problem]));
    for (const [name, , good] of files) expect(bad.has(join(root, 'A', name)), `${name}: ${bad.get(join(root, 'A', name))}`).toBe(!good);
    expect(bad.get(join(root, 'A', 'bomb.png'))).toContain(`over the limit of ${DEFAULT_MAX_PIXELS} pixels`);
  });
});
