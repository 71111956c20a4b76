/**
 * Whole-slide inference speed and memory (`npx tsx bench/slide_predict.ts`; not part of
 * `npm run bench`, not a test). Prints:
 *  1. predict-slide's loop on a synthetic 2048² slide (8×8 tiles of 256², all tissue) with the
 *     bundled demo model (tiny preset): tiles/s and seconds per slide, split into decode (read +
 *     resample, summed work), upload and GPU, and how long the GPU waited for decoding;
 *  2. the decode rate on its own: 256² tiles and seed-size 2560² tiles read one at a time (one core)
 *     and `os.availableParallelism()` at a time;
 *  3. peak memory (RSS) of the loop on a large, mostly empty slide (--large SIDE, default 24000),
 *     against the stated cap of the read-ahead queue.
 * Slides are written to a temporary folder by the tests' writers (test/slide/).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createNodeRuntime } from '../src/kernels/node.ts';
import { readTile, tilePlan, tissueTiles } from '../src/slide/inference_grid.ts';
import { openSlide } from '../src/slide/open.ts';
import { slideTissueMask } from '../src/slide/tissue.ts';
import { loadRunNetworks } from '../src/train/evaluate.ts';
import { RunFolder } from '../src/train/run_folder.ts';
import { predictSlide } from '../src/train/slide_predict.ts';
import { writeTestSlide } from '../test/slide/make_slide.ts';
import { demoRun, writeMosaicSlide } from '../test/slide/mosaic_slide.ts';

const { values } = parseArgs({ options: { large: { type: 'string', default: '24000' }, reader: { type: 'string', default: 'auto' } } });
const reader = values.reader as 'auto' | 'openslide' | 'js';
const dir = mkdtempSync(join(tmpdir(), 'lungpath-bench-slide-'));
const cores = availableParallelism();
const fmt = (v: number, d = 1) => v.toFixed(d);

async function decodeRate(path: string, size: number, count: number, concurrency: number): Promise<number> {
  const slide = await openSlide(path, { reader });
  const { mask } = await slideTissueMask(slide);
  const plan = tilePlan(slide.info, size, 1, null);
  const tiles = tissueTiles(slide.info, mask, plan, 0.01).slice(0, count);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < tiles.length) await readTile(slide, plan, tiles[next++]!);
  }));
  const s = (performance.now() - t0) / 1000;
  slide.close();
  return tiles.length / s;
}

try {
  const runDir = demoRun(join(dir, 'run'));
  const mosaic = join(dir, 'mosaic.tiff');
  const blocks = ['NORM', 'SCLC', 'SC', 'ADC'].map((className, i) => ({ className, col: (i % 2) * 4, row: Math.floor(i / 2) * 4, cols: 4, rows: 4 }));
  await writeMosaicSlide(mosaic, { cols: 8, rows: 8, cell: 256, mpp: 0.5, seed: 21, blocks });

  const rt = await createNodeRuntime();
  const run = new RunFolder(runDir);
  const config = run.readConfig();
  const { level1, level2 } = loadRunNetworks(rt, run, config);
  const model = { config, level1, level2, id: 'bench' };
  console.log(`adapter: ${rt.adapter.description || rt.adapter.vendor} (${rt.adapter.architecture}); ${cores} cores; reader ${reader}`);

  // Warm-up (shader compilation) on a separate output folder, then the measured run.
  const slide = await openSlide(mosaic, { reader });
  await predictSlide(rt, slide, model, mkdtempSync(join(dir, 'warm-')), { runMpp: 0.5, minTissue: 0.01, warn: () => {} });
  const p = await predictSlide(rt, slide, model, mkdtempSync(join(dir, 'run-')), { runMpp: 0.5, minTissue: 0.01, warn: () => {} });
  slide.close();
  const t = p.timings;
  const n = p.tiles.length;
  console.log(`\n1. predict-slide loop, 2048² slide, ${n} tiles of 256², batch 8, read-ahead 16`);
  console.log(`   ${fmt(n / (t.wallMs / 1000), 2)} tiles/s; ${fmt(t.wallMs / 1000, 2)} s per slide (mask ${fmt(t.maskMs / 1000, 2)} s)`);
  console.log(`   per tile: decode ${fmt(t.decodeMs / n)} ms (work), upload ${fmt(t.uploadMs / n, 2)} ms, GPU ${fmt(t.gpuMs / n)} ms; GPU waited for decoding ${fmt(t.decodeWaitMs)} ms in all`);
  console.log(`   GPU-only rate ${fmt(n / (t.gpuMs / 1000), 2)} tiles/s`);
  level1.destroy();
  level2.destroy();
  rt.destroy();

  const large = Number(values.large);
  const big = join(dir, 'large.svs');
  const s = large / 4096;
  const region = (x: number, y: number, w: number, h: number, className: string) => ({ className, polygons: [[[[x * s, y * s], [(x + w) * s, y * s], [(x + w) * s, (y + h) * s], [x * s, (y + h) * s]] as [number, number][]]] });
  await writeTestSlide(big, { width: large, height: large, mpp: 0.25, format: 'svs', regions: [region(400, 400, 500, 500, 'SC'), region(2800, 2600, 600, 400, 'ADC')], seed: 5 });

  console.log(`\n2. decode rate (read + resample), tiles/s`);
  for (const size of [256, 2560]) {
    const count = size === 256 ? 64 : 8;
    const one = await decodeRate(size === 256 ? mosaic : big, size, count, 1);
    const all = await decodeRate(size === 256 ? mosaic : big, size, count, cores);
    console.log(`   ${size}² tiles: ${fmt(one, 2)} on one core, ${fmt(all, 2)} with ${cores} reads at once (${fmt(all / cores, 2)} per core)`);
  }

  // 3. Memory on the large slide: RSS sampled every 20 ms while the loop runs.
  const rt2 = await createNodeRuntime();
  const net = loadRunNetworks(rt2, run, config);
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const bigSlide = await openSlide(big, { reader });
  const q = await predictSlide(rt2, bigSlide, { config, level1: net.level1, level2: net.level2, id: 'bench' }, mkdtempSync(join(dir, 'large-')), { runMpp: 0.5, warn: () => {} });
  clearInterval(timer);
  bigSlide.close();
  const tileBytes = 256 * 256 * 3;
  const regionBytes = 512 * 512 * 3;
  console.log(`\n3. ${large}² slide at 0.25 µm/px, run at 0.5 µm/px: ${q.tiles.length} tissue tiles, read from level ${q.plan.level}, ${fmt(q.timings.wallMs / 1000)} s`);
  console.log(`   RSS before ${fmt(rss0 / 2 ** 20, 0)} MiB, peak ${fmt(peak / 2 ** 20, 0)} MiB (+${fmt((peak - rss0) / 2 ** 20, 0)} MiB); read-ahead cap 16 × (${fmt(tileBytes / 2 ** 10, 0)} KiB tile + ${fmt(regionBytes / 2 ** 10, 0)} KiB region) = ${fmt((16 * (tileBytes + regionBytes)) / 2 ** 20, 1)} MiB, plus the mask level (${q.mask.width}×${q.mask.height})`);
  net.level1.destroy();
  net.level2.destroy();
  rt2.destroy();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
