/**
 * Tissue detection on a test slide with a known layout (make_slide.ts standardRegions): the mask
 * against the painted regions (IoU), the grey artefacts left out, an empty slide with no tissue,
 * Otsu's threshold, and tile tissue fractions against a brute-force count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSlide } from '../../src/slide/open.ts';
import { resizeArea, slideThumbnail } from '../../src/slide/thumbnail.ts';
import { integralMask, otsuThreshold, slideTissueMask, tissueFraction, type TissueMask } from '../../src/slide/tissue.ts';
import { regionAt, standardRegions, writeTestSlide } from './make_slide.ts';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-tissue-'));
  await Promise.all([
    writeTestSlide(join(dir, 'a.svs'), { width: 4096, height: 4096, mpp: 0.5, format: 'svs', regions: standardRegions(), seed: 3 }),
    writeTestSlide(join(dir, 'empty.tiff'), { width: 2048, height: 2048, mpp: 0.5, format: 'tiff', regions: [], seed: 4 }),
  ]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['openslide', 'js'] as const)('%s reader', (reader) => {
  it('the mask matches the painted regions (IoU > 0.99) and leaves out the grey dust and smear', async () => {
    const slide = await openSlide(join(dir, 'a.svs'), { reader });
    const { mask } = await slideTissueMask(slide);
    slide.close();
    expect([mask.level, mask.width, mask.height, mask.scale]).toEqual([2, 1024, 1024, [4, 4]]);
    const regions = standardRegions();
    let both = 0, either = 0;
    for (let y = 0; y < mask.height; y++) for (let x = 0; x < mask.width; x++) {
      const truth = regionAt(regions, (x + 0.5) * 4, (y + 0.5) * 4) !== null;
      const found = mask.data[y * mask.width + x] === 1;
      if (truth && found) both++;
      if (truth || found) either++;
    }
    const iou = both / either;
    console.log(`tissue mask IoU against the painted layout (${reader}): ${iou.toFixed(4)}`);
    expect(iou).toBeGreaterThan(0.99);
    // The NORM region's hole (768..1280 square) is background, not a hole to fill: it stays out.
    expect(mask.data[(1024 / 4) * mask.width + 1024 / 4]).toBe(0);
  });
});

it('an empty slide (background and grey artefacts only) has no tissue', async () => {
  const slide = await openSlide(join(dir, 'empty.tiff'));
  const { mask } = await slideTissueMask(slide);
  slide.close();
  expect(mask.data.reduce((a, b) => a + b, 0)).toBe(0);
});

it("Otsu's threshold splits two clusters between them", () => {
  const v = new Uint8Array(1000);
  for (let i = 0; i < 1000; i++) v[i] = i < 700 ? 5 + (i % 7) : 120 + (i % 30);
  const t = otsuThreshold(v);
  expect(t).toBeGreaterThan(11);
  expect(t).toBeLessThanOrEqual(120);
});

it('tissue fractions of rectangles equal a brute-force area-weighted count', () => {
  const w = 37, h = 29;
  const data = new Uint8Array(w * h);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 5 < 2 ? 1 : 0;
  const mask: TissueMask = { width: w, height: h, data, scale: [3.5, 4], threshold: 0, level: 0 };
  const integral = integralMask(mask);
  const brute = (x0: number, y0: number, x1: number, y1: number) => {
    let s = 0;
    for (let py = 0; py < h; py++) for (let px = 0; px < w; px++) {
      const ox = Math.max(0, Math.min((px + 1) * 3.5, x1) - Math.max(px * 3.5, x0));
      const oy = Math.max(0, Math.min((py + 1) * 4, y1) - Math.max(py * 4, y0));
      s += ox * oy * data[py * w + px]!;
    }
    return s / ((x1 - x0) * (y1 - y0));
  };
  for (const [x0, y0, x1, y1] of [[0, 0, 10, 10], [1, 2, 3, 3], [5.5, 7, 90, 60], [100, 100, 140, 130], [120, 110, 200, 200], [-10, -10, 20, 20], [0, 0, 129.5, 116]]) {
    expect(tissueFraction(mask, integral, x0!, y0!, x1!, y1!)).toBeCloseTo(brute(x0!, y0!, x1!, y1!), 9);
  }
});

it('a thumbnail is the coarsest level ≥ the size asked, area-averaged to fit', async () => {
  const slide = await openSlide(join(dir, 'a.svs'));
  const thumb = await slideThumbnail(slide, 300);
  const level4 = await slide.readRegion(4, 0, 0, 256, 256);
  const level3 = await slide.readRegion(3, 0, 0, 512, 512);
  slide.close();
  expect([thumb.width, thumb.height]).toEqual([300, 300]);
  // Against level 3 (512²) shrunk by exact area averaging computed here in float64.
  const s = 512 / 300;
  let maxDiff = 0;
  for (const [x, y] of [[0, 0], [150, 150], [299, 299], [77, 201]] as const) {
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      for (let py = Math.floor(y * s); py < Math.ceil((y + 1) * s); py++) for (let px = Math.floor(x * s); px < Math.ceil((x + 1) * s); px++) {
        const w = (Math.min(px + 1, (x + 1) * s) - Math.max(px, x * s)) * (Math.min(py + 1, (y + 1) * s) - Math.max(py, y * s));
        sum += w * level3.data[(py * 512 + px) * 3 + c]!;
      }
      maxDiff = Math.max(maxDiff, Math.abs(thumb.data[(y * 300 + x) * 3 + c]! - sum / (s * s)));
    }
  }
  expect(maxDiff).toBeLessThanOrEqual(0.5);
  expect(resizeArea(level4, 256, 256).data).toEqual(level4.data);
});
