/**
 * One slide through a trained run: the tissue mask (src/slide/tissue.ts), the grid of model-sized
 * tiles over tissue at the run's resolution (src/slide/inference_grid.ts), tiles read and resampled
 * ahead of the GPU by up to `prefetch` concurrent reads (OpenSlide's reads and sharp's JPEG decodes
 * run on libuv's thread pool), classified `batchSize` at a time (src/nn/classify_batch.ts).
 *
 * Resumable: after each batch one line is appended (and fsynced) to OUT/progress.jsonl — the first
 * line fingerprints the job (slide, run, plan); a rerun with the same fingerprint keeps every whole
 * line and continues after the last finished batch; a torn last line (killed mid-write) is dropped.
 * Memory: at most `prefetch` tiles are read ahead, each the model's size² RGB8 plus the region read
 * for it (≤ (size·scale/downsample + 1)² RGB8 — a few × the tile), and one batch on the GPU.
 *
 * Fault injection (test/slide/predict_slide.test.ts), inert unless set: with
 * `LUNGPATH_FAULT_KILL_AFTER_BATCHES=N` the process SIGKILLs itself after its N-th batch is recorded.
 */
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../kernels/runtime.ts';
import { classifyImageBatch, type BatchTimings } from '../nn/classify_batch.ts';
import type { ModelConfig } from '../nn/config.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import { readTile, resolveScale, tilePlan, tissueTiles, type SlideTile, type TilePlan } from '../slide/inference_grid.ts';
import type { RgbImage, Slide } from '../slide/slide.ts';
import { slideTissueMask, type TissueMask } from '../slide/tissue.ts';

export const PROGRESS_FILE = 'progress.jsonl';

export interface SlideModel {
  config: ModelConfig;
  level1: TwoPartNetwork;
  level2: TwoPartNetwork;
  /** Identifies the weights (a digest of both files): a resumed job must use the same ones. */
  id: string;
}

export interface SlidePredictOptions {
  /** The run's microns per pixel, or null when unknown (then the slide's level 0 is used). */
  runMpp: number | null;
  /** Model pixels between tile origins (default imageSize: non-overlapping). */
  stride?: number;
  /** Smallest tissue share of a tile that is classified (default 0.25). */
  minTissue?: number;
  /** Tiles per GPU batch (default 8). */
  batchSize?: number;
  /** Tiles read ahead at most (default 2·batchSize). */
  prefetch?: number;
  warn: (m: string) => void;
  /** After each batch: tiles finished so far (resumed ones included) and in all. */
  onProgress?: (done: number, total: number) => void;
}

export interface TileResult extends SlideTile {
  /** Level-2 class probabilities, config.classes order. */
  probabilities: number[];
  /** Index of the predicted class in config.classes. */
  predicted: number;
}

export interface StageTimings extends BatchTimings {
  /** Milliseconds of reading + resampling, summed over tiles (work, not wall time). */
  decodeMs: number;
  /** Wall milliseconds the GPU loop waited for tiles that were not read yet. */
  decodeWaitMs: number;
  /** Wall milliseconds of the whole slide (mask, tiles, classification; not the outputs). */
  wallMs: number;
  maskMs: number;
}

export interface SlidePrediction {
  plan: TilePlan;
  mask: TissueMask;
  thumbnail: RgbImage;
  tiles: TileResult[];
  /** Tiles taken from an earlier interrupted run. */
  resumed: number;
  timings: StageTimings;
}

function argmax(v: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/** The finished batches in OUT/progress.jsonl if its fingerprint is `fingerprint`, else none (and the file is reset). */
function readProgress(path: string, fingerprint: string): Map<number, number[]> {
  const done = new Map<number, number[]>();
  if (!existsSync(path)) return done;
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  if (lines[0] !== fingerprint) {
    rmSync(path);
    return done;
  }
  let validBytes = Buffer.byteLength(lines[0]) + 1;
  for (const line of lines.slice(1)) {
    let rows: [number, number[]][];
    try {
      rows = JSON.parse(line).rows;
      if (!Array.isArray(rows)) break;
    } catch {
      break; // a torn last line from a killed write: everything after it is dropped
    }
    for (const [index, p] of rows) done.set(index, p);
    validBytes += Buffer.byteLength(line) + 1;
  }
  if (validBytes < Buffer.byteLength(text)) truncateSync(path, validBytes);
  return done;
}

function appendDurably(path: string, line: string): void {
  appendFileSync(path, line + '\n');
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Classifies every tissue tile of `slide`; `outDir` holds the progress file for resuming. */
export async function predictSlide(rt: Runtime, slide: Slide, model: SlideModel, outDir: string, o: SlidePredictOptions): Promise<SlidePrediction> {
  const started = performance.now();
  const { config } = model;
  const batchSize = o.batchSize ?? 8;
  const prefetch = Math.max(1, o.prefetch ?? 2 * batchSize);
  const { scale, mpp } = resolveScale(slide.info, o.runMpp, o.warn);
  const { mask, thumbnail } = await slideTissueMask(slide);
  const maskMs = performance.now() - started;
  const plan = tilePlan(slide.info, config.imageSize, scale, mpp, o.stride ?? config.imageSize);
  const tiles = tissueTiles(slide.info, mask, plan, o.minTissue ?? 0.25);

  const progressPath = join(outDir, PROGRESS_FILE);
  const fingerprint = JSON.stringify({ slide: slide.info.path.split(/[\\/]/).pop(), reader: slide.info.reader, width: slide.info.width, height: slide.info.height, model: model.id, plan, minTissue: o.minTissue ?? 0.25, tiles: tiles.length });
  const done = readProgress(progressPath, fingerprint);
  if (!existsSync(progressPath)) appendDurably(progressPath, fingerprint);
  const resumed = tiles.filter((t) => done.has(t.index)).length;
  const todo = tiles.filter((t) => !done.has(t.index));

  const timings: StageTimings = { uploadMs: 0, gpuMs: 0, decodeMs: 0, decodeWaitMs: 0, wallMs: 0, maskMs };
  const pending: Promise<Uint8Array>[] = [];
  let next = 0;
  const fill = () => {
    while (next < todo.length && pending.length < prefetch) {
      const tile = todo[next++]!;
      const t0 = performance.now();
      const read = readTile(slide, plan, tile).then((rgb) => {
        timings.decodeMs += performance.now() - t0;
        return rgb;
      });
      read.catch(() => {}); // awaited below; this only keeps an early failure from being "unhandled"
      pending.push(read);
    }
  };
  fill();
  const killAfter = Number(process.env.LUNGPATH_FAULT_KILL_AFTER_BATCHES ?? 0);
  let batches = 0;
  let finished = resumed;
  o.onProgress?.(finished, tiles.length);
  for (let first = 0; first < todo.length; first += batchSize) {
    const batch = todo.slice(first, first + batchSize);
    const t0 = performance.now();
    const images = await Promise.all(pending.splice(0, batch.length));
    timings.decodeWaitMs += performance.now() - t0;
    fill(); // the next batch decodes while this one is on the GPU
    const rows = await classifyImageBatch(rt, model.level1, model.level2, config, images, timings);
    batch.forEach((t, i) => done.set(t.index, rows[i]!));
    appendDurably(progressPath, JSON.stringify({ rows: batch.map((t, i) => [t.index, rows[i]]) }));
    if (killAfter > 0 && ++batches >= killAfter) process.kill(process.pid, 'SIGKILL');
    finished += batch.length;
    o.onProgress?.(finished, tiles.length);
  }
  timings.wallMs = performance.now() - started;
  const results = tiles.map((t) => {
    const p = done.get(t.index)!;
    return { ...t, probabilities: p, predicted: argmax(p) };
  });
  return { plan, mask, thumbnail, tiles: results, resumed, timings };
}
