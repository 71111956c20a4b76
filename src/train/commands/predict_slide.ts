/**
 * `lungpath predict-slide --run RUN SLIDE... --out DIR [--stride PX] [--shard i/N] [--json]`:
 * the trained two-level model over every tissue tile of each slide (src/train/slide_predict.ts),
 * writing DIR/<slide name>/ tiles.csv, tiles.json, summary.json, heatmap.png, annotations.geojson,
 * slide.dzi and overlay.dzi (+ tile folders), then done.json last. A slide whose done.json matches
 * the run and settings is skipped (idempotent: schedulers may rerun a shard); an unfinished one
 * resumes from its last finished batch. `--shard i/N` keeps slide k of the list sorted by output
 * name when k mod N = i, so N independent jobs cover the list exactly once.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { createNodeRuntime } from '../../kernels/node.ts';
import { readFileBytes, removeStaleTempFiles, writeFileAtomic } from '../../nn/files.ts';
import { openSlide, READER_CHOICES, type ReaderChoice } from '../../slide/open.ts';
import { loadRunNetworks } from '../evaluate.ts';
import { useRunKernels } from '../kernels.ts';
import { RunFolder } from '../run_folder.ts';
import { renderSlideHeatmap, writeDeepZoom } from '../slide_heatmap.ts';
import { qupathGeoJson, slideSummary, tilesCsv, tilesJson } from '../slide_outputs.ts';
import { PROGRESS_FILE, predictSlide, type SlideModel } from '../slide_predict.ts';
import { choiceFlag, floatFlag, intFlag, parse, UsageError } from './args.ts';

const HELP = `Usage: lungpath predict-slide --run RUN --out DIR [options] SLIDE...

Classifies every tissue tile of each whole-slide image with a trained run (Level 2 on each tile of
the run's imageSize at the run's resolution) and writes, per slide, DIR/<slide name>/:
  tiles.csv, tiles.json   per-tile probabilities; x, y, width, height in level-0 pixels
  summary.json            area per class, the slide-level call and the rule that makes it
  heatmap.png             the thumbnail tinted by class, with a legend
  annotations.geojson     QuPath objects (File > Import objects): one classified tile each
  slide.dzi, overlay.dzi  Deep Zoom pyramids (+ _files/) of the slide and the class overlay
  done.json               written last: the slide is complete

Options:
  --run RUN            the run folder written by 'lungpath train' (required)
  --out DIR            output folder (required)
  --stride PX          model pixels between tiles (default: the run's imageSize, no overlap)
  --shard i/N          only slides k (sorted by name, k from 0) with k mod N = i; i from 0
  --mpp X              microns per pixel the run was trained at (default: the mpp of the run's
                       dataset manifest DATA/tiles.csv when it has one, else the slide's level 0)
  --min-tissue F       smallest tissue share of a tile that is classified (default 0.25)
  --batch-size N       tiles per GPU batch (default 8)
  --prefetch N         tiles read ahead at most (default 2 × batch size)
  --reader R           auto, openslide or js (default auto)
  --jpeg D             the js reader's JPEG decoder: sharp (libjpeg-turbo, default) or js
                       (jpeg-js, what the browser page uses: same pixels as the page)
  --json               one JSON summary per slide on stdout
  -h, --help           this help

A slide whose run resolution differs from its own by more than 5% gets a warning naming both; by
more than 1.5× finer (upsampling) or 16× coarser it is an error. Each slide's failure is reported
and the others still run; the exit status is 1 when any failed.`;

export const DONE_FILE = 'done.json';

export interface Shard {
  index: number;
  count: number;
}

export function parseShard(value: string | boolean | undefined): Shard {
  if (value === undefined) return { index: 0, count: 1 };
  const m = typeof value === 'string' ? /^(\d+)\/(\d+)$/.exec(value) : null;
  const index = Number(m?.[1]), count = Number(m?.[2]);
  if (!m || count < 1 || index >= count) throw new UsageError(`--shard must be i/N with 0 ≤ i < N (e.g. 0/4), got '${value}'`);
  return { index, count };
}

/** The output folder name of a slide: its file name without the extension. */
export function slideName(path: string): string {
  return basename(path, extname(path));
}

/** The slides shard `shard` takes: sorted by output name, every N-th from i. Duplicate names are an error. */
export function shardSlides(paths: readonly string[], shard: Shard): string[] {
  const byName = new Map<string, string>();
  for (const p of paths) {
    const name = slideName(p);
    const other = byName.get(name);
    if (other !== undefined && resolve(other) !== resolve(p)) throw new UsageError(`${other} and ${p} would both write ${name}/: rename one`);
    byName.set(name, p);
  }
  return [...byName.keys()].sort().filter((_, k) => k % shard.count === shard.index).map((n) => byName.get(n)!);
}

/** The run's resolution from its dataset manifest (the tiles.csv 'lungpath tiles' writes), or null. */
export function runMppFromManifest(run: RunFolder, warn: (m: string) => void): number | null {
  const info = run.readTrainInfo();
  if (!info) return null;
  const manifest = join(info.data, 'tiles.csv');
  if (!existsSync(manifest)) return null;
  const [header, ...rows] = readFileSync(manifest, 'utf8').trim().split('\n');
  const column = header!.split(',').indexOf('mpp');
  if (column < 0) return null;
  const values = new Set(rows.map((r) => r.split(',')[column]).filter((v) => v !== undefined && v !== ''));
  const numbers = [...values].map(Number).filter((v) => Number.isFinite(v) && v > 0);
  if (numbers.length === 0) return null;
  if (numbers.length > 1) warn(`${manifest}: tiles of several resolutions (${numbers.join(', ')} µm/px); using ${numbers[0]} — give --mpp to choose`);
  return numbers[0]!;
}

export async function runPredictSlide(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      run: { type: 'string' }, out: { type: 'string' }, stride: { type: 'string' }, shard: { type: 'string' }, mpp: { type: 'string' },
      'min-tissue': { type: 'string' }, 'batch-size': { type: 'string' }, prefetch: { type: 'string' }, reader: { type: 'string' }, jpeg: { type: 'string' }, json: { type: 'boolean' },
    },
    true,
  );
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (typeof values.run !== 'string') throw new UsageError('--run RUN is required');
  if (typeof values.out !== 'string') throw new UsageError('--out DIR is required');
  if (positionals.length === 0) throw new UsageError('give at least one SLIDE');
  const shard = parseShard(values.shard);
  const stride = values.stride === undefined ? undefined : intFlag(values.stride, 'stride', 0);
  const minTissue = floatFlag(values['min-tissue'], 'min-tissue', 0.25, (n) => n >= 0 && n <= 1);
  const batchSize = intFlag(values['batch-size'], 'batch-size', 8);
  const prefetch = intFlag(values.prefetch, 'prefetch', 2 * batchSize);
  const reader = choiceFlag(values.reader, 'reader', READER_CHOICES, 'auto') as ReaderChoice;
  const jpeg = choiceFlag(values.jpeg, 'jpeg', ['sharp', 'js'] as const, 'sharp');
  const json = values.json === true;
  const warn = (m: string) => console.error(`warning: ${m}`);
  const slides = shardSlides(positionals, shard);

  const run = new RunFolder(resolve(values.run));
  const config = run.readConfig();
  const runMpp = values.mpp === undefined ? runMppFromManifest(run, warn) : floatFlag(values.mpp, 'mpp', 0);
  const digest = createHash('sha256').update(readFileBytes(run.level1Weights)).update(readFileBytes(run.level2Weights)).digest('hex').slice(0, 16);
  const settings = { model: digest, mpp: runMpp, stride: stride ?? config.imageSize, minTissue, reader, jpeg };
  const out = resolve(values.out);
  mkdirSync(out, { recursive: true });

  const rt = await createNodeRuntime();
  useRunKernels(rt, run, warn);
  const { level1, level2 } = loadRunNetworks(rt, run, config);
  const model: SlideModel = { config, level1, level2, id: digest };
  let failed = 0;
  try {
    for (const path of slides) {
      const dir = join(out, slideName(path));
      const donePath = join(dir, DONE_FILE);
      if (existsSync(donePath)) {
        const done = JSON.parse(readFileSync(donePath, 'utf8'));
        if (JSON.stringify(done.settings) === JSON.stringify(settings)) {
          if (json) console.log(readFileSync(join(dir, 'summary.json'), 'utf8').trim().replace(/\n\s*/g, ''));
          else console.log(`${path}: already done (${donePath})`);
          continue;
        }
        rmSync(donePath); // other settings or another model: redo it
      }
      const bar = process.stderr.isTTY && !json ? new cliProgress.SingleBar({ format: `${slideName(path)} [{bar}] {value}/{total} tiles | {rate} tiles/s | ETA {eta_formatted}`, stream: process.stderr, etaBuffer: 20, hideCursor: true }, cliProgress.Presets.shades_classic) : null;
      const started = Date.now();
      let lastLine = started;
      let barStarted = false;
      let slide;
      try {
        slide = await openSlide(path, { reader, jpeg });
        // The folder only once the slide opened: a file that is not a slide leaves nothing behind.
        mkdirSync(dir, { recursive: true });
        removeStaleTempFiles(dir);
        const opened = slide;
        const prediction = await predictSlide(rt, opened, model, dir, {
          runMpp, stride, minTissue, batchSize, prefetch, warn,
          onProgress: (done, total) => {
            // Not a terminal (a scheduler's log file): a plain line at most every 30 s.
            if (!bar && !json && Date.now() - lastLine >= 30_000 && done < total) {
              lastLine = Date.now();
              const rate = done / ((lastLine - started) / 1000);
              console.error(`${slideName(path)}: ${done}/${total} tiles, ${rate.toFixed(1)} tiles/s, ETA ${Math.round((total - done) / Math.max(rate, 1e-9))} s`);
            }
            if (!bar) return;
            if (!barStarted) {
              bar.start(total, done, { rate: '-' });
              barStarted = true;
            }
            if (done === 0) return; // no rate (and no ETA) before the first batch
            const s = (Date.now() - started) / 1000;
            bar.update(done, { rate: s > 0 ? (done / s).toFixed(1) : '-' });
          },
        });
        bar?.stop();
        const info = opened.info;
        const summary = slideSummary(info, config, prediction, { run: run.dir });
        writeFileAtomic(join(dir, 'tiles.csv'), tilesCsv(config, prediction.tiles));
        writeFileAtomic(join(dir, 'tiles.json'), tilesJson(info, config, prediction));
        writeFileAtomic(join(dir, 'annotations.geojson'), qupathGeoJson(info, config, prediction));
        writeFileAtomic(join(dir, 'heatmap.png'), await renderSlideHeatmap(info, config, prediction, summary, prediction.thumbnail));
        await writeDeepZoom(dir, opened, prediction);
        writeFileAtomic(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
        writeFileAtomic(donePath, `${JSON.stringify({ settings, finished: new Date().toISOString() }, null, 2)}\n`);
        rmSync(join(dir, PROGRESS_FILE), { force: true });
        if (json) console.log(JSON.stringify(summary));
        else {
          const t = summary.timings;
          console.log(`${path}: ${summary.call ?? 'no tissue classified'} — ${summary.tiles} tiles${prediction.resumed ? ` (${prediction.resumed} resumed)` : ''}, ${(t.wallMs! / 1000).toFixed(1)} s; wrote ${dir}/`);
        }
      } catch (e) {
        bar?.stop();
        failed++;
        console.error(`lungpath predict-slide: ${(e as Error).message}`);
        if (process.env.LUNGPATH_DEBUG) console.error((e as Error).stack);
      } finally {
        slide?.close();
      }
    }
  } finally {
    level1.destroy();
    level2.destroy();
    rt.destroy();
  }
  return failed > 0 ? 1 : 0;
}
