/**
 * `lungpath tiles` (src/slide/cut.ts) on three test slides with QuPath annotations: the tiles and
 * classes expected from the known layout (computed here independently, with make_slide.ts's
 * point-in-polygon), the PNGs' pixels against the slide, the manifest, the split by slide that
 * `readDataset` (what `lungpath train` reads) keeps, idempotence and resuming, labels from a CSV,
 * and resampling to another resolution; then the command line itself.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cutTiles, type CutOptions } from '../../src/slide/cut.ts';
import { parseCsv } from '../../src/slide/labels.ts';
import { openSlide } from '../../src/slide/open.ts';
import type { SlideInfo } from '../../src/slide/slide.ts';
import { planGrid, selectTiles } from '../../src/slide/tiler.ts';
import type { TissueMask } from '../../src/slide/tissue.ts';
import { readDataset } from '../../src/train/dataset.ts';
import { insidePolygon, qupathGeoJson, standardRegions, writeTestSlide, type TestRegion } from './make_slide.ts';

let dir: string;
const slides: string[] = [];
const REGIONS = standardRegions(0.5); // in a 2048×2048 slide
const SIZE = 128;
const MPP = 1; // slides are 0.5 µm/px: a tile spans 256 level-0 pixels, read from level 1 unscaled

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-tiles-'));
  mkdirSync(join(dir, 'ann'));
  await Promise.all(
    ['alpha', 'beta', 'gamma'].map(async (name, i) => {
      const path = join(dir, `${name}.svs`);
      await writeTestSlide(path, { width: 2048, height: 2048, mpp: 0.5, format: 'svs', regions: REGIONS, seed: 10 + i });
      writeFileSync(join(dir, 'ann', `${name}.geojson`), qupathGeoJson(REGIONS));
      slides.push(path);
    }),
  );
  slides.sort();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const options = (out: string, extra: Partial<CutOptions> = {}): CutOptions => ({ slides, out, annotations: join(dir, 'ann'), size: SIZE, mpp: MPP, minTissue: 0.25, minInside: 0.5, concurrency: 4, ...extra });

/** Expected (class, x, y) of one slide's tiles: cells with ≥ half their 16×16 sample points in one class's polygons. */
function expectedTiles(regions: readonly TestRegion[], span: number, cells: number): string[] {
  const out: string[] = [];
  for (let row = 0; row < cells; row++) for (let col = 0; col < cells; col++) {
    for (const r of regions) {
      let n = 0;
      for (let j = 0; j < 16; j++) for (let i = 0; i < 16; i++) {
        const x = col * span + ((i + 0.5) * span) / 16, y = row * span + ((j + 0.5) * span) / 16;
        if (r.polygons.some((p) => insidePolygon(p, x, y))) n++;
      }
      if (n / 256 >= 0.5) out.push(`${r.className} ${col * span} ${row * span}`);
    }
  }
  return out.sort();
}

describe('tiles from annotated slides', () => {
  let out: string;
  let first: Awaited<ReturnType<typeof cutTiles>>;
  beforeAll(async () => {
    out = join(dir, 'ds');
    first = await cutTiles(options(out));
  });

  it('cuts the tiles and classes the annotations give, split by slide', async () => {
    const expected = expectedTiles(REGIONS, 256, 8);
    expect(expected.length).toBeGreaterThan(20);
    const rows = parseCsv(readFileSync(join(out, 'tiles.csv'), 'utf8')).filter((r) => r.length > 1);
    const header = rows[0]!;
    expect(header).toEqual(['file', 'slide', 'patient', 'split', 'class', 'level', 'x', 'y', 'span', 'size', 'mpp', 'tissue', 'inside', 'annotation']);
    const col = (name: string) => header.indexOf(name);
    const body = rows.slice(1);
    expect(body.length).toBe(3 * expected.length);
    expect(first.tiles).toBe(body.length);
    const splitOfSlide = new Map<string, string>();
    for (const name of ['alpha.svs', 'beta.svs', 'gamma.svs']) {
      const mine = body.filter((r) => r[col('slide')] === name);
      expect(mine.map((r) => `${r[col('class')]} ${r[col('x')]} ${r[col('y')]}`).sort()).toEqual(expected);
      const splits = new Set(mine.map((r) => r[col('split')]));
      expect(splits.size).toBe(1); // a slide's tiles are in one split
      splitOfSlide.set(name, [...splits][0]!);
      for (const r of mine) {
        expect([r[col('level')], r[col('span')], r[col('size')], r[col('mpp')]]).toEqual(['1', '256', String(SIZE), '1']);
        expect(Number(r[col('tissue')])).toBeGreaterThanOrEqual(0.25);
        expect(Number(r[col('inside')])).toBeGreaterThanOrEqual(0.5);
      }
    }
    expect([...splitOfSlide.values()].sort()).toEqual(['test', 'train', 'val']);
    // What lungpath train reads: the same files in the same splits, four classes.
    const ds = readDataset(out, { seed: 0 });
    expect(ds.layout).toBe('split');
    expect(ds.classes).toEqual(['ADC', 'NORM', 'SC', 'SCLC']);
    for (const split of ['train', 'val', 'test'] as const) {
      const files = ds.splits[split].map((i) => i.path);
      expect(files.length).toBe(expected.length);
      const slideNames = new Set(files.map((f) => f.split('/').pop()!.replace(/_x\d+_y\d+\.png$/, '')));
      expect(slideNames.size).toBe(1);
      expect(splitOfSlide.get(`${[...slideNames][0]}.svs`)).toBe(split);
    }
    expect(first.warnings).toEqual([]);
    expect(existsSync(join(out, 'masks', 'alpha.png'))).toBe(true);
  });

  it('a tile holds the slide region it names, pixel for pixel', async () => {
    const rows = parseCsv(readFileSync(join(out, 'tiles.csv'), 'utf8')).slice(1).filter((r) => r.length > 1);
    const row = rows.find((r) => r[1] === 'beta.svs' && r[4] === 'ADC')!;
    const [x, y] = [Number(row[6]), Number(row[7])];
    const { data, info } = await sharp(join(out, row[0]!)).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([SIZE, SIZE, 3]);
    const slide = await openSlide(join(dir, 'beta.svs'));
    const region = await slide.readRegion(1, x / 2, y / 2, SIZE, SIZE);
    slide.close();
    expect(Buffer.compare(Buffer.from(region.data), data)).toBe(0);
  });

  it('is idempotent: a second run writes nothing and the manifest is unchanged', async () => {
    const manifest = readFileSync(join(out, 'tiles.csv'));
    const again = await cutTiles(options(out));
    expect(again.written).toBe(0);
    expect(again.slides.every((s) => s.resumed)).toBe(true);
    expect(readFileSync(join(out, 'tiles.csv'))).toEqual(manifest);
  });

  it('resumes: a slide without its record gets only its missing tiles written', async () => {
    const manifest = readFileSync(join(out, 'tiles.csv'));
    unlinkSync(join(out, '.lungpath-tiles', 'gamma.json'));
    const split = first.slides.find((s) => s.slide.endsWith('gamma.svs'))!.split;
    const gone = readdirSync(join(out, split, 'NORM')).filter((f) => f.startsWith('gamma_')).slice(0, 3);
    for (const f of gone) unlinkSync(join(out, split, 'NORM', f));
    const again = await cutTiles(options(out));
    expect(again.written).toBe(3);
    expect(readFileSync(join(out, 'tiles.csv'))).toEqual(manifest);
  });

  it('refuses to mix settings in one dataset', async () => {
    await expect(cutTiles(options(out, { size: 64 }))).rejects.toThrow(/other settings \(size 128 → 64\)/);
  });
});

it('labels from a CSV: every tissue tile of a slide gets its label; patients keep their slides together', async () => {
  const csv = join(dir, 'labels.csv');
  writeFileSync(csv, 'slide,label,patient\nalpha.svs,ADC,p1\nbeta,SC,p1\ngamma.svs,NORM,p2\n');
  const out = join(dir, 'by-label');
  const summary = await cutTiles(options(out, { annotations: undefined, labels: csv, size: 256, mpp: undefined, minTissue: 0.5 }));
  const bySlide = new Map(summary.slides.map((s) => [s.slide.split('/').pop(), s]));
  expect(bySlide.get('alpha.svs')!.split).toBe(bySlide.get('beta.svs')!.split);
  expect(bySlide.get('alpha.svs')!.byClass).toEqual({ ADC: bySlide.get('alpha.svs')!.tiles });
  // 256-px tiles at level 0 (0.5 µm/px): an 8×8 grid; those at least half tissue.
  for (const s of summary.slides) {
    expect(s.level).toBe(0);
    expect(s.tiles).toBeGreaterThan(10);
    expect(s.tiles + s.lowTissue).toBe(64);
  }
});

it('resamples from the nearest finer level for an mpp between levels', async () => {
  const summary = await cutTiles(options(join(dir, 'resampled'), { slides: [slides[0]!], size: 64, mpp: 1.5 }));
  expect(summary.slides[0]!.level).toBe(1); // downsample 2 ≤ 3 < 4
  const file = readdirSync(join(dir, 'resampled', 'train', 'NORM'))[0]!;
  const meta = await sharp(join(dir, 'resampled', 'train', 'NORM', file)).metadata();
  expect([meta.width, meta.height]).toEqual([64, 64]);
});

it('lungpath tiles --json and lungpath slide info --json', () => {
  const cli = join(import.meta.dirname, '..', '..', 'bin', 'lungpath.js');
  const info = JSON.parse(execFileSync('node', [cli, 'slide', 'info', '--json', slides[0]!], { encoding: 'utf8' }));
  expect(info[0]).toMatchObject({ width: 2048, height: 2048, mpp: [0.5, 0.5], vendor: 'aperio' });
  expect(info[0].levels.map((l: { downsample: number }) => l.downsample)).toEqual([1, 2, 4, 8]);
  const out = join(dir, 'cli');
  const summary = JSON.parse(execFileSync('node', [cli, 'tiles', slides[0]!, '--out', out, '--annotations', join(dir, 'ann'), '--size', '128', '--mpp', '1', '--min-tissue', '0.25', '--json'], { encoding: 'utf8' }));
  expect(summary.tiles).toBe(expectedTiles(REGIONS, 256, 8).length);
  expect(summary.classes).toEqual(['ADC', 'NORM', 'SC', 'SCLC']);
});

describe('selectTiles (no slide needed)', () => {
  const info: SlideInfo = { path: 'fake.svs', reader: 'js', width: 1000, height: 1000, levels: [{ width: 1000, height: 1000, downsample: 1 }, { width: 500, height: 500, downsample: 2 }], mpp: [0.5, 0.5], vendor: 'aperio', objectivePower: 20, associatedImages: [] };
  const mask: TissueMask = { width: 10, height: 10, data: new Uint8Array(100).fill(1), scale: [100, 100], threshold: 0, level: 0 };
  const rect = (x0: number, y0: number, x1: number, y1: number) => [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] as [number, number][][];
  const region = (id: string, className: string, ...polygons: [number, number][][][]) => ({ id, className, polygons });

  it('plans the grid from the nearest finer level', () => {
    expect(planGrid(info, 100, 0.75)).toMatchObject({ level: 0, scale: 1.5, span: 150, across: 6, down: 6, mpp: 0.75 });
    expect(planGrid(info, 100, 1)).toMatchObject({ level: 1, scale: 2, span: 200, across: 5 });
    expect(planGrid(info, 100)).toMatchObject({ level: 0, scale: 1, span: 100, across: 10, mpp: 0.5 });
  });

  it("two adjacent annotations of one class count together; a cell in two classes is left out", () => {
    const grid = planGrid(info, 200);
    // Cell (0, 0) = [0, 200)²: split between two ADC halves → share 1 of the union (0.5 each alone).
    // Cell (1, 0) = [200, 400) × [0, 200): inside both an ADC and an SC annotation → ambiguous.
    const regions = [region('a', 'ADC', rect(0, 0, 100, 200)), region('b', 'ADC', rect(100, 0, 400, 200)), region('c', 'SC', rect(200, 0, 400, 200))];
    const selection = selectTiles(grid, mask, { regions }, { minTissue: 0.5, minInside: 0.75 });
    expect(selection.tiles.map((t) => [t.col, t.row, t.className, t.inside, t.annotation])).toEqual([[0, 0, 'ADC', 1, 'a+b']]);
    expect(selection.ambiguous).toBe(1);
  });
});
