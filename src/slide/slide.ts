/**
 * The whole-slide reader interface both readers implement (OpenSlide through FFI in Node,
 * openslide.ts; the pure-JavaScript TIFF/SVS reader, js_reader.ts), and the one error type they
 * throw. Coordinates are pixels of the level asked for, origin top left; pixels come back as RGB8,
 * interleaved, row-major; what lies outside the level reads as white (OpenSlide's transparent
 * pixels composited over white). A thumbnail of any slide: thumbnail.ts `slideThumbnail`.
 */

/** One pyramid level: its size and how many level-0 pixels one of its pixels spans. */
export interface SlideLevel {
  width: number;
  height: number;
  /** level-0 size / this size, averaged over x and y as OpenSlide computes it. */
  downsample: number;
}

/** An RGB8 image, interleaved, row-major. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type ReaderName = 'openslide' | 'js';

/** What `lungpath slide info` prints: the header of a slide, no pixels. */
export interface SlideInfo {
  path: string;
  reader: ReaderName;
  width: number;
  height: number;
  levels: SlideLevel[];
  /** Microns per level-0 pixel [x, y], or null when the file does not say. */
  mpp: [number, number] | null;
  /** OpenSlide's vendor names: 'aperio', 'generic-tiff', 'hamamatsu', 'mirax', … */
  vendor: string | null;
  objectivePower: number | null;
  associatedImages: string[];
}

/** An open slide. Close it when done (OpenSlide holds a handle and a tile cache). */
export interface Slide {
  readonly info: SlideInfo;
  /** `width`·`height` pixels of `level` from (x, y) in that level's pixels, RGB8. */
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<RgbImage>;
  /** An associated image ('thumbnail', 'label', 'macro', …) by name, RGB8. */
  readAssociated(name: string): Promise<RgbImage>;
  close(): void;
}

/** Any problem with a slide file; the message starts with the file's name. */
export class SlideError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'SlideError';
  }
}

/** Throws a SlideError unless (level, x, y, width, height) is a readable request on `info`. */
export function checkRegion(info: SlideInfo, level: number, x: number, y: number, width: number, height: number): void {
  if (!Number.isInteger(level) || level < 0 || level >= info.levels.length) {
    throw new SlideError(info.path, `level ${level} does not exist (the slide has levels 0..${info.levels.length - 1})`);
  }
  for (const [name, v] of [['x', x], ['y', y]] as const) {
    if (!Number.isSafeInteger(v)) throw new SlideError(info.path, `region ${name} ${v} is not an integer`);
  }
  for (const [name, v] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new SlideError(info.path, `region ${name} ${v} must be an integer ≥ 1`);
  }
  if (width * height > MAX_REGION_PIXELS) {
    throw new SlideError(info.path, `region ${width}×${height} is larger than the ${MAX_REGION_PIXELS} pixels one read may ask for`);
  }
}

/** One read returns at most this many pixels (RGB8: 192 MiB), so a bad request cannot exhaust memory. */
export const MAX_REGION_PIXELS = 64 * 1024 * 1024;

/** The level-0 downsample of a level of size (w, h) under level 0 of size (w0, h0), as OpenSlide computes it. */
export function levelDownsample(w0: number, h0: number, w: number, h: number): number {
  return (w0 / w + h0 / h) / 2;
}
