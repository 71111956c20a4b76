/**
 * Test slides made by the tests (no real slide can be downloaded here): pyramidal JPEG-tiled TIFFs
 * written by sharp/libvips, painted with the synthetic H&E generator (src/train/synth.ts) inside
 * known class regions on a light background, with low-saturation artefacts (grey dust and a grey
 * smear) that tissue detection must ignore, and the matching QuPath GeoJSON. `format: 'svs'`
 * adds an Aperio ImageDescription (MPP, AppMag) to the first directory, which makes OpenSlide read
 * the file as Aperio SVS; 'tiff' leaves a generic tiled TIFF whose mpp is in the resolution tags.
 *
 * Regions are polygons in level-0 pixels (outer ring, then holes), given per class; a texture of
 * the class (one 256-px synthetic image, repeated, its white space filled with pale stroma) fills
 * each region.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import sharp, { type OverlayOptions } from 'sharp';
import { renderSynthImage, SYNTH_CLASSES } from '../../src/train/synth.ts';

export type Ring = [number, number][];
/** A polygon: outer ring, then holes. */
export type Polygon = Ring[];

export interface TestRegion {
  className: string;
  /** One polygon, or several (a MultiPolygon). */
  polygons: Polygon[];
}

export interface TestSlideSpec {
  width: number;
  height: number;
  tileSize?: number;
  /** Microns per level-0 pixel; null writes no resolution (and no MPP field). */
  mpp: number | null;
  format: 'svs' | 'tiff';
  regions: TestRegion[];
  /** Grey dust specks and a grey smear (default true). */
  artefacts?: boolean;
  seed?: number;
  quality?: number;
}

export const BACKGROUND = { r: 241, g: 240, b: 238 };
/** Pale eosin-stained stroma (HSV saturation 0.25). */
const STROMA = [228, 172, 198];

/** Whether (x, y) lies inside a polygon with holes (even-odd over all rings). */
export function insidePolygon(polygon: Polygon, x: number, y: number): boolean {
  let inside = false;
  for (const ring of polygon) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [xi, yi] = ring[i]!;
      const [xj, yj] = ring[j]!;
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
  }
  return inside;
}

/** Whether (x, y) is inside any region's polygon; returns the class name or null. */
export function regionAt(regions: readonly TestRegion[], x: number, y: number): string | null {
  for (const r of regions) for (const p of r.polygons) if (insidePolygon(p, x, y)) return r.className;
  return null;
}

const textures = new Map<string, Uint8Array>();
/** The 256-px texture of a class: one synthetic image, white space filled with pale stroma. */
export function texture(className: string, seed: number): Uint8Array {
  const key = `${className}/${seed}`;
  let t = textures.get(key);
  if (!t) {
    const cls = Math.max(0, (SYNTH_CLASSES as readonly string[]).indexOf(className));
    t = renderSynthImage(cls, 256, seed + cls);
    // The generator clears white space (alveoli, lumens) at the scale of a 2560-px image; at slide
    // scale those would be large holes in the region. Fill them with pale stroma so that a region is
    // tissue throughout: the known layout the mask is checked against.
    for (let i = 0; i < t.length; i += 3) {
      const max = Math.max(t[i]!, t[i + 1]!, t[i + 2]!);
      const min = Math.min(t[i]!, t[i + 1]!, t[i + 2]!);
      if (max - min < 40) t.set(STROMA, i);
    }
    textures.set(key, t);
  }
  return t;
}

/** One RGBA overlay per polygon: the class texture where the polygon is, transparent elsewhere. */
function polygonOverlay(polygon: Polygon, className: string, seed: number): OverlayOptions {
  const xs = polygon[0]!.map((p) => p[0]);
  const ys = polygon[0]!.map((p) => p[1]);
  const left = Math.max(0, Math.floor(Math.min(...xs)));
  const top = Math.max(0, Math.floor(Math.min(...ys)));
  const w = Math.ceil(Math.max(...xs)) - left;
  const h = Math.ceil(Math.max(...ys)) - top;
  const tex = texture(className, seed);
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) {
    // Scanline even-odd fill at pixel centres: the same rule as insidePolygon, one row at a time.
    const py = top + y + 0.5;
    const crossings: number[] = [];
    for (const ring of polygon) {
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i]!;
        const [xj, yj] = ring[j]!;
        if (yi > py !== yj > py) crossings.push(((xj - xi) * (py - yi)) / (yj - yi) + xi);
      }
    }
    crossings.sort((a, b) => a - b);
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const x0 = Math.max(0, Math.ceil(crossings[k]! - 0.5 - left));
      const x1 = Math.min(w, Math.ceil(crossings[k + 1]! - 0.5 - left));
      const ty = ((top + y) % 256) * 256;
      for (let x = x0; x < x1; x++) {
        const t = (ty + ((left + x) % 256)) * 3;
        const o = (y * w + x) * 4;
        rgba[o] = tex[t]!;
        rgba[o + 1] = tex[t + 1]!;
        rgba[o + 2] = tex[t + 2]!;
        rgba[o + 3] = 255;
      }
    }
  }
  return { input: Buffer.from(rgba), raw: { width: w, height: h, channels: 4 }, left, top };
}

/** Grey, unsaturated marks: round dust specks and a long smear. */
function artefactOverlays(width: number, height: number, seed: number): OverlayOptions[] {
  const out: OverlayOptions[] = [];
  let s = seed >>> 0 || 1;
  const rand = () => ((s = Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 4294967296;
  const r = Math.max(4, Math.round(width / 400));
  for (let k = 0; k < 6; k++) {
    const d = 2 * r;
    const rgba = new Uint8Array(d * d * 4);
    for (let y = 0; y < d; y++) for (let x = 0; x < d; x++) {
      if ((x - r + 0.5) ** 2 + (y - r + 0.5) ** 2 > r * r) continue;
      rgba.set([96, 96, 98, 255], (y * d + x) * 4);
    }
    out.push({ input: Buffer.from(rgba), raw: { width: d, height: d, channels: 4 }, left: Math.floor(rand() * (width - d)), top: Math.floor(rand() * (height - d)) });
  }
  const sw = Math.floor(width / 3);
  const sh = Math.max(8, Math.floor(height / 80));
  const smear = new Uint8Array(sw * sh * 4);
  for (let i = 0; i < sw * sh; i++) smear.set([200, 200, 201, 255], i * 4);
  out.push({ input: Buffer.from(smear), raw: { width: sw, height: sh, channels: 4 }, left: Math.floor(width / 3), top: height - 2 * sh });
  return out;
}

/** Writes the slide to `path` (and nothing else). */
export async function writeTestSlide(path: string, spec: TestSlideSpec): Promise<void> {
  const { width, height, tileSize = 256, mpp, format, regions, artefacts = true, seed = 1, quality = 90 } = spec;
  const overlays: OverlayOptions[] = [];
  if (artefacts) overlays.push(...artefactOverlays(width, height, seed));
  for (const region of regions) for (const polygon of region.polygons) overlays.push(polygonOverlay(polygon, region.className, seed));
  const pxPerMm = mpp === null ? undefined : 1000 / mpp;
  await sharp({ create: { width, height, channels: 3, background: BACKGROUND }, limitInputPixels: false })
    .composite(overlays)
    .tiff({ tile: true, pyramid: true, compression: 'jpeg', quality, tileWidth: tileSize, tileHeight: tileSize, ...(pxPerMm ? { xres: pxPerMm, yres: pxPerMm, resolutionUnit: 'cm' as const } : {}) })
    .toFile(path);
  if (format === 'svs') {
    const fields = [`AppMag = ${mpp ? Math.round(10 / mpp) : 20}`, ...(mpp ? [`MPP = ${mpp}`] : [])];
    setImageDescription(path, `Aperio Image Library v12.0.5\r\n${width}x${height} [0,0 ${width}x${height}] (${tileSize}x${tileSize}) JPEG/RGB Q=${quality}|${fields.join('|')}`);
  }
  if (mpp === null) removeTags(path, [282, 283, 296]);
}

/** The QuPath GeoJSON export of `regions` (a FeatureCollection of annotations). */
export function qupathGeoJson(regions: readonly TestRegion[]): string {
  const features = regions.map((r, i) => ({
    type: 'Feature',
    id: `annotation-${i}`,
    geometry: r.polygons.length === 1 ? { type: 'Polygon', coordinates: closeRings(r.polygons[0]!) } : { type: 'MultiPolygon', coordinates: r.polygons.map(closeRings) },
    properties: { objectType: 'annotation', classification: { name: r.className, color: [200, 0, 0] } },
  }));
  return JSON.stringify({ type: 'FeatureCollection', features }, null, 1);
}

function closeRings(polygon: Polygon): Ring[] {
  return polygon.map((ring) => [...ring, ring[0]!]);
}

// ---- byte-level edits of classic little-endian TIFFs (what libvips writes) ----------------------

interface Entry {
  tag: number;
  type: number;
  count: number;
  value: Buffer; // the 4 value/offset bytes
}

function readIfd0(bytes: Buffer): { offset: number; entries: Entry[]; next: number } {
  const offset = bytes.readUInt32LE(4);
  const n = bytes.readUInt16LE(offset);
  const entries: Entry[] = [];
  for (let i = 0; i < n; i++) {
    const at = offset + 2 + 12 * i;
    entries.push({ tag: bytes.readUInt16LE(at), type: bytes.readUInt16LE(at + 2), count: bytes.readUInt32LE(at + 4), value: bytes.subarray(at + 8, at + 12) });
  }
  return { offset, entries, next: bytes.readUInt32LE(offset + 2 + 12 * n) };
}

/** Rewrites the first directory at the end of the file with `edit` applied (the old one is left unused). */
function rewriteIfd0(path: string, edit: (entries: Entry[], appendAt: number) => { entries: Entry[]; extra: Buffer }): void {
  const bytes = readFileSync(path);
  if (bytes.toString('latin1', 0, 2) !== 'II' || bytes.readUInt16LE(2) !== 42) throw new Error(`${path}: expected a little-endian classic TIFF`);
  const ifd = readIfd0(bytes);
  const { entries, extra } = edit(ifd.entries, bytes.length);
  entries.sort((a, b) => a.tag - b.tag);
  const pad = (bytes.length + extra.length) % 2;
  const start = bytes.length + extra.length + pad;
  const table = Buffer.alloc(2 + 12 * entries.length + 4);
  let at = 0;
  table.writeUInt16LE(entries.length, at);
  at += 2;
  for (const e of entries) {
    table.writeUInt16LE(e.tag, at);
    table.writeUInt16LE(e.type, at + 2);
    table.writeUInt32LE(e.count, at + 4);
    e.value.copy(table, at + 8);
    at += 12;
  }
  table.writeUInt32LE(ifd.next, at);
  const out = Buffer.concat([bytes, extra, Buffer.alloc(pad), table]);
  out.writeUInt32LE(start, 4);
  writeFileSync(path, out);
}

/** Sets the first directory's ImageDescription (tag 270). */
export function setImageDescription(path: string, text: string): void {
  rewriteIfd0(path, (entries, appendAt) => {
    const extra = Buffer.from(text + '\0', 'latin1');
    const value = Buffer.alloc(4);
    value.writeUInt32LE(appendAt, 0);
    return { entries: [...entries.filter((e) => e.tag !== 270), { tag: 270, type: 2, count: extra.length, value }], extra };
  });
}

/** Removes tags from the first directory. */
export function removeTags(path: string, tags: number[]): void {
  rewriteIfd0(path, (entries) => ({ entries: entries.filter((e) => !tags.includes(e.tag)), extra: Buffer.alloc(0) }));
}

/** Sets a SHORT tag of every directory to `value` (e.g. Compression 259 to 33003). */
export function setShortTagEverywhere(path: string, tag: number, value: number): void {
  const bytes = readFileSync(path);
  let offset = bytes.readUInt32LE(4);
  while (offset !== 0) {
    const n = bytes.readUInt16LE(offset);
    for (let i = 0; i < n; i++) {
      const at = offset + 2 + 12 * i;
      if (bytes.readUInt16LE(at) === tag && bytes.readUInt16LE(at + 2) === 3) bytes.writeUInt16LE(value, at + 8);
    }
    offset = bytes.readUInt32LE(offset + 2 + 12 * n);
  }
  writeFileSync(path, bytes);
}

/** The standard layout of a 4096×4096 test slide, in level-0 pixels: four classes, a hole, a multipolygon. */
export function standardRegions(scale = 1): TestRegion[] {
  const s = (ring: Ring): Ring => ring.map(([x, y]) => [x * scale, y * scale]);
  const rect = (x0: number, y0: number, x1: number, y1: number): Ring => s([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]);
  const circle: Ring = s(Array.from({ length: 32 }, (_, i) => [3000 + 700 * Math.cos((2 * Math.PI * i) / 32), 3000 + 700 * Math.sin((2 * Math.PI * i) / 32)] as [number, number]));
  return [
    { className: 'NORM', polygons: [[rect(256, 256, 1792, 1792), rect(768, 768, 1280, 1280)]] },
    { className: 'SCLC', polygons: [[s([[2304, 256], [3840, 256], [3840, 1536], [2304, 1792]])]] },
    { className: 'SC', polygons: [[rect(256, 2304, 1024, 3584)], [rect(1280, 2304, 1792, 3584)]] },
    { className: 'ADC', polygons: [[circle]] },
  ];
}

/**
 * Appends an uncompressed RGB image as a new last directory with ImageDescription `description`
 * (an Aperio associated image: 'label …' or 'macro …'), linked from the current last directory.
 */
export function appendAssociatedImage(path: string, description: string, rgb: Uint8Array, width: number, height: number): void {
  const bytes = readFileSync(path);
  let last = bytes.readUInt32LE(4);
  for (;;) {
    const n = bytes.readUInt16LE(last);
    const next = bytes.readUInt32LE(last + 2 + 12 * n);
    if (next === 0) break;
    last = next;
  }
  const text = Buffer.from(description + '\0', 'latin1');
  let at = bytes.length + (bytes.length % 2);
  const pixelsAt = at;
  at += rgb.length + (rgb.length % 2);
  const textAt = at;
  at += text.length + (text.length % 2);
  const bpsAt = at;
  at += 6 + 2;
  const ifdAt = at;
  const entries: [number, number, number, number][] = [
    [254, 4, 1, 1], [256, 4, 1, width], [257, 4, 1, height], [258, 3, 3, bpsAt], [259, 3, 1, 1], [262, 3, 1, 2], [270, 2, text.length, textAt],
    [273, 4, 1, pixelsAt], [277, 3, 1, 3], [278, 4, 1, height], [279, 4, 1, rgb.length], [284, 3, 1, 1],
  ];
  const ifd = Buffer.alloc(2 + 12 * entries.length + 4);
  ifd.writeUInt16LE(entries.length, 0);
  entries.forEach(([tag, type, count, value], i) => {
    ifd.writeUInt16LE(tag, 2 + 12 * i);
    ifd.writeUInt16LE(type, 4 + 12 * i);
    ifd.writeUInt32LE(count, 6 + 12 * i);
    if (type === 3 && count === 1) ifd.writeUInt16LE(value, 10 + 12 * i);
    else ifd.writeUInt32LE(value, 10 + 12 * i);
  });
  const bps = Buffer.alloc(8);
  [8, 8, 8].forEach((v, i) => bps.writeUInt16LE(v, 2 * i));
  const pad = (b: Buffer | Uint8Array) => Buffer.alloc(b.length % 2);
  const out = Buffer.concat([bytes, pad(bytes), Buffer.from(rgb), pad(rgb), text, pad(text), bps, ifd]);
  const lastN = out.readUInt16LE(last);
  out.writeUInt32LE(ifdAt, last + 2 + 12 * lastN);
  writeFileSync(path, out);
}
