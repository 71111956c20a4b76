/**
 * The two slide readers on slides written by the tests (make_slide.ts): levels, mpp, vendor and
 * objective power as written, and pixels. OpenSlide and the JS reader with sharp's libjpeg-turbo
 * decoder must return byte-identical RGB for the same region (both decode with libjpeg-turbo's
 * integer IDCT); the JS reader with the pure-JS decoder (jpeg-js, what a browser uses) differs by
 * at most 1 in a few percent of values (its IDCT rounds differently), which is checked and stated.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openJsSlide } from '../../src/slide/js_reader.ts';
import { openSlide } from '../../src/slide/open.ts';
import { loadOpenSlide } from '../../src/slide/openslide.ts';
import type { Slide } from '../../src/slide/slide.ts';
import { bytesSource } from '../../src/slide/source.ts';
import { readFileSync } from 'node:fs';
import { writeSparseSlide } from './sparse_tiff.ts';
import { appendAssociatedImage, BACKGROUND, regionAt, standardRegions, writeTestSlide } from './make_slide.ts';

let dir: string;
const paths = { svs: '', tiff: '', nompp: '' };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-readers-'));
  paths.svs = join(dir, 'a.svs');
  paths.tiff = join(dir, 'b.tiff');
  paths.nompp = join(dir, 'c.tiff');
  await Promise.all([
    writeTestSlide(paths.svs, { width: 4096, height: 4096, mpp: 0.5, format: 'svs', regions: standardRegions() }),
    writeTestSlide(paths.tiff, { width: 2048, height: 1536, mpp: 0.25, format: 'tiff', regions: standardRegions(0.375), seed: 2 }),
    writeTestSlide(paths.nompp, { width: 1024, height: 1024, mpp: null, format: 'tiff', regions: [], artefacts: false }),
  ]);
  appendAssociatedImage(paths.svs, 'Aperio Image Library v12.0.5\nlabel 60x40', LABEL, 60, 40);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The SVS's label: a diagonal gradient, uncompressed. */
const LABEL = Uint8Array.from({ length: 60 * 40 * 3 }, (_, i) => (Math.floor(i / 3) % 60) * 4 + (i % 3) * 20);

it('OpenSlide is installed (npm run setup installs libopenslide0)', () => {
  expect(loadOpenSlide()?.version).toMatch(/^\d/);
});

const CASES = [
  { name: 'svs', vendor: 'aperio', width: 4096, height: 4096, levels: 5, mpp: [0.5, 0.5], power: 20, associated: ['label'] },
  { name: 'tiff', vendor: 'generic-tiff', width: 2048, height: 1536, levels: 4, mpp: [0.25, 0.25], power: null, associated: [] },
  { name: 'nompp', vendor: 'generic-tiff', width: 1024, height: 1024, levels: 3, mpp: null, power: null, associated: [] },
] as const;

describe.each(['openslide', 'js'] as const)('%s reader', (reader) => {
  it.each(CASES)('$name: levels, mpp, vendor and objective power as written', async (c) => {
    const slide = await openSlide(paths[c.name], { reader });
    try {
      const { info } = slide;
      expect(info.reader).toBe(reader);
      expect([info.width, info.height, info.vendor, info.objectivePower, info.associatedImages]).toEqual([c.width, c.height, c.vendor, c.power, c.associated]);
      expect(info.levels.length).toBe(c.levels);
      info.levels.forEach((l, i) => {
        expect([l.width, l.height, l.downsample]).toEqual([Math.ceil(c.width / 2 ** i), Math.ceil(c.height / 2 ** i), 2 ** i]);
      });
      if (c.mpp === null) expect(info.mpp).toBeNull();
      else for (const k of [0, 1]) expect(info.mpp![k]).toBeCloseTo(c.mpp[k], 9);
    } finally {
      slide.close();
    }
  });

  it('reads the associated label image as written', async () => {
    const slide = await openSlide(paths.svs, { reader });
    const label = await slide.readAssociated('label');
    await expect(slide.readAssociated('macro')).rejects.toThrow(/a\.svs: no associated image 'macro' \(it has: label\)/);
    slide.close();
    expect([label.width, label.height]).toEqual([60, 40]);
    expect(Buffer.compare(Buffer.from(label.data), Buffer.from(LABEL))).toBe(0);
  });

  it('paints the known layout: background outside the regions, stained tissue inside', async () => {
    const slide = await openSlide(paths.svs, { reader });
    const { data } = await slide.readRegion(4, 0, 0, 256, 256);
    slide.close();
    const regions = standardRegions();
    let bgOk = 0, bgN = 0, tissueSat = 0, tissueN = 0;
    for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) {
      const cls = regionAt(regions, x * 16 + 8, y * 16 + 8);
      const i = (y * 256 + x) * 3;
      const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
      if (cls === null) {
        bgN++;
        if (Math.abs(r - BACKGROUND.r) + Math.abs(g - BACKGROUND.g) + Math.abs(b - BACKGROUND.b) < 12) bgOk++;
      } else {
        tissueN++;
        tissueSat += Math.max(r, g, b) - Math.min(r, g, b);
      }
    }
    expect(bgOk / bgN).toBeGreaterThan(0.9); // the rest: artefacts and JPEG ringing at region edges
    expect(tissueSat / tissueN).toBeGreaterThan(30);
  });
});

/** Largest absolute difference and share of differing values between two RGB regions. */
function compare(a: Uint8Array, b: Uint8Array): { max: number; differing: number } {
  expect(a.length).toBe(b.length);
  let max = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > max) max = d;
    if (d) n++;
  }
  return { max, differing: n / a.length };
}

// Regions in level pixels: whole levels, ones crossing tile edges at odd offsets, ones hanging off
// the level (read as white by both), one wholly outside.
const REGIONS = [
  [0, 200, 300, 1100, 700],
  [0, 4000, 4000, 200, 150],
  [1, 255, 1, 514, 257],
  [2, 0, 0, 1024, 1024],
  [3, -37, -5, 600, 300],
  [4, 0, 0, 256, 256],
  [4, 300, 300, 10, 10],
] as const;

describe('both readers return the same pixels', () => {
  let os: Slide, js: Slide, jsPure: Slide;
  beforeAll(async () => {
    os = await openSlide(paths.svs, { reader: 'openslide' });
    js = await openSlide(paths.svs, { reader: 'js' });
    jsPure = await openJsSlide(bytesSource(paths.svs, readFileSync(paths.svs)));
  });
  afterAll(() => [os, js, jsPure].forEach((s) => s.close()));

  it.each(REGIONS)('level %i at (%i, %i), %i×%i: OpenSlide = JS reader with libjpeg-turbo, byte for byte; jpeg-js within 1', async (level, x, y, w, h) => {
    const [a, b, c] = await Promise.all([os, js, jsPure].map((s) => s.readRegion(level, x, y, w, h)));
    expect(compare(a!.data, b!.data)).toEqual({ max: 0, differing: 0 });
    const pure = compare(a!.data, c!.data);
    console.log(`level ${level} (${x}, ${y}) ${w}×${h}: jpeg-js against OpenSlide: max difference ${pure.max}, ${(100 * pure.differing).toFixed(2)}% of values differ`);
    expect(pure.max).toBeLessThanOrEqual(1);
    expect(pure.differing).toBeLessThan(0.1);
  });

  it('the generic TIFF too (OpenSlide 3.4.1 generic-tiff reader)', async () => {
    const a = await openSlide(paths.tiff, { reader: 'openslide' });
    const b = await openSlide(paths.tiff, { reader: 'js' });
    for (let level = 0; level < a.info.levels.length; level++) {
      const { width, height } = a.info.levels[level]!;
      const [ra, rb] = await Promise.all([a.readRegion(level, 0, 0, width, height), b.readRegion(level, 0, 0, width, height)]);
      expect(compare(ra.data, rb.data)).toEqual({ max: 0, differing: 0 });
    }
    a.close();
    b.close();
  });
});

it('BigTIFF: both readers open it and return the same pixels', async () => {
  const path = join(dir, 'big.tiff');
  await writeSparseSlide(path, 2048, 0.5, [{ cx: 700, cy: 900, r: 400 }], true);
  expect(readFileSync(path).readUInt16LE(2)).toBe(43);
  const [a, b] = await Promise.all([openSlide(path, { reader: 'openslide' }), openSlide(path, { reader: 'js' })]);
  expect(a.info.levels).toEqual(b.info.levels);
  expect(b.info.levels.map((l) => l.width)).toEqual([2048, 1024, 512, 256]);
  expect(b.info.mpp).toEqual([0.5, 0.5]);
  const [ra, rb] = await Promise.all([a.readRegion(0, 200, 400, 1000, 1000), b.readRegion(0, 200, 400, 1000, 1000)]);
  expect(compare(ra.data, rb.data)).toEqual({ max: 0, differing: 0 });
  // These tiles are YCbCr 4:2:0 (sharp's JPEG): jpeg-js upsamples chroma by replication where
  // libjpeg-turbo interpolates ("fancy upsampling"), so it differs more than on the RGB tiles.
  const c = await openJsSlide(bytesSource(path, readFileSync(path)));
  const pure = compare(ra.data, (await c.readRegion(0, 200, 400, 1000, 1000)).data);
  console.log(`BigTIFF, YCbCr 4:2:0 tiles: jpeg-js against OpenSlide: max difference ${pure.max}, ${(100 * pure.differing).toFixed(2)}% of values differ`);
  expect(pure.max).toBeLessThanOrEqual(32); // measured 26, 47.6% of values: a known, stated difference
  a.close();
  b.close();
  c.close();
});
