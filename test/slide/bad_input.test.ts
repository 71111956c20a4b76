/**
 * Bad input to the slide readers and `lungpath tiles`: each a clear error naming the file and what
 * is wrong, and nothing half-written left looking complete (no tiles.csv, no slide record).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutTiles, type CutOptions } from '../../src/slide/cut.ts';
import { openSlide } from '../../src/slide/open.ts';
import { qupathGeoJson, setShortTagEverywhere, standardRegions, writeTestSlide } from './make_slide.ts';

let dir: string;
const p = (name: string) => join(dir, name);
const REGIONS = standardRegions(0.25); // in a 1024×1024 slide

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-bad-'));
  await Promise.all([
    writeTestSlide(p('good.svs'), { width: 1024, height: 1024, mpp: 0.5, format: 'svs', regions: REGIONS }),
    writeTestSlide(p('nompp.tiff'), { width: 1024, height: 1024, mpp: null, format: 'tiff', regions: REGIONS }),
  ]);
  const good = readFileSync(p('good.svs'));
  writeFileSync(p('text.svs'), 'this is not a slide\n');
  writeFileSync(p('empty.svs'), '');
  writeFileSync(p('truncated.svs'), good.subarray(0, Math.floor(good.length / 2)));
  copyFileSync(p('good.svs'), p('j2k.svs'));
  setShortTagEverywhere(p('j2k.svs'), 259, 33003); // says JPEG 2000 (Aperio), holds JPEG
  const corrupt = Buffer.from(good);
  corrupt.fill(0x55, 20_000, Math.floor(good.length * 0.6)); // tile data overwritten, directories intact
  writeFileSync(p('corrupt.svs'), corrupt);
  mkdirSync(p('ann'));
  for (const name of ['good', 'nompp', 'corrupt']) writeFileSync(p(`ann/${name}.geojson`), qupathGeoJson(REGIONS));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The error `open` (and a read of level 0) throws, as text. */
async function readError(file: string, reader: 'openslide' | 'js' | 'auto'): Promise<string> {
  let slide;
  try {
    slide = await openSlide(p(file), { reader });
    await slide.readRegion(0, 0, 0, 1024, 1024);
  } catch (e) {
    return (e as Error).message;
  } finally {
    slide?.close();
  }
  return 'no error';
}

describe('slide files', () => {
  it.each([
    ['missing.svs', 'auto', /missing\.svs: file does not exist/],
    ['text.svs', 'openslide', /text\.svs: not a slide format OpenSlide recognises/],
    ['text.svs', 'js', /text\.svs: not a TIFF file \(it starts with bytes 74 68 69 73, not 'II' or 'MM'\)/],
    ['text.svs', 'auto', /text\.svs: not a slide format OpenSlide recognises; the JavaScript TIFF reader: not a TIFF file/],
    ['empty.svs', 'auto', /empty\.svs: file is empty/],
    ['truncated.svs', 'js', /truncated\.svs: image directory 0 .* lies past the end of the file .*truncated/],
    ['truncated.svs', 'auto', /truncated\.svs: .*truncated/],
    ['j2k.svs', 'js', /j2k\.svs: image directory 0: unsupported compression 33003 \(JPEG 2000 \(Aperio YCbCr\)\).*use --reader openslide/],
    ['j2k.svs', 'openslide', /j2k\.svs: OpenSlide: OpenJPEG error/],
    ['corrupt.svs', 'js', /corrupt\.svs: level 0 tile \d+: JPEG data could not be decoded/],
    ['corrupt.svs', 'openslide', /corrupt\.svs: OpenSlide: .*JPEG.*while reading level 0 region/],
    ['ann', 'auto', /ann: is a folder, not a slide file/],
  ] as const)('%s (%s reader)', async (file, reader, expected) => {
    expect(await readError(file, reader)).toMatch(expected);
  });
});

describe('lungpath tiles refuses bad input before writing anything', () => {
  const base = (extra: Partial<CutOptions>): CutOptions => ({ slides: [p('good.svs')], out: p(`out-${Math.random().toString(36).slice(2)}`), annotations: p('ann'), size: 64, minTissue: 0.5, minInside: 0.5, ...extra });
  const geojson = (name: string, features: unknown) => {
    mkdirSync(p(`ann-${name}`), { recursive: true });
    writeFileSync(p(`ann-${name}/good.geojson`), typeof features === 'string' ? features : JSON.stringify({ type: 'FeatureCollection', features }));
    return p(`ann-${name}`);
  };
  const feature = (name: string, coordinates: unknown, type = 'Polygon') => ({ type: 'Feature', geometry: { type, coordinates }, properties: { objectType: 'annotation', classification: { name } } });
  const square: number[][][] = [[[10, 10], [100, 10], [100, 100], [10, 100], [10, 10]]];

  it.each([
    ['a slide without mpp and --mpp', () => base({ slides: [p('nompp.tiff')], mpp: 1 }), /nompp\.tiff: the slide does not say its microns per pixel/],
    ['--mpp finer than the slide', () => base({ mpp: 0.25 }), /good\.svs: --mpp 0\.25 is finer than the slide's level 0 \(0\.5 µm\/px\)/],
    ['an unknown class', () => base({ annotations: geojson('class', [feature('Tumour', square)]), classes: ['NORM', 'ADC'] }), /good\.geojson: feature 0: class 'Tumour' is not one of the classes \(NORM, ADC\)/],
    ['a self-intersecting polygon', () => base({ annotations: geojson('bowtie', [feature('ADC', [[[10, 10], [100, 100], [100, 10], [10, 60], [10, 10]]])]) }), /good\.geojson: feature 0: self-intersecting geometry \(edges cross near \(42\.1, 42\.1\)\)/],
    ['a hole crossing its outer ring', () => base({ annotations: geojson('hole', [feature('ADC', [square[0], [[50, 50], [200, 50], [200, 60], [50, 60], [50, 50]]])]) }), /feature 0: self-intersecting geometry/],
    ['an unclosed ring', () => base({ annotations: geojson('open', [feature('ADC', [[[10, 10], [100, 10], [100, 100], [10, 100]]])]) }), /feature 0, outer ring: not closed/],
    ['a non-numeric position', () => base({ annotations: geojson('nan', [feature('ADC', [[[10, 10], [100, 'x'], [100, 100], [10, 10]]])]) }), /feature 0, outer ring: position 1 is \[100,"x"\], not \[x, y\]/],
    ['an annotation outside the slide', () => base({ annotations: geojson('outside', [feature('ADC', [[[2000, 10], [2100, 10], [2100, 100], [2000, 10]]])]) }), /good\.geojson: feature 0 \(ADC\): lies outside the slide: it spans x 2000\.\.2100, y 10\.\.100, the slide is 1024×1024/],
    ['not JSON', () => base({ annotations: geojson('json', '{"type": "FeatureCollection", ') }), /good\.geojson: not valid JSON/],
    ['not annotations', () => base({ annotations: geojson('kind', '{"type": "Point", "coordinates": [1, 2]}') }), /good\.geojson: not GeoJSON annotations/],
    ['no annotation file for a slide', () => base({ annotations: p('nowhere') }), /nowhere\/good\.geojson: no annotation file for slide/],
    ['a slide missing from the labels', () => base({ annotations: undefined, labels: (writeFileSync(p('l.csv'), 'slide,label\nother.svs,ADC\n'), p('l.csv')) }), /l\.csv: no row for slide good\.svs/],
    ['a labels file without a header', () => base({ annotations: undefined, labels: (writeFileSync(p('h.csv'), 'good.svs,ADC\n'), p('h.csv')) }), /h\.csv: line 1 must name the columns/],
    ['two problems at once', () => base({ slides: [p('text.svs'), p('good.svs')], annotations: geojson('two', [feature('ADC', [[[10, 10], [100, 10], [100, 100], [10, 100]]])]) }), /2 problems with the input:\n {2}.*text\.svs: not a slide.*\n {2}.*good\.geojson: feature 0, outer ring: not closed/],
  ])('%s', async (_, make, expected) => {
    const options = make();
    await expect(cutTiles(options)).rejects.toThrow(expected);
    expect(existsSync(options.out)).toBe(false);
  });

  it('a slide whose tiles cannot be decoded stops the run without a manifest or a record of that slide', async () => {
    for (const reader of ['js', 'openslide'] as const) {
      const options = base({ slides: [p('corrupt.svs')], reader, minTissue: 0.1 });
      await expect(cutTiles(options)).rejects.toThrow(/corrupt\.svs: /);
      expect(existsSync(join(options.out, 'tiles.csv'))).toBe(false);
      expect(existsSync(join(options.out, '.lungpath-tiles', 'corrupt.json'))).toBe(false);
    }
  });
});
