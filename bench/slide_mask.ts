/**
 * Time of a tissue mask for a 100k × 100k slide (102,400² at 0.25 µm/px: 10.5 gigapixels, 9
 * levels): `npx tsx bench/slide_mask.ts [--runs N]`. The slide is mostly empty — written in seconds
 * by test/slide/sparse_tiff.ts, background tiles sharing one JPEG — which does not change the mask
 * step's cost: it reads one whole low-resolution level (the coarsest with a side ≥ 1024: 1600² at
 * downsample 64, 49 tiles), so its time depends on that level's size, not on level 0's or the tissue.
 * Prints, per reader, the median of N runs of: open, read the mask level, detect (and detection
 * alone), with the machine's load average beside it (other work inflates wall-clock times).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openSlide } from '../src/slide/open.ts';
import { detectTissue, maskLevel } from '../src/slide/tissue.ts';
import { writeSparseSlide } from '../test/slide/sparse_tiff.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);
const dir = mkdtempSync(join(tmpdir(), 'lungpath-bench-mask-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const path = join(dir, 'slide-102400.tiff');
  let t = performance.now();
  await writeSparseSlide(path, 102_400, 0.25, [{ cx: 20_000, cy: 30_000, r: 2500 }, { cx: 70_000, cy: 60_000, r: 2000 }]);
  console.log(`wrote a 102,400² test slide in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  for (const reader of ['openslide', 'js'] as const) {
    const open: number[] = [], read: number[] = [], detect: number[] = [];
    let shape = '';
    for (let r = 0; r < runs; r++) {
      t = performance.now();
      const slide = await openSlide(path, { reader });
      open.push(performance.now() - t);
      const level = maskLevel(slide);
      const { width, height, downsample } = slide.info.levels[level]!;
      shape = `level ${level} (downsample ${downsample}), ${width}×${height}`;
      t = performance.now();
      const image = await slide.readRegion(level, 0, 0, width, height);
      read.push(performance.now() - t);
      t = performance.now();
      detectTissue(image);
      detect.push(performance.now() - t);
      slide.close();
    }
    const total = median(open.map((o, i) => o + read[i]! + detect[i]!));
    console.log(`${reader}: mask of 102,400² from ${shape}: total ${total.toFixed(0)} ms (open ${median(open).toFixed(0)}, read ${median(read).toFixed(0)}, detect ${median(detect).toFixed(0)}) — median of ${runs}, load average ${loadavg()[0]!.toFixed(1)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
