/**
 * The pure-JavaScript slide reader: tiled pyramidal TIFF ('generic-tiff') and Aperio SVS ('aperio'),
 * uncompressed or JPEG tiles (JPEGTables shared or not, YCbCr or RGB), over any ByteSource — no
 * file system, so it runs in browsers. Levels are the tiled directories, largest first; Aperio's
 * untiled directories are associated images (the second is 'thumbnail', the others named by the
 * first word of their description's second line: 'label', 'macro'), as OpenSlide names them. Microns per pixel come from Aperio's
 * 'MPP =' field, else from the resolution tags (centimetre or inch units); objective power from
 * 'AppMag ='. Decoded tiles are kept in a small LRU cache (CACHE_TILES).
 */
import { joinJpegTables, jsJpegDecoder, type JpegDecoder } from './jpeg.ts';
import { checkRegion, levelDownsample, SlideError, type RgbImage, type Slide, type SlideInfo, type SlideLevel } from './slide.ts';
import type { ByteSource } from './source.ts';
import { numbers, readTiff, scalar, TAG, type Ifd } from './tiff.ts';

const COMPRESSION_NONE = 1;
const COMPRESSION_JPEG = 7;
const COMPRESSION_NAMES: Record<number, string> = {
  5: 'LZW', 8: 'Deflate', 32946: 'Deflate', 32773: 'PackBits', 6: 'old-style JPEG', 33003: 'JPEG 2000 (Aperio YCbCr)', 33005: 'JPEG 2000 (Aperio RGB)', 34712: 'JPEG 2000', 50000: 'Zstandard', 34887: 'LERC', 50001: 'WebP', 34892: 'lossy JPEG', 65000: 'Hamamatsu JPEG',
};
const PHOTOMETRIC_RGB = 2;
const PHOTOMETRIC_YCBCR = 6;
const CACHE_TILES = 64;

/** A level's tiles as stored. */
interface TiledImage {
  ifd: Ifd;
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  offsets: number[];
  byteCounts: number[];
  compression: number;
  ycbcr: boolean;
  jpegTables: Uint8Array | undefined;
}

export interface JsReaderOptions {
  /** JPEG decoder (default jsJpegDecoder; Node passes sharpJpegDecoder). */
  decoder?: JpegDecoder;
}

/** Opens a slide from `source`; throws a SlideError naming the file when it is not one this reader reads. */
export async function openJsSlide(source: ByteSource, options: JsReaderOptions = {}): Promise<Slide> {
  const name = source.name;
  const fail = (problem: string): never => {
    throw new SlideError(name, problem);
  };
  const tiff = await readTiff(source);
  const first = tiff.ifds[0]!;
  const description = first.tags.get(TAG.ImageDescription);
  const aperio = typeof description === 'string' && description.startsWith('Aperio');
  if (scalar(first, TAG.TileWidth, 'TileWidth', fail) === undefined) {
    fail('the first image is not tiled: not a pyramidal whole-slide TIFF (a plain TIFF image? open it as an image instead)');
  }
  const tiled: TiledImage[] = [];
  const associated = new Map<string, Ifd>();
  for (const ifd of tiff.ifds) {
    if (ifd.tags.has(TAG.TileWidth)) {
      const image = describeTiled(ifd, fail);
      if (tiled.length > 0 && !aperio && (scalar(ifd, TAG.NewSubfileType, 'NewSubfileType', fail, 0)! & 1) === 0) continue; // generic TIFF: only reduced-resolution images are levels
      tiled.push(image);
    } else if (aperio) {
      const label = ifd.index === 1 ? 'thumbnail' : aperioAssociatedName(ifd.tags.get(TAG.ImageDescription));
      if (label && !associated.has(label)) associated.set(label, ifd);
    }
  }
  tiled.sort((a, b) => b.width - a.width || b.height - a.height);
  for (const image of tiled) checkTiles(image, source.size, fail);
  const base = tiled[0]!;
  const levels: SlideLevel[] = tiled.map((t) => ({ width: t.width, height: t.height, downsample: levelDownsample(base.width, base.height, t.width, t.height) }));
  const fields = aperio ? aperioFields(description as string) : new Map<string, string>();
  const info: SlideInfo = {
    path: name,
    reader: 'js',
    width: base.width,
    height: base.height,
    levels,
    mpp: aperio ? aperioMpp(fields) : resolutionMpp(first, fail),
    vendor: aperio ? 'aperio' : 'generic-tiff',
    objectivePower: positiveNumber(fields.get('AppMag')),
    associatedImages: [...associated.keys()].sort(),
  };
  return new JsSlide(source, info, tiled, associated, options.decoder ?? jsJpegDecoder());
}

function describeTiled(ifd: Ifd, fail: (p: string) => never): TiledImage {
  const at = `image directory ${ifd.index}`;
  const need = (tag: number, name: string): number => {
    const v = scalar(ifd, tag, name, fail);
    if (v === undefined || !Number.isSafeInteger(v) || v < 1) fail(`${at}: ${name} is ${v === undefined ? 'missing' : v}`);
    return v as number;
  };
  const width = need(TAG.ImageWidth, 'ImageWidth');
  const height = need(TAG.ImageLength, 'ImageLength');
  const tileWidth = need(TAG.TileWidth, 'TileWidth');
  const tileHeight = need(TAG.TileLength, 'TileLength');
  if (tileWidth > 4096 || tileHeight > 4096) fail(`${at}: tiles of ${tileWidth}×${tileHeight} are larger than 4096×4096`);
  const compression = scalar(ifd, TAG.Compression, 'Compression', fail, 1)!;
  if (compression !== COMPRESSION_NONE && compression !== COMPRESSION_JPEG) {
    fail(`${at}: unsupported compression ${compression}${COMPRESSION_NAMES[compression] ? ` (${COMPRESSION_NAMES[compression]})` : ''}; this reader decodes uncompressed and JPEG tiles${compression === 33003 || compression === 33005 ? ' (OpenSlide reads JPEG 2000 SVS: use --reader openslide)' : ''}`);
  }
  const spp = scalar(ifd, TAG.SamplesPerPixel, 'SamplesPerPixel', fail, 1)!;
  const bits = numbers(ifd, TAG.BitsPerSample, 'BitsPerSample', fail) ?? [1];
  const planar = scalar(ifd, TAG.PlanarConfiguration, 'PlanarConfiguration', fail, 1);
  const photometric = scalar(ifd, TAG.Photometric, 'PhotometricInterpretation', fail, -1)!;
  if (spp !== 3 || bits.some((b) => b !== 8) || planar !== 1) fail(`${at}: ${spp} samples of ${bits.join('/')} bits per pixel (planar configuration ${planar}); this reader reads 8-bit RGB, interleaved`);
  if (photometric !== PHOTOMETRIC_RGB && photometric !== PHOTOMETRIC_YCBCR) fail(`${at}: photometric interpretation ${photometric}; this reader reads RGB (2) and YCbCr (6)`);
  if (photometric === PHOTOMETRIC_YCBCR && compression !== COMPRESSION_JPEG) fail(`${at}: uncompressed YCbCr is not supported`);
  const across = Math.ceil(width / tileWidth);
  const down = Math.ceil(height / tileHeight);
  const offsets = numbers(ifd, TAG.TileOffsets, 'TileOffsets', fail) ?? fail(`${at}: TileOffsets is missing`);
  const byteCounts = numbers(ifd, TAG.TileByteCounts, 'TileByteCounts', fail) ?? fail(`${at}: TileByteCounts is missing`);
  if (offsets.length !== across * down || byteCounts.length !== across * down) {
    fail(`${at}: ${offsets.length} tile offsets and ${byteCounts.length} byte counts for ${across}×${down} = ${across * down} tiles`);
  }
  const tables = ifd.tags.get(TAG.JPEGTables);
  return { ifd, width, height, tileWidth, tileHeight, offsets, byteCounts, compression, ycbcr: photometric === PHOTOMETRIC_YCBCR, jpegTables: tables instanceof Uint8Array ? tables : undefined };
}

/** Every tile must lie inside the file: a truncated slide is refused when opened, not halfway through a run. */
function checkTiles(image: TiledImage, fileSize: number, fail: (p: string) => never): void {
  for (let i = 0; i < image.offsets.length; i++) {
    const offset = image.offsets[i]!;
    const count = image.byteCounts[i]!;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(count) || offset < 0 || count < 0) fail(`image directory ${image.ifd.index}: tile ${i} has offset ${offset} and byte count ${count}`);
    if (count > 0 && offset + count > fileSize) {
      fail(`image directory ${image.ifd.index}: tile ${i} (bytes ${offset}..${offset + count}) lies past the end of the file (${fileSize} bytes): the file is truncated`);
    }
  }
}

/** As OpenSlide names an Aperio associated image: the first word of its description's second line ('label 415x422'). */
function aperioAssociatedName(description: unknown): string | null {
  if (typeof description !== 'string') return null;
  // OpenSlide splits on each of '\r' and '\n' (so "\r\n" leaves an empty second line: no name).
  const name = description.split(/[\r\n]/)[1]?.split(' ')[0];
  return name ? name : null;
}

/** Aperio's ImageDescription: a first line, then `key = value` fields separated by '|'. */
export function aperioFields(description: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of description.split('|').slice(1)) {
    const eq = part.indexOf('=');
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return fields;
}

function positiveNumber(text: string | undefined): number | null {
  if (text === undefined || text.trim() === '') return null;
  const v = Number(text);
  return Number.isFinite(v) && v > 0 ? v : null;
}

function aperioMpp(fields: Map<string, string>): [number, number] | null {
  const mpp = positiveNumber(fields.get('MPP'));
  return mpp === null ? null : [mpp, mpp];
}

/** Microns per pixel from XResolution/YResolution (pixels per unit) and ResolutionUnit (2 inch, 3 cm). */
export function resolutionMpp(ifd: Ifd, fail: (p: string) => never): [number, number] | null {
  const unit = scalar(ifd, TAG.ResolutionUnit, 'ResolutionUnit', fail, 2);
  const x = scalar(ifd, TAG.XResolution, 'XResolution', fail);
  const y = scalar(ifd, TAG.YResolution, 'YResolution', fail);
  const micronsPerUnit = unit === 3 ? 10_000 : unit === 2 ? 25_400 : null;
  if (micronsPerUnit === null || x === undefined || y === undefined || !(x > 0) || !(y > 0) || !Number.isFinite(x) || !Number.isFinite(y)) return null;
  return [micronsPerUnit / x, micronsPerUnit / y];
}

class JsSlide implements Slide {
  private readonly cache = new Map<string, Promise<Uint8Array>>();

  constructor(
    private readonly source: ByteSource,
    readonly info: SlideInfo,
    private readonly levels: TiledImage[],
    private readonly associated: Map<string, Ifd>,
    private readonly decoder: JpegDecoder,
  ) {}

  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<RgbImage> {
    checkRegion(this.info, level, x, y, width, height);
    const image = this.levels[level]!;
    const out = new Uint8Array(width * height * 3).fill(255);
    const { tileWidth: tw, tileHeight: th } = image;
    const x0 = Math.max(0, x);
    const y0 = Math.max(0, y);
    const x1 = Math.min(image.width, x + width);
    const y1 = Math.min(image.height, y + height);
    if (x1 <= x0 || y1 <= y0) return { width, height, data: out };
    const across = Math.ceil(image.width / tw);
    const jobs: Promise<void>[] = [];
    for (let ty = Math.floor(y0 / th); ty * th < y1; ty++) {
      for (let tx = Math.floor(x0 / tw); tx * tw < x1; tx++) {
        jobs.push(
          this.tile(image, level, ty * across + tx).then((pixels) => {
            if (!pixels) return;
            const cx0 = Math.max(x0, tx * tw);
            const cx1 = Math.min(x1, (tx + 1) * tw);
            for (let py = Math.max(y0, ty * th); py < Math.min(y1, (ty + 1) * th); py++) {
              const from = ((py - ty * th) * tw + (cx0 - tx * tw)) * 3;
              out.set(pixels.subarray(from, from + (cx1 - cx0) * 3), ((py - y) * width + (cx0 - x)) * 3);
            }
          }),
        );
      }
    }
    await Promise.all(jobs);
    return { width, height, data: out };
  }

  /** Tile `index` of a level as RGB8 of the full tile size, or null for a tile the file leaves out (white). */
  private tile(image: TiledImage, level: number, index: number): Promise<Uint8Array | null> {
    if (image.byteCounts[index] === 0 || image.offsets[index] === 0) return Promise.resolve(null);
    const key = `${level}/${index}`;
    let pending = this.cache.get(key);
    if (pending) {
      this.cache.delete(key);
      this.cache.set(key, pending);
      return pending;
    }
    pending = this.decodeTile(image, level, index);
    this.cache.set(key, pending);
    pending.catch(() => this.cache.delete(key));
    if (this.cache.size > CACHE_TILES) this.cache.delete(this.cache.keys().next().value as string);
    return pending;
  }

  private async decodeTile(image: TiledImage, level: number, index: number): Promise<Uint8Array> {
    const bytes = await this.source.read(image.offsets[index]!, image.byteCounts[index]!);
    const { tileWidth: tw, tileHeight: th } = image;
    if (image.compression === COMPRESSION_NONE) {
      if (bytes.length < tw * th * 3) throw new SlideError(this.source.name, `level ${level} tile ${index}: ${bytes.length} bytes, an uncompressed ${tw}×${th} RGB tile needs ${tw * th * 3}`);
      return bytes.subarray(0, tw * th * 3);
    }
    let decoded;
    try {
      decoded = await this.decoder(joinJpegTables(image.jpegTables, bytes), image.ycbcr);
    } catch (e) {
      throw new SlideError(this.source.name, `level ${level} tile ${index}: JPEG data could not be decoded (${String((e as Error).message ?? e).split('\n')[0]})`);
    }
    if (decoded.width !== tw || decoded.height !== th) throw new SlideError(this.source.name, `level ${level} tile ${index}: JPEG is ${decoded.width}×${decoded.height}, the TIFF says tiles are ${tw}×${th}`);
    return decoded.data;
  }

  async readAssociated(name: string): Promise<RgbImage> {
    const ifd = this.associated.get(name);
    if (!ifd) throw new SlideError(this.info.path, `no associated image '${name}' (it has: ${this.info.associatedImages.join(', ') || 'none'})`);
    return readStripped(this.source, ifd, this.decoder);
  }

  close(): void {
    this.cache.clear();
    void this.source.close?.();
  }
}

/** An untiled (stripped) RGB image: uncompressed, or JPEG strips. */
async function readStripped(source: ByteSource, ifd: Ifd, decoder: JpegDecoder): Promise<RgbImage> {
  const fail = (problem: string): never => {
    throw new SlideError(source.name, `image directory ${ifd.index}: ${problem}`);
  };
  const width = scalar(ifd, TAG.ImageWidth, 'ImageWidth', fail) ?? fail('ImageWidth is missing');
  const height = scalar(ifd, TAG.ImageLength, 'ImageLength', fail) ?? fail('ImageLength is missing');
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1 || width * height > 64 * 1024 * 1024) fail(`image size ${width}×${height} is not readable`);
  const rows = Math.min(height, scalar(ifd, TAG.RowsPerStrip, 'RowsPerStrip', fail, height)!);
  const offsets = numbers(ifd, TAG.StripOffsets, 'StripOffsets', fail) ?? fail('StripOffsets is missing');
  const counts = numbers(ifd, TAG.StripByteCounts, 'StripByteCounts', fail) ?? fail('StripByteCounts is missing');
  const compression = scalar(ifd, TAG.Compression, 'Compression', fail, 1);
  const ycbcr = scalar(ifd, TAG.Photometric, 'Photometric', fail, 2) === PHOTOMETRIC_YCBCR;
  const tables = ifd.tags.get(TAG.JPEGTables);
  const out = new Uint8Array(width * height * 3);
  const strips = Math.ceil(height / rows);
  if (offsets.length < strips || counts.length < strips) fail(`${offsets.length} strips for ${height} rows of ${rows}`);
  for (let s = 0; s < strips; s++) {
    if (offsets[s]! + counts[s]! > source.size) fail(`strip ${s} lies past the end of the file: truncated`);
    const bytes = await source.read(offsets[s]!, counts[s]!);
    const stripRows = Math.min(rows, height - s * rows);
    let pixels: Uint8Array;
    if (compression === COMPRESSION_NONE) pixels = bytes;
    else if (compression === COMPRESSION_JPEG) pixels = (await decoder(joinJpegTables(tables instanceof Uint8Array ? tables : undefined, bytes), ycbcr)).data;
    else return fail(`unsupported compression ${compression} of an associated image`);
    if (pixels.length < width * stripRows * 3) fail(`strip ${s} holds ${pixels.length} bytes, expected ${width * stripRows * 3}`);
    out.set(pixels.subarray(0, width * stripRows * 3), s * rows * width * 3);
  }
  return { width, height, data: out };
}
