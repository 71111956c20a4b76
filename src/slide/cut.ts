/**
 * `lungpath tiles`: whole slides → a training set in the layout `lungpath train` reads
 * (DATASET/{train,val,test}/<CLASS>/<slide>_x<X>_y<Y>.png), split by slide (or patient), with
 * DATASET/tiles.csv (one row per tile: slide, split, class, level, level-0 x/y and span, mpp, tissue
 * fraction, share inside the annotation, annotation id) and DATASET/masks/<slide>.png (the tissue
 * mask over the thumbnail, for a person to check).
 *
 * Order of work: every input is checked first (slides open, annotation files and the labels CSV
 * parse, classes and bounds) and all problems are reported together before anything is written.
 * Then each slide's mask and tile selection, then the tiles, `concurrency` at a time (slide reads
 * and PNG encoding run on libuv's thread pool: OpenSlide through koffi's async calls, sharp), so
 * memory stays bounded by `concurrency` regions in flight.
 *
 * Idempotent and resumable: each tile is written under DATASET/.lungpath-tiles/tmp and renamed into
 * place (a tile file is complete or absent); a slide's record (DATASET/.lungpath-tiles/<slide>.json)
 * is written once all its tiles are there, and tiles.csv last (atomically). A second run with the
 * same settings skips recorded slides and existing tiles; different settings are refused.
 */
import { availableParallelism } from 'node:os';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { AnnotationError, parseAnnotations, type AnnotationRegion } from './geojson.ts';
import { csvField, parseLabelsCsv, type SlideLabel } from './labels.ts';
import { openSlide, type ReaderChoice } from './open.ts';
import { SlideError, type Slide, type SlideInfo } from './slide.ts';
import { assignSplits, DEFAULT_FRACTIONS, SPLITS, type SplitName } from './split.ts';
import { planGrid, selectTiles, type PlannedTile, type TileGrid } from './tiler.ts';
import { maskOverlay, slideTissueMask } from './tissue.ts';

export interface CutOptions {
  slides: string[];
  out: string;
  /** Folder of `<slide stem>.geojson` files (QuPath exports). */
  annotations?: string;
  /** CSV of slide,label[,patient]. */
  labels?: string;
  size: number;
  mpp?: number;
  minTissue: number;
  minInside: number;
  classes?: string[];
  reader?: ReaderChoice;
  seed?: number;
  fractions?: Record<SplitName, number>;
  concurrency?: number;
  onStage?: (line: string) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface SlideSummary {
  slide: string;
  split: SplitName;
  tiles: number;
  byClass: Record<string, number>;
  level: number;
  mpp: number | null;
  /** Cells left out: too little tissue, inside two classes. */
  lowTissue: number;
  ambiguous: number;
  /** Read from a previous run's record instead of cut now. */
  resumed: boolean;
}

export interface CutSummary {
  out: string;
  manifest: string;
  tiles: number;
  written: number;
  classes: string[];
  splits: Record<SplitName, { slides: number; tiles: number }>;
  slides: SlideSummary[];
  warnings: string[];
}

/** Every problem found while checking the inputs, one line each. */
export class TilesInputError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0]! : `${problems.length} problems with the input:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'TilesInputError';
  }
}

const STATE_DIR = '.lungpath-tiles';
const SETTINGS_FILE = 'tiles.json';
const MANIFEST_FILE = 'tiles.csv';
const MANIFEST_COLUMNS = ['file', 'slide', 'patient', 'split', 'class', 'level', 'x', 'y', 'span', 'size', 'mpp', 'tissue', 'inside', 'annotation'] as const;

interface ManifestRow {
  file: string;
  slide: string;
  patient: string | null;
  split: SplitName;
  class: string;
  level: number;
  x: number;
  y: number;
  span: number;
  size: number;
  mpp: number | null;
  tissue: number;
  inside: number;
  annotation: string;
}

interface SlideJob {
  path: string;
  stem: string;
  info: SlideInfo;
  grid: TileGrid;
  group: string;
  patient: string | null;
  regions?: AnnotationRegion[];
  label?: string;
}

const stemOf = (path: string) => basename(path, extname(path));

/** Class names become folder names: refuse what cannot be one. */
function classFolderProblem(name: string): string | null {
  if (name === '.' || name === '..' || /[/\\\0]/.test(name) || name.length > 100) return `class name '${name}' cannot be a folder name`;
  return null;
}

/** Checks every input and returns the work, or throws a TilesInputError listing all problems. */
async function checkInputs(options: CutOptions): Promise<SlideJob[]> {
  const problems: string[] = [];
  if ((options.annotations === undefined) === (options.labels === undefined)) {
    throw new TilesInputError(['give either --annotations DIR (QuPath GeoJSON per slide) or --labels CSV (one label per slide)']);
  }
  const stems = new Map<string, string>();
  for (const path of options.slides) {
    const stem = stemOf(path);
    if (stems.has(stem)) problems.push(`${path}: has the same name as ${stems.get(stem)} (tile files and annotation files are named by it)`);
    stems.set(stem, path);
  }
  let labels: Map<string, SlideLabel> | undefined;
  if (options.labels) {
    try {
      labels = parseLabelsCsv(options.labels, await readFile(options.labels, 'utf8'));
    } catch (e) {
      problems.push((e as { code?: string }).code === 'ENOENT' ? `${options.labels}: labels file does not exist` : (e as Error).message);
    }
  }
  const jobs: SlideJob[] = [];
  for (const path of options.slides) {
    const stem = stemOf(path);
    let slide: Slide;
    try {
      slide = await openSlide(path, { reader: options.reader });
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    const info = slide.info;
    slide.close();
    let grid: TileGrid;
    try {
      grid = planGrid(info, options.size, options.mpp);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    if (grid.across === 0 || grid.down === 0) problems.push(`${path}: the slide (${info.width}×${info.height}) is smaller than one tile (${Math.round(grid.span)} level-0 pixels at ${options.size} px)`);
    const job: SlideJob = { path, stem, info, grid, group: stem, patient: null };
    if (options.annotations) {
      const file = join(options.annotations, `${stem}.geojson`);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        problems.push(`${file}: no annotation file for slide ${path} (expected <slide name>.geojson in ${options.annotations})`);
        continue;
      }
      try {
        const parsed = parseAnnotations(file, text, { slideSize: { width: info.width, height: info.height }, classes: options.classes });
        if (parsed.regions.length === 0) problems.push(`${file}: no classified Polygon or MultiPolygon annotations${parsed.ignored.length ? ` (${parsed.ignored.length} ignored: ${parsed.ignored.slice(0, 3).join('; ')})` : ''}`);
        job.regions = parsed.regions;
      } catch (e) {
        problems.push(e instanceof AnnotationError ? e.message : `${file}: ${(e as Error).message}`);
        continue;
      }
    } else if (labels) {
      const row = labels.get(basename(path)) ?? labels.get(stem);
      if (!row) {
        problems.push(`${options.labels}: no row for slide ${basename(path)}`);
        continue;
      }
      if (options.classes && !options.classes.includes(row.label)) problems.push(`${options.labels}: line ${row.line}: label '${row.label}' is not one of the classes (${options.classes.join(', ')})`);
      job.label = row.label;
      job.patient = row.patient;
      job.group = row.patient ?? stem;
    }
    for (const name of new Set(job.regions?.map((r) => r.className) ?? (job.label ? [job.label] : []))) {
      const problem = classFolderProblem(name);
      if (problem) problems.push(`${options.annotations ? join(options.annotations, `${stem}.geojson`) : options.labels}: ${problem}`);
    }
    jobs.push(job);
  }
  if (problems.length > 0) throw new TilesInputError(problems);
  return jobs;
}

interface Settings {
  version: 1;
  size: number;
  mpp: number | null;
  minTissue: number;
  minInside: number;
  mode: 'annotations' | 'labels';
  seed: number;
  fractions: Record<SplitName, number>;
  /** Split of each group (slide stem, or patient). */
  groups: Record<string, SplitName>;
}

async function writeAtomic(path: string, data: string | Uint8Array, tmpDir: string): Promise<void> {
  const tmp = join(tmpDir, `${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw new Error(`${path}: cannot be read (${(e as Error).message}); remove it or use a new --out folder`);
  }
}

/** Runs `lungpath tiles` (see the file header). */
export async function cutTiles(options: CutOptions): Promise<CutSummary> {
  const out = resolve(options.out);
  const jobs = await checkInputs(options);
  const stage = options.onStage ?? (() => {});
  const stateDir = join(out, STATE_DIR);
  const tmpDir = join(stateDir, 'tmp');
  await rm(tmpDir, { recursive: true, force: true }); // a killed run's half-written files
  await mkdir(tmpDir, { recursive: true });
  await mkdir(join(out, 'masks'), { recursive: true });

  const fractions = options.fractions ?? DEFAULT_FRACTIONS;
  const seed = options.seed ?? 0;
  const previous = await readJson<Settings>(join(out, SETTINGS_FILE));
  const wanted = { size: options.size, mpp: options.mpp ?? null, minTissue: options.minTissue, minInside: options.minInside, mode: options.annotations ? 'annotations' : 'labels', seed, fractions } as const;
  if (previous) {
    const changed = (Object.keys(wanted) as (keyof typeof wanted)[]).filter((k) => JSON.stringify(previous[k]) !== JSON.stringify(wanted[k]));
    if (changed.length > 0) {
      throw new Error(`${out}: holds tiles cut with other settings (${changed.map((k) => `${k} ${JSON.stringify(previous[k])} → ${JSON.stringify(wanted[k])}`).join(', ')}); use a new --out folder or remove this one`);
    }
  }
  const splitOf = assignSplits(jobs.map((j) => j.group), fractions, seed, new Map(Object.entries(previous?.groups ?? {})));
  const settings: Settings = { version: 1, ...wanted, groups: { ...(previous?.groups ?? {}), ...Object.fromEntries(splitOf) } };
  await writeAtomic(join(out, SETTINGS_FILE), `${JSON.stringify(settings, null, 2)}\n`, tmpDir);

  // Masks and selections (or the records of slides done before).
  const summaries: SlideSummary[] = [];
  const rows: ManifestRow[] = [];
  const pending: { job: SlideJob; split: SplitName; tiles: PlannedTile[]; summary: SlideSummary }[] = [];
  for (const job of jobs) {
    const split = splitOf.get(job.group)!;
    const recordPath = join(stateDir, `${job.stem}.json`);
    const record = await readJson<{ summary: SlideSummary; rows: ManifestRow[] }>(recordPath);
    if (record && record.rows.every((r) => r.split === split)) {
      summaries.push({ ...record.summary, resumed: true });
      rows.push(...record.rows);
      stage(`${job.path}: done before (${record.rows.length} tiles), skipped`);
      continue;
    }
    const slide = await openSlide(job.path, { reader: options.reader });
    try {
      const { mask, thumbnail } = await slideTissueMask(slide);
      const overlay = maskOverlay(thumbnail, mask);
      await writeAtomic(join(out, 'masks', `${job.stem}.png`), await sharp(overlay.data, { raw: { width: overlay.width, height: overlay.height, channels: 3 } }).png().toBuffer(), tmpDir);
      const selection = selectTiles(job.grid, mask, job.regions ? { regions: job.regions } : { label: job.label! }, options);
      const byClass: Record<string, number> = {};
      for (const t of selection.tiles) byClass[t.className] = (byClass[t.className] ?? 0) + 1;
      const summary: SlideSummary = { slide: job.path, split, tiles: selection.tiles.length, byClass, level: job.grid.level, mpp: job.grid.mpp, lowTissue: selection.lowTissue, ambiguous: selection.ambiguous, resumed: false };
      summaries.push(summary);
      pending.push({ job, split, tiles: selection.tiles, summary });
      stage(`${job.path}: ${selection.tiles.length} tiles to cut (${split}; level ${job.grid.level}; ${selection.lowTissue} cells with too little tissue${selection.ambiguous ? `, ${selection.ambiguous} inside two classes` : ''})`);
    } finally {
      slide.close();
    }
  }

  // The tiles, `concurrency` at a time over all slides.
  const total = pending.reduce((n, p) => n + p.tiles.length, 0);
  let done = 0;
  let written = 0;
  options.onProgress?.(0, total);
  for (const { job, split, tiles, summary } of pending) {
    const slide = await openSlide(job.path, { reader: options.reader });
    const slideRows: ManifestRow[] = [];
    try {
      const existing = new Map<string, Set<string>>();
      for (const cls of new Set(tiles.map((t) => t.className))) {
        const dir = join(out, split, cls);
        await mkdir(dir, { recursive: true });
        existing.set(cls, new Set(await readdir(dir)));
      }
      let next = 0;
      const worker = async () => {
        while (next < tiles.length) {
          const tile = tiles[next++]!;
          const name = `${job.stem}_x${tile.x}_y${tile.y}.png`;
          const file = join(split, tile.className, name);
          if (!existing.get(tile.className)!.has(name)) {
            await writeAtomic(join(out, file), await renderTile(slide, job.grid, tile), tmpDir);
            written++;
          }
          slideRows.push({ file, slide: basename(job.path), patient: job.patient, split, class: tile.className, level: job.grid.level, x: tile.x, y: tile.y, span: Number(job.grid.span.toFixed(4)), size: job.grid.size, mpp: job.grid.mpp, tissue: Number(tile.tissue.toFixed(4)), inside: Number(tile.inside.toFixed(4)), annotation: tile.annotation });
          options.onProgress?.(++done, total);
        }
      };
      const concurrency = Math.max(1, options.concurrency ?? availableParallelism());
      await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, tiles.length)) }, worker));
    } catch (e) {
      throw e instanceof SlideError ? e : new Error(`${job.path}: ${(e as Error).message}`);
    } finally {
      slide.close();
    }
    slideRows.sort((a, b) => a.y - b.y || a.x - b.x);
    await writeAtomic(join(stateDir, `${job.stem}.json`), JSON.stringify({ summary, rows: slideRows }), tmpDir);
    rows.push(...slideRows);
  }

  rows.sort((a, b) => (a.slide < b.slide ? -1 : a.slide > b.slide ? 1 : a.y - b.y || a.x - b.x));
  const csv = [MANIFEST_COLUMNS.join(','), ...rows.map((r) => MANIFEST_COLUMNS.map((c) => csvField(r[c])).join(','))].join('\n') + '\n';
  await writeAtomic(join(out, MANIFEST_FILE), csv, tmpDir);
  await rm(tmpDir, { recursive: true, force: true });

  const classes = [...new Set(rows.map((r) => r.class))].sort();
  const splits = Object.fromEntries(SPLITS.map((s) => [s, { slides: summaries.filter((x) => x.split === s).length, tiles: rows.filter((r) => r.split === s).length }])) as CutSummary['splits'];
  const warnings: string[] = [];
  for (const s of SPLITS) {
    if (splits[s].tiles === 0) continue;
    const missing = classes.filter((c) => !rows.some((r) => r.split === s && r.class === c));
    if (missing.length > 0) warnings.push(`the ${s} split has no tiles of ${missing.join(', ')} (its slides hold none); lungpath train needs every class in every split: add slides with those classes`);
  }
  return { out, manifest: join(out, MANIFEST_FILE), tiles: rows.length, written, classes, splits, slides: summaries, warnings };
}

/** One tile as PNG: the region of the grid's level resampled to size × size (sharp's Lanczos-3). */
async function renderTile(slide: Slide, grid: TileGrid, tile: PlannedTile): Promise<Buffer> {
  const ds = slide.info.levels[grid.level]!.downsample;
  const lx = Math.round(tile.x / ds);
  const ly = Math.round(tile.y / ds);
  const side = Math.max(1, Math.round(grid.span / ds));
  const region = await slide.readRegion(grid.level, lx, ly, side, side);
  let image = sharp(region.data, { raw: { width: side, height: side, channels: 3 } });
  if (side !== grid.size) image = image.resize(grid.size, grid.size, { kernel: 'lanczos3', fit: 'fill' });
  return image.png({ compressionLevel: 6 }).toBuffer();
}
