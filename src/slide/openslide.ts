/**
 * OpenSlide (Debian's libopenslide0, the field's standard reader: Aperio, Hamamatsu, MIRAX,
 * Philips, Leica, Ventana, generic tiled TIFF, …) called through koffi (FFI with prebuilt
 * binaries: no compiler). Node only. Reads run with koffi's async calls on libuv's thread pool
 * (OpenSlide handles are thread-safe), so several regions decode at once. OpenSlide's error
 * strings become SlideErrors naming the file.
 *
 * OpenSlide 3.4.1 (Debian bookworm) reports no mpp for generic tiled TIFF; like the JS reader, the
 * resolution tags it exposes as tiff.XResolution / tiff.ResolutionUnit are used then.
 */
import { createRequire } from 'node:module';
import { checkRegion, levelDownsample, SlideError, type RgbImage, type Slide, type SlideInfo, type SlideLevel } from './slide.ts';

type KoffiFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };
interface OpenSlideLib {
  version: string;
  detectVendor: (path: string) => string | null;
  open: (path: string) => unknown;
  close: (osr: unknown) => void;
  getError: (osr: unknown) => string | null;
  levelCount: (osr: unknown) => number;
  levelDimensions: (osr: unknown, level: number, w: BigInt64Array, h: BigInt64Array) => void;
  property: (osr: unknown, name: string) => string | null;
  associatedNames: (osr: unknown) => unknown;
  associatedDimensions: (osr: unknown, name: string, w: BigInt64Array, h: BigInt64Array) => void;
  readAssociated: KoffiFn;
  readRegion: KoffiFn;
  decodeStrings: (ptr: unknown) => string[];
}

/** The sonames tried, newest ABI first. */
const SONAMES = ['libopenslide.so.1', 'libopenslide.so.0', 'libopenslide.1.dylib', 'libopenslide.0.dylib', 'libopenslide-1.dll', 'libopenslide-0.dll'];

let loaded: OpenSlideLib | null | undefined;
let loadProblem = '';

/** The OpenSlide library, or null (with openslideProblem() saying why) when it cannot be loaded. */
export function loadOpenSlide(): OpenSlideLib | null {
  if (loaded !== undefined) return loaded;
  let koffi: typeof import('koffi');
  try {
    koffi = createRequire(import.meta.url)('koffi');
  } catch (e) {
    loadProblem = `the koffi package cannot be loaded (${(e as Error).message})`;
    return (loaded = null);
  }
  const errors: string[] = [];
  for (const soname of SONAMES) {
    try {
      const lib = koffi.load(soname);
      const f = (sig: string) => lib.func(sig) as unknown as KoffiFn;
      const getNames = f('void *openslide_get_associated_image_names(void *osr)');
      loaded = {
        version: (f('const char *openslide_get_version()')() as string) ?? 'unknown',
        detectVendor: f('const char *openslide_detect_vendor(const char *filename)') as unknown as OpenSlideLib['detectVendor'],
        open: f('void *openslide_open(const char *filename)'),
        close: f('void openslide_close(void *osr)') as unknown as OpenSlideLib['close'],
        getError: f('const char *openslide_get_error(void *osr)') as unknown as OpenSlideLib['getError'],
        levelCount: f('int32_t openslide_get_level_count(void *osr)') as unknown as OpenSlideLib['levelCount'],
        levelDimensions: f('void openslide_get_level_dimensions(void *osr, int32_t level, _Out_ int64_t *w, _Out_ int64_t *h)') as unknown as OpenSlideLib['levelDimensions'],
        property: f('const char *openslide_get_property_value(void *osr, const char *name)') as unknown as OpenSlideLib['property'],
        associatedNames: getNames,
        associatedDimensions: f('void openslide_get_associated_image_dimensions(void *osr, const char *name, _Out_ int64_t *w, _Out_ int64_t *h)') as unknown as OpenSlideLib['associatedDimensions'],
        readAssociated: f('void openslide_read_associated_image(void *osr, const char *name, _Out_ uint32_t *dest)'),
        readRegion: f('void openslide_read_region(void *osr, _Out_ uint32_t *dest, int64_t x, int64_t y, int32_t level, int64_t w, int64_t h)'),
        decodeStrings: (ptr) => {
          // A NULL-terminated array: decode growing prefixes, never reading past the terminator.
          if (!ptr) return [];
          for (let n = 1; n <= 64; n++) {
            const items = koffi.decode(ptr, koffi.array('const char *', n)) as (string | null)[];
            if (items[n - 1] === null) return items.slice(0, n - 1) as string[];
          }
          return [];
        },
      };
      return loaded;
    } catch (e) {
      errors.push(`${soname}: ${(e as Error).message}`);
    }
  }
  loadProblem = `libopenslide is not installed or cannot be loaded (run 'npm run setup', which installs Debian's libopenslide0). Tried ${errors.join('; ')}`;
  return (loaded = null);
}

/** Why loadOpenSlide() returned null. */
export function openslideProblem(): string {
  return loadProblem;
}

function callAsync(fn: KoffiFn, ...args: unknown[]): Promise<void> {
  return new Promise((resolve, reject) => fn.async(...args, (err: unknown) => (err ? reject(err) : resolve())));
}

/** ARGB (premultiplied, native-endian uint32) → RGB8 over white. */
function argbToRgb(argb: Uint32Array): Uint8Array {
  const rgb = new Uint8Array(argb.length * 3);
  for (let i = 0; i < argb.length; i++) {
    const p = argb[i]!;
    const white = 255 - (p >>> 24);
    rgb[3 * i] = ((p >>> 16) & 255) + white;
    rgb[3 * i + 1] = ((p >>> 8) & 255) + white;
    rgb[3 * i + 2] = (p & 255) + white;
  }
  return rgb;
}

/** Opens `path` with OpenSlide; a SlideError names the file when OpenSlide cannot read it. */
export function openOpenSlide(path: string): Slide {
  const lib = loadOpenSlide();
  if (!lib) throw new SlideError(path, openslideProblem());
  const vendor = lib.detectVendor(path);
  const osr = lib.open(path);
  if (!osr) throw new SlideError(path, vendor ? `OpenSlide detected a ${vendor} slide but could not open it` : 'not a slide format OpenSlide recognises');
  const error = lib.getError(osr);
  if (error) {
    lib.close(osr);
    throw new SlideError(path, `OpenSlide: ${error}`);
  }
  const levels: SlideLevel[] = [];
  const w = new BigInt64Array(1);
  const h = new BigInt64Array(1);
  const count = lib.levelCount(osr);
  for (let level = 0; level < count; level++) {
    lib.levelDimensions(osr, level, w, h);
    levels.push({ width: Number(w[0]), height: Number(h[0]), downsample: 0 });
  }
  if (levels.length === 0) {
    lib.close(osr);
    throw new SlideError(path, 'OpenSlide found no levels');
  }
  for (const l of levels) l.downsample = levelDownsample(levels[0]!.width, levels[0]!.height, l.width, l.height);
  const prop = (name: string) => lib.property(osr, name);
  const info: SlideInfo = {
    path,
    reader: 'openslide',
    width: levels[0]!.width,
    height: levels[0]!.height,
    levels,
    mpp: openslideMpp(prop),
    vendor: prop('openslide.vendor') ?? vendor,
    objectivePower: positive(prop('openslide.objective-power')),
    associatedImages: lib.decodeStrings(lib.associatedNames(osr)).sort(),
  };
  let open = true;
  const fail = (what: string): never => {
    const message = lib.getError(osr);
    throw new SlideError(path, `OpenSlide: ${message ?? 'unknown error'} (while reading ${what})`);
  };
  return {
    info,
    async readRegion(level, x, y, width, height): Promise<RgbImage> {
      checkRegion(info, level, x, y, width, height);
      if (!open) throw new SlideError(path, 'read after close');
      const argb = new Uint32Array(width * height);
      const ds = info.levels[level]!.downsample;
      // OpenSlide takes the top-left corner in level-0 pixels.
      await callAsync(lib.readRegion, osr, argb, Math.round(x * ds), Math.round(y * ds), level, width, height);
      if (lib.getError(osr)) fail(`level ${level} region ${width}×${height} at (${x}, ${y})`);
      return { width, height, data: argbToRgb(argb) };
    },
    async readAssociated(name): Promise<RgbImage> {
      if (!info.associatedImages.includes(name)) throw new SlideError(path, `no associated image '${name}' (it has: ${info.associatedImages.join(', ') || 'none'})`);
      lib.associatedDimensions(osr, name, w, h);
      const width = Number(w[0]);
      const height = Number(h[0]);
      const argb = new Uint32Array(width * height);
      await callAsync(lib.readAssociated, osr, name, argb);
      if (lib.getError(osr)) fail(`associated image '${name}'`);
      return { width, height, data: argbToRgb(argb) };
    },
    close() {
      if (open) lib.close(osr);
      open = false;
    },
  };
}

function positive(text: string | null): number | null {
  if (text === null) return null;
  const v = Number(text);
  return Number.isFinite(v) && v > 0 ? v : null;
}

function openslideMpp(prop: (name: string) => string | null): [number, number] | null {
  const x = positive(prop('openslide.mpp-x'));
  const y = positive(prop('openslide.mpp-y'));
  if (x !== null && y !== null) return [x, y];
  const unit = prop('tiff.ResolutionUnit');
  const rx = positive(prop('tiff.XResolution'));
  const ry = positive(prop('tiff.YResolution'));
  const micronsPerUnit = unit === 'centimeter' ? 10_000 : unit === 'inch' ? 25_400 : null;
  return micronsPerUnit !== null && rx !== null && ry !== null ? [micronsPerUnit / rx, micronsPerUnit / ry] : null;
}
