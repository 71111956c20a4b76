/**
 * One large, mostly empty slide (40,960 × 40,960 at 0.5 µm/px: 1.68 gigapixels, 9 levels, written
 * in seconds by sparse_tiff.ts) through tissue detection and `lungpath tiles` with each reader, in a
 * child process whose peak resident memory (VmHWM, reset between readers) must stay under
 * RSS_CAP_MIB. Measured here: 213 MiB with OpenSlide, 236 MiB with the JS reader (run second, in
 * the same process), 4 tiles in flight. Level 0 in RGB would be 4.7 GiB; the run holds the mask
 * level (1280², 4.7 MiB) and `jobs` tiles at once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeSparseSlide, type Disc } from './sparse_tiff.ts';

const SIZE = 40_960;
const RSS_CAP_MIB = 384;
const DISCS: Disc[] = [{ cx: 8000, cy: 9000, r: 1400 }, { cx: 30000, cy: 28000, r: 1000 }, { cx: 20000, cy: 34000, r: 700 }];
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-large-'));
  await writeSparseSlide(join(dir, 'large.tiff'), SIZE, 0.5, DISCS);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it(`mask and tiles of a 40,960² slide under ${RSS_CAP_MIB} MiB peak RSS with each reader`, () => {
  const child = join(import.meta.dirname, 'rss_child.ts');
  const lines = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', child, join(dir, 'large.tiff'), join(dir, 'out'), '4', 'openslide', 'js'], { encoding: 'utf8' }).trim().split('\n');
  const results = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  expect(results.map((r) => r.reader)).toEqual(['openslide', 'js']);
  for (const result of results) {
    console.log(`large slide: ${JSON.stringify(result)}`);
    expect(result.maskLevel).toBe(5); // downsample 32: 1280²
    // The discs' area at the mask level, within 5% (edges and JPEG).
    const expected = DISCS.reduce((n, d) => n + Math.PI * (d.r / 32) ** 2, 0);
    expect(Math.abs(result.tissuePixels - expected) / expected).toBeLessThan(0.05);
    // 512-px tiles at least half tissue: about the discs' area / 512², give or take the edges.
    const area = DISCS.reduce((n, d) => n + Math.PI * d.r * d.r, 0) / 512 ** 2;
    expect(result.tiles).toBeGreaterThan(area * 0.6);
    expect(result.tiles).toBeLessThan(area * 1.4);
    expect(result.peakRssMiB).toBeLessThan(RSS_CAP_MIB);
  }
});
