/**
 * Child process of large_slide.test.ts: for each reader named (argv: slide, out, jobs, readers...),
 * resets the peak resident set size (writing 5 to /proc/self/clear_refs), detects tissue and cuts
 * tiles with labels from a CSV, then reads the peak (VmHWM in /proc/self/status): one JSON line per
 * reader, measured for this process alone. Linux only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cutTiles } from '../../src/slide/cut.ts';
import { openSlide } from '../../src/slide/open.ts';
import { slideTissueMask } from '../../src/slide/tissue.ts';

const [slide, out, jobs, ...readers] = process.argv.slice(2) as [string, string, string, ...('openslide' | 'js')[]];
const peakMiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
for (const reader of readers) {
  globalThis.gc?.();
  writeFileSync('/proc/self/clear_refs', '5');
  const started = performance.now();
  const s = await openSlide(slide, { reader });
  const { mask } = await slideTissueMask(s);
  const maskSeconds = (performance.now() - started) / 1000;
  s.close();
  const labels = `${out}-${reader}.csv`;
  writeFileSync(labels, `slide,label\n${slide.split('/').pop()},ADC\n`);
  const summary = await cutTiles({ slides: [slide], out: `${out}-${reader}`, labels, size: 512, minTissue: 0.5, minInside: 0.5, reader, concurrency: Number(jobs) });
  console.log(JSON.stringify({ reader, tiles: summary.tiles, tissuePixels: mask.data.reduce((a, b) => a + b, 0), maskLevel: mask.level, maskSeconds, seconds: (performance.now() - started) / 1000, peakRssMiB: peakMiB() }));
}
