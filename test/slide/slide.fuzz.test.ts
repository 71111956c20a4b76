/**
 * Property-based fuzzing (fast-check, as test/fuzz/*) of the QuPath GeoJSON parser and of both slide
 * readers' header parsing.
 *
 * GeoJSON (src/slide/geojson.ts): for any JSON value, any string, and annotation files built from
 * random small polygons on a 0..12 integer grid (many touching, crossing and degenerate rings),
 * parseAnnotations either returns regions that are what the file holds — every ring closed, ≥ 4
 * finite positions, and, checked by a brute-force all-pairs test written here, no two non-adjacent
 * edges touching — or throws an AnnotationError whose message starts with the file's name; a ring
 * it calls self-intersecting has a crossing the brute-force test finds too.
 *
 * Readers: byte edits of a small valid SVS, half of them inside its header and directories, and
 * prefixes of it: the JS reader (over bytes in memory, pure-JS JPEG decoder, as in a browser) and
 * OpenSlide (through a temporary file) either open the file with sane levels and read a region, or
 * throw a SlideError naming the file. Never another exception, never a hang (withinMs).
 * Runs: fixed seeds, see test/fuzz/fuzz.ts for LUNGPATH_FUZZ_RUNS.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnnotationError, parseAnnotations } from '../../src/slide/geojson.ts';
import { openJsSlide } from '../../src/slide/js_reader.ts';
import { openOpenSlide } from '../../src/slide/openslide.ts';
import { SlideError, type Slide } from '../../src/slide/slide.ts';
import { bytesSource } from '../../src/slide/source.ts';
import { readTiff } from '../../src/slide/tiff.ts';
import { applyEdits, fuzzParameters, fuzzTimeout, Tally, withinMs, type ByteEdit } from '../fuzz/fuzz.ts';
import { standardRegions, writeTestSlide } from './make_slide.ts';

const NAME = 'fuzzed/annotations.geojson';
const MAX_MESSAGE = 5000;

type P = [number, number];

/** Brute force: do segments ab and cd share any point? */
function touch(a: P, b: P, c: P, d: P): boolean {
  const o = (p: P, q: P, r: P) => Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
  const on = (p: P, q: P, r: P) => Math.min(p[0], q[0]) <= r[0] && r[0] <= Math.max(p[0], q[0]) && Math.min(p[1], q[1]) <= r[1] && r[1] <= Math.max(p[1], q[1]);
  const [o1, o2, o3, o4] = [o(a, b, c), o(a, b, d), o(c, d, a), o(c, d, b)];
  if (o1 * o2 < 0 && o3 * o4 < 0) return true;
  return (o1 === 0 && on(a, b, c)) || (o2 === 0 && on(a, b, d)) || (o3 === 0 && on(c, d, a)) || (o4 === 0 && on(c, d, b));
}

/** Brute force over all pairs of non-adjacent edges of a polygon's rings. */
function bruteForceCrossing(rings: P[][]): boolean {
  const edges: [P, P, number, number, number][] = [];
  rings.forEach((ring, r) => {
    for (let i = 0; i + 1 < ring.length; i++) edges.push([ring[i]!, ring[i + 1]!, r, i, ring.length - 1]);
  });
  for (let i = 0; i < edges.length; i++) for (let j = i + 1; j < edges.length; j++) {
    const e = edges[i]!, f = edges[j]!;
    if (e[2] === f[2]) {
      const d = Math.abs(e[3] - f[3]);
      if (d === 1 || d === e[4] - 1) continue; // neighbours share a vertex
    }
    if (touch(e[0], e[1], f[0], f[1])) return true;
  }
  return false;
}

function checkParse(text: string, tally: Tally): void {
  const started = performance.now();
  let accepted = false;
  try {
    const parsed = parseAnnotations(NAME, text, { slideSize: { width: 12, height: 12 } });
    accepted = true;
    for (const region of parsed.regions) {
      expect(typeof region.className).toBe('string');
      expect(region.className.length).toBeGreaterThan(0);
      for (const polygon of region.polygons) {
        for (const ring of polygon) {
          expect(ring.length).toBeGreaterThanOrEqual(4);
          expect(ring[0]).toEqual(ring[ring.length - 1]);
          for (const p of ring) expect(Number.isFinite(p[0]) && Number.isFinite(p[1])).toBe(true);
        }
        expect(bruteForceCrossing(polygon as P[][])).toBe(false);
      }
    }
  } catch (e) {
    if (!(e instanceof AnnotationError)) throw e;
    expect(e.message.startsWith(`${NAME}: `)).toBe(true);
    expect(e.message.length).toBeLessThan(MAX_MESSAGE);
  }
  tally.add(accepted, performance.now() - started);
}

const gridPoint = fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 12 }));
const ring = fc.array(gridPoint, { minLength: 3, maxLength: 7 }).map((ps) => [...ps, ps[0]!]);
const polygon = fc.array(ring, { minLength: 1, maxLength: 3 });
const feature = fc.record({
  type: fc.constant('Feature'),
  geometry: fc.oneof(
    polygon.map((coordinates) => ({ type: 'Polygon', coordinates })),
    fc.array(polygon, { minLength: 1, maxLength: 3 }).map((coordinates) => ({ type: 'MultiPolygon', coordinates })),
  ),
  properties: fc.record({ objectType: fc.constantFrom('annotation', 'detection'), classification: fc.record({ name: fc.constantFrom('ADC', 'SC', ' ', 'NORM') }) }),
});

describe('GeoJSON parser', () => {
  it('random polygons: accepted rings do not cross (brute force), refused ones get an error naming the file', () => {
    const tally = new Tally('geojson polygons');
    fc.assert(fc.property(fc.array(feature, { maxLength: 4 }), (features) => checkParse(JSON.stringify({ type: 'FeatureCollection', features }), tally)), fuzzParameters(1201, 400));
    tally.report();
    expect(tally.accepted).toBeGreaterThan(10);
    expect(tally.refused).toBeGreaterThan(10);
  });

  it('a ring called self-intersecting has a crossing the brute-force test finds', () => {
    fc.assert(
      fc.property(ring, (r) => {
        try {
          parseAnnotations(NAME, JSON.stringify([{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [r] }, properties: { classification: { name: 'ADC' } } }]));
        } catch (e) {
          if (!(e instanceof AnnotationError)) throw e;
          if (/self-intersecting/.test(e.message)) expect(bruteForceCrossing([r as P[]]) || hasCollinearOverlap(r as P[])).toBe(true);
        }
      }),
      fuzzParameters(1202, 400),
    );
  });

  it('any JSON value and any string', () => {
    const tally = new Tally('geojson any');
    fc.assert(fc.property(fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string(), fc.jsonValue().map((v) => JSON.stringify({ type: 'FeatureCollection', features: [v] }))), (text) => checkParse(text, tally)), fuzzParameters(1203, 300));
    tally.report();
  });
});

/** Adjacent edges folding back over each other (a spike) are refused as self-intersecting too. */
function hasCollinearOverlap(ring: P[]): boolean {
  const n = ring.length - 1;
  for (let i = 0; i < n; i++) {
    const a = ring[i]!, b = ring[(i + 1) % n]!, c = ring[(i + 2) % n]!;
    const cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    const dot = (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]);
    if (cross === 0 && dot < 0) return true;
  }
  return false;
}

describe('slide readers on damaged headers', () => {
  let dir: string;
  let valid: Uint8Array;
  let focus: number[];
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lungpath-slidefuzz-'));
    await writeTestSlide(join(dir, 'small.svs'), { width: 512, height: 384, tileSize: 128, mpp: 0.5, format: 'svs', regions: standardRegions(0.1), quality: 60 });
    valid = new Uint8Array(readFileSync(join(dir, 'small.svs')));
    // Bytes where the parsers decide: the header and every directory (entries, and out-of-line values).
    const tiff = await readTiff(bytesSource('x', valid));
    focus = Array.from({ length: 16 }, (_, i) => i);
    for (const ifd of tiff.ifds) {
      const n = valid[ifd.offset]! | (valid[ifd.offset + 1]! << 8);
      for (let i = 0; i < 2 + 12 * n + 4; i++) focus.push(ifd.offset + i);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const edits = () =>
    fc.array(
      fc.record({ at: fc.oneof(fc.nat(), fc.nat(), fc.nat({ max: 1_000_000 })), op: fc.constantFrom<ByteEdit['op']>('set', 'xor', 'xor', 'set'), value: fc.integer({ min: 1, max: 255 }), focused: fc.boolean() }),
      { minLength: 1, maxLength: 6 },
    );
  const damaged = (list: { at: number; op: ByteEdit['op']; value: number; focused: boolean }[]) => applyEdits(valid, list.map(({ at, op, value, focused }) => ({ at: focused ? focus[at % focus.length]! : at, op, value })));

  async function exercise(slide: Slide): Promise<void> {
    const { levels } = slide.info;
    expect(levels.length).toBeGreaterThan(0);
    for (const l of levels) expect(Number.isSafeInteger(l.width) && l.width > 0 && Number.isSafeInteger(l.height) && l.height > 0).toBe(true);
    const last = levels.length - 1;
    try {
      await slide.readRegion(last, 0, 0, Math.min(64, levels[last]!.width), Math.min(64, levels[last]!.height));
    } catch (e) {
      if (!(e instanceof SlideError)) throw e;
    }
  }

  it('JS reader: opens and reads, or a SlideError naming the file', async () => {
    const tally = new Tally('js reader');
    await fc.assert(
      fc.asyncProperty(fc.oneof(edits().map(damaged), fc.nat().map((n) => valid.subarray(0, n % valid.length)), fc.uint8Array({ maxLength: 64 })), async (bytes) => {
        const started = performance.now();
        let accepted = false;
        try {
          const slide = await withinMs(2000, 'openJsSlide', () => openJsSlide(bytesSource('fuzzed.svs', bytes)));
          accepted = true;
          await withinMs(2000, 'readRegion', () => exercise(slide));
          slide.close();
        } catch (e) {
          if (!(e instanceof SlideError)) throw e;
          expect(e.message.startsWith('fuzzed.svs: ')).toBe(true);
        }
        tally.add(accepted, performance.now() - started);
      }),
      fuzzParameters(1204, 300),
    );
    tally.report();
    expect(tally.accepted).toBeGreaterThan(20);
    expect(tally.refused).toBeGreaterThan(20);
  }, fuzzTimeout(60_000));

  it('OpenSlide: opens and reads, or a SlideError naming the file', async () => {
    const tally = new Tally('openslide');
    const path = join(dir, 'fuzzed.svs');
    await fc.assert(
      fc.asyncProperty(fc.oneof(edits().map(damaged), fc.nat().map((n) => valid.subarray(0, n % valid.length))), async (bytes) => {
        writeFileSync(path, bytes);
        const started = performance.now();
        let accepted = false;
        try {
          const slide = openOpenSlide(path);
          accepted = true;
          await withinMs(2000, 'readRegion', () => exercise(slide));
          slide.close();
        } catch (e) {
          if (!(e instanceof SlideError)) throw e;
          expect(e.message.startsWith(`${path}: `)).toBe(true);
        }
        tally.add(accepted, performance.now() - started);
      }),
      fuzzParameters(1205, 120),
    );
    tally.report();
    expect(tally.accepted).toBeGreaterThan(5);
  }, fuzzTimeout(60_000));
});
