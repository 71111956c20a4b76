/**
 * Image files → RGB8, the same way every time (sharp/libvips): EXIF orientation applied, alpha
 * flattened onto white, grayscale expanded to RGB, 16-bit scaled to 8-bit, embedded ICC profiles
 * converted to sRGB. Images whose size differs from the model's square `imageSize` are resized to
 * it with a warning (or refused); images smaller than a patch and decompression bombs are errors.
 *
 * `inspectImage` is the cheap check the dataset validation runs on every file before training:
 * the header (sharp metadata) plus a structural test that the file is complete (see there).
 *
 * Hostile files (test/fuzz/image.fuzz.test.ts): only PNG, JPEG, TIFF and WebP are read, told from
 * their first bytes before sharp sees the file; every failure is an ImageError naming the file. A
 * header declaring more than maxPixels pixels is refused before any decoding, so the pixel cap is
 * also the memory cap: decoding costs up to ~8 bytes per declared pixel (a 1 KB JPEG-compressed TIFF
 * declaring 20000², the default cap, peaks at 2.4 GB), and lowering maxPixels lowers it.
 */
import { open, stat } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo } from 'sharp';

/** File extensions read as images (lower case, with the dot); anything else is ignored. */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp'];

/** Default decompression-bomb cap: 20000² pixels. */
export const DEFAULT_MAX_PIXELS = 20000 * 20000;

// libvips' operation cache would keep recently decoded images alive: the loaders stream thousands
// of files and must hold only what they asked for.
sharp.cache(false);

export type MismatchPolicy = 'resize' | 'refuse';

export interface DecodeOptions {
  /** Side of the square images the model takes. */
  imageSize: number;
  /** What to do with an image of another size: resize it (with a warning) or refuse it. */
  onMismatch: MismatchPolicy;
  /** Receives the resize warnings; default console.warn. */
  warn?: (message: string) => void;
  /** Largest width·height accepted (default DEFAULT_MAX_PIXELS). */
  maxPixels?: number;
  /** When given, an image (before any resize) smaller than patchSize×patchSize is an error. */
  patchSize?: number;
}

export interface DecodedImage {
  /** width·height·3 bytes, RGB interleaved, row-major. */
  rgb: Uint8Array;
  width: number;
  height: number;
}

/** A problem with one image file; the message starts with the path. */
export class ImageError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'ImageError';
  }
}

/** True when `name` has one of IMAGE_EXTENSIONS (case-insensitive). */
export function isImageFile(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot >= 0 && IMAGE_EXTENSIONS.includes(name.slice(dot).toLowerCase());
}

/** Throws an ImageError naming `path` unless a width×height image holds one patchSize² patch. */
export function checkImageFitsPatch(path: string, width: number, height: number, patchSize: number): void {
  if (width < patchSize || height < patchSize) {
    throw new ImageError(path, `image is ${width}×${height}, smaller than one ${patchSize}×${patchSize} patch`);
  }
}

/** Throws an ImageError naming `path` and the cap when width·height is over maxPixels. */
export function checkPixelLimit(path: string, width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new ImageError(path, `image is ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels} pixels (decompression-bomb guard; raise maxPixels if it is genuine)`);
  }
}

/** What sharp said, on one line, without its stack. */
function sharpMessage(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n')[0]?.trim() || 'unknown error';
}

/** Maps an fs or sharp error on `path` to an ImageError with a plain description. */
export function describeReadError(path: string, e: unknown): ImageError {
  if (e instanceof ImageError) return e;
  const code = (e as { code?: string }).code;
  if (code === 'EACCES' || code === 'EPERM') return new ImageError(path, 'cannot read file: permission denied');
  if (code === 'ENOENT') return new ImageError(path, 'file does not exist');
  if (code === 'EISDIR') return new ImageError(path, 'is a folder, not an image file');
  if (code) return new ImageError(path, `cannot read file (${code}: ${sharpMessage(e)})`);
  const message = sharpMessage(e);
  if (/input file is missing/i.test(message)) return new ImageError(path, 'file does not exist');
  if (/unsupported image format/i.test(message)) return new ImageError(path, 'not an image, or its header is damaged (format not recognised)');
  if (/exceeds pixel limit/i.test(message)) return new ImageError(path, `over the pixel limit (${message})`);
  return new ImageError(path, `corrupt or truncated image (${message})`);
}

interface Header {
  format: string;
  /** Size with EXIF orientation applied. */
  width: number;
  height: number;
}

/** sharp's format name of a file from its first 12 bytes, for the four formats read; null otherwise. */
function sniffFormat(head: Uint8Array): string | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (head.length >= 8 && head[0] === 0x89 && ascii(1, 8) === 'PNG\r\n\x1a\n') return 'png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'jpeg';
  if (head.length >= 4 && ['II*\0', 'MM\0*', 'II+\0', 'MM\0+'].includes(ascii(0, 4))) return 'tiff';
  if (head.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return null;
}

async function readHeader(path: string, maxPixels: number): Promise<Header> {
  // Only PNG, JPEG, TIFF and WebP reach sharp: it would also render an SVG (or GIF, HEIF, …) named
  // .png, and a 300-byte SVG with a blur filter takes minutes to render.
  let head: Uint8Array;
  try {
    const handle = await open(path, 'r');
    try {
      const { bytesRead, buffer } = await handle.read(new Uint8Array(12), 0, 12, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (e) {
    throw describeReadError(path, e);
  }
  const sniffed = sniffFormat(head);
  if (!sniffed) throw new ImageError(path, 'not an image, or its header is damaged (not a PNG, JPEG, TIFF or WebP file)');
  let meta: Metadata;
  try {
    meta = await sharp(path, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw describeReadError(path, e);
  }
  if (meta.format !== sniffed) throw new ImageError(path, `not an image, or its header is damaged (starts like ${sniffed}, read as ${meta.format})`);
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new ImageError(path, 'image header has no size');
  checkPixelLimit(path, width, height, maxPixels);
  return { format: meta.format, width, height };
}

/**
 * Decodes `path` to RGB8 of imageSize×imageSize (see the file header for the normalisation).
 * Every error is an ImageError naming the file.
 */
export async function decodeImage(path: string, options: DecodeOptions): Promise<DecodedImage> {
  const { imageSize, onMismatch, maxPixels = DEFAULT_MAX_PIXELS } = options;
  const header = await readHeader(path, maxPixels);
  if (options.patchSize !== undefined) checkImageFitsPatch(path, header.width, header.height, options.patchSize);
  const mismatch = header.width !== imageSize || header.height !== imageSize;
  if (mismatch && onMismatch === 'refuse') {
    throw new ImageError(path, `image is ${header.width}×${header.height}, the model takes ${imageSize}×${imageSize} (resizing is turned off)`);
  }
  let pipeline = sharp(path, { limitInputPixels: maxPixels, failOn: 'warning' })
    .autoOrient()
    .flatten({ background: { r: 255, g: 255, b: 255 } });
  if (mismatch) pipeline = pipeline.resize(imageSize, imageSize, { fit: 'fill', kernel: 'lanczos3' });
  pipeline = pipeline.toColourspace('srgb').removeAlpha();
  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw describeReadError(path, e);
  }
  if (info.channels !== 3 || info.width !== imageSize || info.height !== imageSize || data.length !== imageSize * imageSize * 3) {
    throw new ImageError(path, `decoded to ${info.width}×${info.height}×${info.channels}, expected ${imageSize}×${imageSize}×3`);
  }
  if (mismatch) {
    (options.warn ?? console.warn)(resizeNote(path, header.width, header.height, imageSize));
  }
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

export interface InspectOptions {
  maxPixels?: number;
  /** Decode every pixel (as training will) instead of the structural completeness check. */
  fullDecode?: boolean;
}

export interface ImageHeader {
  format: string;
  width: number;
  height: number;
  bytes: number;
}

const TAIL_BYTES = 64 * 1024;

/**
 * Checks one file without decoding its pixels, and returns its format and (oriented) size.
 * Throws an ImageError naming the file for: a zero-byte file, an unreadable file, a non-image,
 * a corrupt header, more than maxPixels pixels, or an incomplete file. Completeness is checked
 * from the structure, reading at most 64 KiB more than the header: PNG must end with its IEND
 * chunk, JPEG must have an end-of-image marker after its first start-of-scan, WebP must be as
 * long as its RIFF header says. TIFF (and any other format sharp reads) has no such cheap test
 * and is fully decoded, as is every file when `fullDecode` (which also catches corruption inside
 * the compressed data, e.g. a flipped bit in a PNG's IDAT).
 */
export async function inspectImage(path: string, options: InspectOptions = {}): Promise<ImageHeader> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  let bytes: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new ImageError(path, 'is not a regular file');
    bytes = s.size;
  } catch (e) {
    throw describeReadError(path, e);
  }
  if (bytes === 0) throw new ImageError(path, 'empty file (0 bytes)');
  try {
    await (await open(path, 'r')).close(); // a permission problem is named as such, not as a bad image
  } catch (e) {
    throw describeReadError(path, e);
  }
  const header = await readHeader(path, maxPixels);
  const structural = !options.fullDecode && ['png', 'jpeg', 'webp'].includes(header.format);
  if (structural) {
    const problem = await structuralProblem(path, header.format, bytes);
    if (problem) throw new ImageError(path, problem);
  } else {
    try {
      await sharp(path, { limitInputPixels: maxPixels, failOn: 'warning' }).raw().toBuffer();
    } catch (e) {
      throw describeReadError(path, e);
    }
  }
  return { ...header, bytes };
}

async function structuralProblem(path: string, format: string, bytes: number): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw describeReadError(path, e);
  }
  try {
    const read = async (position: number, length: number): Promise<Uint8Array> => {
      const n = Math.max(0, Math.min(length, bytes - position));
      const buffer = new Uint8Array(n);
      const { bytesRead } = await handle.read(buffer, 0, n, position);
      return buffer.subarray(0, bytesRead);
    };
    const tailStart = Math.max(0, bytes - TAIL_BYTES);
    if (format === 'png') {
      const tail = await read(tailStart, TAIL_BYTES);
      return lastIndexOf(tail, PNG_IEND) < 0 ? 'truncated PNG (no IEND chunk at the end of the file)' : null;
    }
    if (format === 'webp') {
      const head = await read(0, 12);
      const riff = head.length >= 12 ? new DataView(head.buffer, head.byteOffset, 12).getUint32(4, true) + 8 : Infinity;
      return bytes < riff ? `truncated WebP (${bytes} bytes, its header says ${riff})` : null;
    }
    const sos = await jpegStartOfScan(read, bytes);
    if (sos < 0) return 'truncated or corrupt JPEG (no start-of-scan marker)';
    const tail = await read(Math.max(tailStart, sos), TAIL_BYTES);
    return lastIndexOf(tail, JPEG_EOI) < 0 ? 'truncated JPEG (no end-of-image marker after the image data)' : null;
  } finally {
    await handle.close();
  }
}

const PNG_IEND = Uint8Array.from([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
const JPEG_EOI = Uint8Array.from([0xff, 0xd9]);

function lastIndexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = haystack.length - needle.length; i >= 0; i--) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Byte offset just past the first SOS segment header of a JPEG, walking its marker segments; -1 if
 * none. Reads 64 KiB windows, not 4 bytes a marker: a file of fill bytes or empty segments would
 * otherwise cost one file read every few bytes (17 s for a 400 KB file).
 */
async function jpegStartOfScan(read: (position: number, length: number) => Promise<Uint8Array>, bytes: number): Promise<number> {
  let window: Uint8Array = new Uint8Array(0);
  let windowStart = 0;
  let pos = 2; // after SOI
  while (pos + 4 <= bytes) {
    if (pos < windowStart || pos + 4 > windowStart + window.length) {
      window = await read(pos, TAIL_BYTES);
      windowStart = pos;
    }
    const m = window.subarray(pos - windowStart, pos - windowStart + 4);
    if (m[0] !== 0xff) return -1;
    const marker = m[1] as number;
    if (marker === 0xff) {
      pos += 1; // fill byte
      continue;
    }
    if ((marker >= 0xd0 && marker <= 0xd8) || marker === 0x01) {
      pos += 2;
      continue;
    }
    const length = ((m[2] as number) << 8) | (m[3] as number);
    if (marker === 0xda) return pos + 2 + length;
    pos += 2 + length;
  }
  return -1;
}

/** decodeImage's note that `path` was resized to the model's size (resize_notes.ts counts them). */
function resizeNote(path: string, width: number, height: number, imageSize: number): string {
  return `${path}: image is ${width}×${height}, resized to ${imageSize}×${imageSize}`;
}

/** True for a note made by resizeNote. */
export function isResizeNote(message: string): boolean {
  return /: image is \d+×\d+, resized to \d+×\d+$/.test(message);
}
