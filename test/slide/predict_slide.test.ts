/**
 * `lungpath predict-slide` end to end with the bundled demo model (tiny preset, 256² tiles) on
 * synthetic slides whose class regions are known (mosaic_slide.ts): every output is written, the
 * per-tile classes and the heatmap match the painted regions (agreement stated), the QuPath GeoJSON
 * has what QuPath's importer reads, two shards run as two processes give exactly the unsharded
 * outputs, a done slide is skipped, a SIGKILLed run resumes from its last whole batch (a torn
 * last line dropped), and the resolution checks warn or refuse naming both resolutions.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSlide } from '../../src/slide/open.ts';
import { parseAnnotations } from '../../src/slide/geojson.ts';
import { pointInPolygon } from '../../src/slide/geometry.ts';
import { cellRegions } from '../../src/slide/grid_regions.ts';
import { resampleArea, resolveScale } from '../../src/slide/inference_grid.ts';
import type { SlideInfo } from '../../src/slide/slide.ts';
import { qupathGeoJson } from '../../src/train/slide_outputs.ts';
import { PROGRESS_FILE, type SlidePrediction } from '../../src/train/slide_predict.ts';
import { runMppFromManifest, runPredictSlide } from '../../src/train/commands/predict_slide.ts';
import { RunFolder } from '../../src/train/run_folder.ts';
import { demoRun, mosaicClassAt, writeMosaicSlide, type MosaicSpec } from './mosaic_slide.ts';

const run = promisify(execFile);
let dir: string;
let runDir: string;
// Seed 14: every painted cell is clearly tissue (≥ 36% by the mask). The generator's stain varies
// per image, and some images are too pale for the saturation mask (seed 11 since the one seed
// mixer: an SCLC cell at 0.1% tissue; 17: an SC cell at 0%), which this test is not about.
const MAIN: MosaicSpec = {
  cols: 6, rows: 6, cell: 256, mpp: 0.5, seed: 14,
  blocks: [
    { className: 'NORM', col: 0, row: 0, cols: 2, rows: 2 },
    { className: 'SCLC', col: 4, row: 0, cols: 2, rows: 2 },
    { className: 'SC', col: 0, row: 4, cols: 2, rows: 2 },
    { className: 'ADC', col: 3, row: 3, cols: 3, rows: 1 },
    { className: 'ADC', col: 4, row: 4, cols: 1, rows: 1 },
  ],
};
const small = (className: string, seed: number): MosaicSpec => ({ cols: 3, rows: 2, cell: 256, mpp: 0.5, seed, blocks: [{ className, col: 1, row: 0, cols: 2, rows: 1 }] });
const SLIDES = ['main.tiff', 'b.tiff', 'c.tiff'];
const OUTPUTS = ['tiles.csv', 'tiles.json', 'summary.json', 'heatmap.png', 'annotations.geojson', 'overlay.dzi', 'overlay_files', 'slide.dzi', 'slide_files', 'done.json'];

function cli(args: string[]) {
  // --min-tissue 0.1: synthetic NORM and ADC images are mostly white alveoli and lumens (one ADC
  // tile here is 23% tissue by the saturation mask).
  return run(process.execPath, ['bin/lungpath.js', 'predict-slide', '--min-tissue', '0.1', ...args], { encoding: 'utf8', maxBuffer: 1 << 24 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-predict-slide-'));
  runDir = demoRun(join(dir, 'run'));
  await Promise.all([writeMosaicSlide(join(dir, 'main.tiff'), MAIN), writeMosaicSlide(join(dir, 'b.tiff'), small('SC', 12)), writeMosaicSlide(join(dir, 'c.tiff'), small('NORM', 13))]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('predict-slide through the CLI', () => {
  let full: string, sharded: string, killed: string;
  let killedRun: Promise<unknown>;
  let fullFailure: { code: number; stderr: string };
  beforeAll(async () => {
    full = join(dir, 'full');
    sharded = join(dir, 'sharded');
    killed = join(dir, 'killed');
    const slides = SLIDES.map((s) => join(dir, s));
    // A run SIGKILLed after its 2nd batch of 4 tiles (fault hook in slide_predict.ts).
    killedRun = run(process.execPath, ['bin/lungpath.js', 'predict-slide', '--min-tissue', '0.1', '--batch-size', '4', '--run', runDir, '--out', killed, join(dir, 'main.tiff')], {
      encoding: 'utf8',
      env: { ...process.env, LUNGPATH_FAULT_KILL_AFTER_BATCHES: '2' },
    }).then(
      () => 'exited',
      (e: { signal?: string }) => e.signal ?? 'failed',
    );
    // One unsharded run (with a file that is not a slide among the slides) and two shards, as
    // three processes at once.
    writeFileSync(join(dir, 'notes.svs'), 'not a slide');
    const [, fullRun] = await Promise.all([
      killedRun,
      cli(['--run', runDir, '--out', full, '--json', ...slides, join(dir, 'notes.svs')]).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      ),
      cli(['--run', runDir, '--out', sharded, '--shard', '0/2', ...slides]),
      cli(['--run', runDir, '--out', sharded, '--shard', '1/2', ...slides]),
    ]);
    fullFailure = fullRun;
  }, 240_000);

  it('reports a file that is not a slide by name, exits 1, and still does the other slides', () => {
    expect(fullFailure.code).toBe(1);
    expect(fullFailure.stderr).toMatch(/lungpath predict-slide: .*notes\.svs: /);
    expect(existsSync(join(full, 'notes'))).toBe(false);
    for (const s of SLIDES) expect(existsSync(join(full, s.replace('.tiff', ''), 'done.json'))).toBe(true);
  });

  it('writes every output for every slide, and the tiles match the painted classes', async () => {
    for (const s of SLIDES) for (const f of OUTPUTS) expect(existsSync(join(full, s.replace('.tiff', ''), f)), `${s}: ${f}`).toBe(true);
    const out = join(full, 'main');
    expect(existsSync(join(out, PROGRESS_FILE))).toBe(false);
    const [header, ...rows] = readFileSync(join(out, 'tiles.csv'), 'utf8').trim().split('\n');
    expect(header).toBe('x,y,width,height,tissue,p_ADC,p_NORM,p_SC,p_SCLC,class');
    const painted = MAIN.blocks.reduce((n, b) => n + b.cols * b.rows, 0);
    expect(rows.length).toBe(painted);
    let agree = 0;
    for (const row of rows) {
      const f = row.split(',');
      const [x, y, w, h] = f.slice(0, 4).map(Number);
      expect([x! % 256, y! % 256, w, h]).toEqual([0, 0, 256, 256]);
      const p = f.slice(5, 9).map(Number);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(f[9]).toBe(['ADC', 'NORM', 'SC', 'SCLC'][p.indexOf(Math.max(...p))]);
      if (f[9] === mosaicClassAt(MAIN, x! / 256, y! / 256)) agree++;
    }
    console.log(`predict-slide: ${agree}/${rows.length} tiles classified as their painted class`);
    expect(agree / rows.length).toBeGreaterThanOrEqual(0.9);

    // The heatmap: every tissue cell tinted by the colour of its predicted class, background cells untouched.
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    const png = await sharp(join(out, 'heatmap.png')).raw().toBuffer({ resolveWithObject: true });
    // The untinted picture under the tint: the slide resized as heatmap.png's base is.
    const slide = await openSlide(join(dir, 'main.tiff'));
    const level0 = await slide.readRegion(0, 0, 0, 1536, 1536);
    slide.close();
    const base = await sharp(level0.data, { raw: { width: 1536, height: 1536, channels: 3 } }).resize(1024, 1024, { fit: 'fill' }).raw().toBuffer();
    const thumb = 1024 / 1536;
    const colours: Record<string, number[]> = { ADC: [0, 114, 178], NORM: [213, 94, 0], SC: [0, 158, 115], SCLC: [204, 121, 167] };
    let heatAgree = 0;
    for (let row = 0; row < MAIN.rows; row++) for (let col = 0; col < MAIN.cols; col++) {
      const cx = Math.round((col + 0.5) * 256 * thumb), cy = Math.round((row + 0.5) * 256 * thumb);
      const heat = [0, 0, 0], under = [0, 0, 0];
      for (let dy = -8; dy <= 8; dy++) for (let dx = -8; dx <= 8; dx++) for (let c = 0; c < 3; c++) {
        heat[c] += png.data[((cy + dy) * png.info.width + cx + dx) * png.info.channels + c]! / 289;
        under[c] += base[((cy + dy) * 1024 + cx + dx) * 3 + c]! / 289;
      }
      const truth = mosaicClassAt(MAIN, col, row);
      if (truth === null) {
        expect(dist(heat, under)).toBeLessThan(3); // background: not tinted
        continue;
      }
      // heat = (1 − a)·under + a·colour: the class colour that explains the tint best (least squares in a).
      const residual = (colour: number[]) => {
        const d = colour.map((v, c) => v - under[c]!), h = heat.map((v, c) => v - under[c]!);
        const a = Math.min(1, Math.max(0, h.reduce((s, v, c) => s + v * d[c]!, 0) / d.reduce((s, v) => s + v * v, 0)));
        return dist(h, d.map((v) => a * v));
      };
      const nearest = Object.entries(colours).sort((a, b) => residual(a[1]) - residual(b[1]))[0]![0];
      if (nearest === truth) heatAgree++;
    }
    console.log(`heatmap.png: ${heatAgree}/${rows.length} tissue cells tinted by their painted class's colour`);
    expect(heatAgree / rows.length).toBeGreaterThanOrEqual(0.9);
    expect(summary.call).toBe(Object.entries(summary.areas as Record<string, { pixels: number }>).sort((a, b) => b[1].pixels - a[1].pixels)[0]![0]);
    expect(summary.rule).toMatch(/plurality by tissue area/);
    expect(summary.tiles).toBe(rows.length);

    // Deep Zoom: the .dzi names the image size, and the top level's tiles exist.
    const dzi = readFileSync(join(out, 'overlay.dzi'), 'utf8');
    expect(dzi).toMatch(/Format="png"/);
    expect([/Width="(\d+)"/.exec(dzi)?.[1], /Height="(\d+)"/.exec(dzi)?.[1]]).toEqual(['1536', '1536']);
    const levels = readdirSync(join(out, 'overlay_files')).filter((n) => /^\d+$/.test(n)).map(Number);
    expect(Math.max(...levels)).toBe(Math.ceil(Math.log2(1536)));
    expect(readdirSync(join(out, 'overlay_files', String(Math.max(...levels))))).toHaveLength(36);
    expect(readFileSync(join(out, 'slide.dzi'), 'utf8')).toMatch(/Width="1536"/);
  });

  it('writes GeoJSON that QuPath imports: class regions and tiles with classification and measurements', () => {
    const out = join(full, 'main');
    const text = readFileSync(join(out, 'annotations.geojson'), 'utf8');
    const geo = JSON.parse(text);
    const rows = readFileSync(join(out, 'tiles.csv'), 'utf8').trim().split('\n').slice(1).map((r) => r.split(','));
    expect(geo.type).toBe('FeatureCollection');
    const tiles = geo.features.filter((f: any) => f.properties.objectType === 'tile');
    expect(tiles).toHaveLength(rows.length);
    // The class regions, read back by the annotation parser of part 1 (checks rings, closure,
    // self-intersection, bounds): each grid cell lies in the region of its predicted class only.
    const classes = ['ADC', 'NORM', 'SC', 'SCLC'];
    const parsed = parseAnnotations('annotations.geojson', text, { slideSize: { width: 1536, height: 1536 }, classes });
    const predicted = new Map(rows.map((r) => [`${Number(r[0]) / 256},${Number(r[1]) / 256}`, r[9]]));
    expect(parsed.regions.map((r) => r.className).sort()).toEqual([...new Set(predicted.values())].sort());
    for (let row = 0; row < MAIN.rows; row++) for (let col = 0; col < MAIN.cols; col++) {
      const inside = parsed.regions.filter((r) => r.polygons.some((p) => pointInPolygon(p, (col + 0.5) * 256, (row + 0.5) * 256))).map((r) => r.className);
      expect(inside, `cell ${col},${row}`).toEqual(predicted.has(`${col},${row}`) ? [predicted.get(`${col},${row}`)] : []);
    }
    tiles.forEach((f: any, i: number) => {
      const [x, y, w] = rows[i]!.slice(0, 3).map(Number);
      expect(f.type).toBe('Feature');
      expect(f.geometry).toEqual({ type: 'Polygon', coordinates: [[[x, y], [x! + w!, y], [x! + w!, y! + w!], [x, y! + w!], [x, y]]] });
      expect(f.properties.objectType).toBe('tile');
      expect(f.properties.classification.name).toBe(rows[i]![9]);
      expect(f.properties.classification.color).toHaveLength(3);
      expect(f.properties.measurements['NORM probability']).toBe(Number(rows[i]![6]));
      for (const v of Object.values(f.properties.measurements)) expect(Number.isFinite(v)).toBe(true);
    });
  });

  it('two shards, as two processes, give exactly the unsharded outputs; a done slide is skipped', async () => {
    const names = SLIDES.map((s) => s.replace('.tiff', ''));
    expect(readdirSync(sharded).sort()).toEqual([...names].sort());
    for (const n of names) {
      for (const f of ['tiles.csv', 'annotations.geojson']) expect(readFileSync(join(sharded, n, f), 'utf8'), `${n}/${f}`).toBe(readFileSync(join(full, n, f), 'utf8'));
      expect(existsSync(join(sharded, n, 'done.json'))).toBe(true);
    }
    // Shard 0/2 again: its slides are done, so nothing is rewritten.
    const before = statSync(join(sharded, 'b', 'tiles.csv')).mtimeMs;
    const lines: string[] = [];
    const log = console.log;
    console.log = (m: string) => lines.push(m);
    try {
      expect(await runPredictSlide(['--min-tissue', '0.1', '--run', runDir, '--out', sharded, '--shard', '0/2', ...SLIDES.map((s) => join(dir, s))])).toBe(0);
    } finally {
      console.log = log;
    }
    expect(lines.join('\n')).toMatch(/already done/);
    expect(statSync(join(sharded, 'b', 'tiles.csv')).mtimeMs).toBe(before);
  });

  it('a killed run resumes after its last whole batch (a torn last line dropped) and ends as an uninterrupted one', async () => {
    expect(await killedRun).toBe('SIGKILL');
    const out = join(killed, 'main');
    expect(existsSync(join(out, 'done.json'))).toBe(false);
    expect(readFileSync(join(out, PROGRESS_FILE), 'utf8').trim().split('\n')).toHaveLength(3); // fingerprint + 2 batches
    appendFileSync(join(out, PROGRESS_FILE), '{"rows":[[3,[0.1'); // a write cut short
    const { stdout } = await cli(['--batch-size', '4', '--run', runDir, '--out', killed, join(dir, 'main.tiff')]);
    expect(stdout).toMatch(/16 tiles \(8 resumed\)/);
    const rows = (d: string) => readFileSync(join(d, 'main', 'tiles.csv'), 'utf8').trim().split('\n').map((r) => r.split(','));
    const expected = rows(full), got = rows(killed);
    expect(got.map((r) => [...r.slice(0, 5), r[9]])).toEqual(expected.map((r) => [...r.slice(0, 5), r[9]]));
    // Batches of 4 instead of 8 may pick other kernel versions: equal within float rounding.
    got.slice(1).forEach((r, i) => r.slice(5, 9).forEach((p, c) => expect(Math.abs(Number(p) - Number(expected[i + 1]![5 + c]))).toBeLessThan(1e-6)));
  });
});

function dist(a: number[], b: number[]): number {
  return a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
}

describe('resolution and resampling', () => {
  const info = { path: 's.svs', mpp: [0.25, 0.25] } as SlideInfo;

  it('warns naming both resolutions, refuses past the stated factors', () => {
    const warnings: string[] = [];
    expect(resolveScale(info, 0.5, (m) => warnings.push(m))).toEqual({ scale: 2, mpp: 0.5 });
    expect(warnings[0]).toMatch(/0\.5 µm\/px.*0\.25 µm\/px/);
    expect(resolveScale(info, 0.26, () => {})).toEqual({ scale: 1, mpp: 0.26 }); // within 5%
    expect(() => resolveScale(info, 0.1, () => {})).toThrow(/s\.svs: .*0\.1 µm\/px.*finer.*0\.25 µm\/px/);
    expect(() => resolveScale(info, 8, () => {})).toThrow(/s\.svs: .*32× coarser/);
  });

  it("reads the run's resolution from its dataset manifest (the tiles.csv of lungpath tiles)", () => {
    const data = join(dir, 'dataset');
    mkdirSync(data, { recursive: true });
    const runFolder = new RunFolder(join(dir, 'manifest-run'));
    mkdirSync(runFolder.dir, { recursive: true });
    expect(runMppFromManifest(runFolder, () => {})).toBeNull(); // no train.json
    runFolder.writeTrainInfo({ data, seed: 1, command: 'train' });
    expect(runMppFromManifest(runFolder, () => {})).toBeNull(); // no manifest
    writeFileSync(join(data, 'tiles.csv'), 'file,slide,mpp,tissue\na.png,s1,0.5,1\nb.png,s2,0.5,0.9\n');
    expect(runMppFromManifest(runFolder, () => {})).toBe(0.5);
    writeFileSync(join(data, 'tiles.csv'), 'file,slide,mpp,tissue\na.png,s1,0.5,1\nb.png,s2,1,0.9\n');
    const warnings: string[] = [];
    expect(runMppFromManifest(runFolder, (m) => warnings.push(m))).toBe(0.5);
    expect(warnings[0]).toMatch(/tiles\.csv: tiles of several resolutions \(0\.5, 1 µm\/px\)/);
  });

  it('area resampling by 2 is the mean of each 2×2 block; by 1 the identity', () => {
    const data = new Uint8Array(8 * 8 * 3).map((_, i) => (i * 37) % 256);
    const half = resampleArea({ width: 8, height: 8, data }, 0, 0, 8, 4);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) for (let c = 0; c < 3; c++) {
      const at = (yy: number, xx: number) => data[(yy * 8 + xx) * 3 + c]!;
      expect(half[(y * 4 + x) * 3 + c]).toBe(Math.round((at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4));
    }
    expect(resampleArea({ width: 8, height: 8, data }, 0, 0, 8, 8)).toEqual(data);
  });
});

describe('class regions from grid cells', () => {
  it('traces a ring with a hole, and keeps cells touching at a corner apart', () => {
    const ring = new Set<string>();
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) if (r !== 1 || c !== 1) ring.add(`${c},${r}`);
    ring.add('3,3'); // touches the ring only at the corner (3, 3)
    const polygons = cellRegions(ring);
    expect(polygons).toHaveLength(2);
    const big = polygons.find((p) => p.length === 2)!;
    expect(big[0]).toEqual([[0, 0], [3, 0], [3, 3], [0, 3], [0, 0]]);
    expect(big[1]).toHaveLength(5);
    expect(new Set(big[1]!.map((p) => p.join(',')))).toEqual(new Set(['1,1', '2,1', '2,2', '1,2']));
    expect(polygons.find((p) => p.length === 1)![0]).toEqual([[3, 3], [4, 3], [4, 4], [3, 4], [3, 3]]);
    // Every cell centre is inside exactly when it is one of the cells.
    for (let r = -1; r < 5; r++) for (let c = -1; c < 5; c++) {
      const inside = polygons.some((p) => pointInPolygon(p as [number, number][][], c + 0.5, r + 0.5));
      expect(inside, `${c},${r}`).toBe(ring.has(`${c},${r}`));
    }
  });
});

describe('overlapping tiles (--stride below the tile size)', () => {
  it('give each tile its step-sized cell at the tile centre, in the GeoJSON objects and class regions', () => {
    const config = { classes: ['A', 'B'] } as never;
    const plan = { size: 256, scale: 1, mpp: 0.5, step: 128, level: 0, downsample: 1 };
    const tile = (x: number, y: number, predicted: number) => ({ index: 0, x, y, width: 256, height: 256, tissue: 1, probabilities: predicted ? [0.2, 0.8] : [0.9, 0.1], predicted });
    const prediction = { plan, tiles: [tile(0, 0, 0), tile(128, 0, 0), tile(256, 0, 1)] } as unknown as SlidePrediction;
    const geo = JSON.parse(qupathGeoJson({ width: 512, height: 256 } as SlideInfo, config, prediction));
    const tiles = geo.features.filter((f: any) => f.properties.objectType === 'tile');
    expect(tiles.map((f: any) => f.geometry.coordinates[0][0])).toEqual([[64, 64], [192, 64], [320, 64]]);
    expect(tiles[0].geometry.coordinates[0][2]).toEqual([192, 192]);
    const regions = geo.features.filter((f: any) => f.properties.objectType === 'annotation');
    expect(regions.map((f: any) => [f.properties.classification.name, f.geometry.coordinates])).toEqual([
      ['A', [[[64, 64], [320, 64], [320, 192], [64, 192], [64, 64]]]],
      ['B', [[[320, 64], [448, 64], [448, 192], [320, 192], [320, 64]]]],
    ]);
    expect(regions[0].properties.measurements).toMatchObject({ Tiles: 2, 'Mean A probability': 0.9 });
  });
});
