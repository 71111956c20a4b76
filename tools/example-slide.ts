/**
 * The README's slide example: `npx tsx tools/example-slide.ts OUT` writes OUT/example.tiff, a
 * 4096×3072 pyramidal TIFF at 0.5 µm/px whose tissue is whole synthetic H&E images (256², the demo
 * model's size) in four irregular class regions, and OUT/run/, a run folder holding the bundled demo
 * model (demo/public/model). Then:
 *
 *   lungpath predict-slide --run OUT/run --out OUT/results OUT/example.tiff
 *   cp OUT/results/example/heatmap.png docs/slide-heatmap.png
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { demoRun, writeMosaicSlide, type MosaicBlock } from '../test/slide/mosaic_slide.ts';

const out = process.argv[2];
if (!out) {
  console.error('usage: npx tsx tools/example-slide.ts OUT');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

// Four blobs (centre col/row, radius in cells), one per class, as single-cell blocks.
const blobs: [string, number, number, number][] = [['NORM', 3.5, 3, 2.6], ['SCLC', 12, 3.5, 2.4], ['SC', 4, 9, 2.2], ['ADC', 11, 8.5, 2.8]];
const blocks: MosaicBlock[] = [];
for (let row = 0; row < 12; row++) for (let col = 0; col < 16; col++) {
  for (const [className, cx, cy, r] of blobs) {
    const wobble = 0.5 * Math.sin(3 * Math.atan2(row + 0.5 - cy, col + 0.5 - cx) + cx);
    if (Math.hypot(col + 0.5 - cx, row + 0.5 - cy) < r + wobble) {
      blocks.push({ className, col, row, cols: 1, rows: 1 });
      break;
    }
  }
}
await writeMosaicSlide(join(out, 'example.tiff'), { cols: 16, rows: 12, cell: 256, mpp: 0.5, seed: 41, blocks });
demoRun(join(out, 'run'));
console.log(`wrote ${join(out, 'example.tiff')} (${blocks.length} tissue cells) and the run folder ${join(out, 'run')}`);
