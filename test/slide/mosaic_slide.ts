/**
 * Test slides for predict-slide: a pyramidal JPEG-tiled TIFF (sharp/libvips) on a light background
 * with blocks of whole synthetic H&E images (src/train/synth.ts, `cell` pixels each, unchanged —
 * the images the bundled demo model was trained on are of this kind) placed on a grid aligned to
 * the slide's origin, so each model tile of `cell` pixels at level 0 is exactly one image of a
 * known class. Plus the bundled demo model as a run folder.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type OverlayOptions } from 'sharp';
import { renderSynthImage, SYNTH_CLASSES } from '../../src/train/synth.ts';
import { BACKGROUND } from './make_slide.ts';

export interface MosaicBlock {
  className: string;
  /** Grid column and row of the block's top-left cell, and its size in cells. */
  col: number;
  row: number;
  cols: number;
  rows: number;
}

export interface MosaicSpec {
  /** Slide size in cells. */
  cols: number;
  rows: number;
  cell: number;
  mpp: number;
  blocks: MosaicBlock[];
  seed: number;
}

/** The class painted at grid cell (col, row), or null. */
export function mosaicClassAt(spec: MosaicSpec, col: number, row: number): string | null {
  const b = spec.blocks.find((b) => col >= b.col && col < b.col + b.cols && row >= b.row && row < b.row + b.rows);
  return b ? b.className : null;
}

export async function writeMosaicSlide(path: string, spec: MosaicSpec): Promise<void> {
  const overlays: OverlayOptions[] = [];
  let k = 0;
  for (const b of spec.blocks) {
    const cls = (SYNTH_CLASSES as readonly string[]).indexOf(b.className);
    for (let r = 0; r < b.rows; r++) for (let c = 0; c < b.cols; c++) {
      const rgb = renderSynthImage(cls, spec.cell, spec.seed * 1000 + k++);
      overlays.push({ input: Buffer.from(rgb), raw: { width: spec.cell, height: spec.cell, channels: 3 }, left: (b.col + c) * spec.cell, top: (b.row + r) * spec.cell });
    }
  }
  const pxPerMm = 1000 / spec.mpp;
  await sharp({ create: { width: spec.cols * spec.cell, height: spec.rows * spec.cell, channels: 3, background: BACKGROUND } })
    .composite(overlays)
    .tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 92, tileWidth: 256, tileHeight: 256, xres: pxPerMm, yres: pxPerMm, resolutionUnit: 'cm' })
    .toFile(path);
}

/** A run folder holding the bundled demo model (demo/public/model, tiny preset, 256² images). */
export function demoRun(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const f of ['level1.safetensors', 'level2.safetensors']) copyFileSync(join('demo/public/model', f), join(dir, f));
  const bytes = readFileSync(join(dir, 'level1.safetensors'));
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(JSON.parse(header.__metadata__.config), null, 2));
  return dir;
}
