/**
 * The pictures of `lungpath predict-slide`: heatmap.png (the slide's thumbnail with each classified
 * tile's cell tinted by its class — the palette of src/train/heatmap.ts, opacity by confidence — and
 * a legend with each class's share of the classified tissue and the slide's call), and two Deep Zoom
 * pyramids written by sharp's .tile(): slide.dzi (the slide at a viewing level, JPEG tiles) and
 * overlay.dzi (the class colours alone, PNG tiles with transparency), the same aspect, for a viewer
 * (OpenSeadragon) to stack at the same world width.
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import type { ModelConfig } from '../nn/config.ts';
import { MAX_REGION_PIXELS, type RgbImage, type Slide, type SlideInfo } from '../slide/slide.ts';
import { CLASS_COLOURS } from '../nn/heatmap_cells.ts';
import type { SlidePrediction } from './slide_predict.ts';
import type { SlideSummary } from './slide_outputs.ts';

/** Longest side of heatmap.png's image part. */
export const HEATMAP_SIDE = 1024;
/** Longest side of the slide.dzi image (the finest level at most this large is used). */
export const VIEW_SIDE = 8192;
/** Longest side of the overlay.dzi image. */
export const OVERLAY_SIDE = 4096;

function rgb(hex: string): [number, number, number] {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The overlay as RGBA of `width`×`height` covering the whole slide: each tile's cell in its class colour. */
export function overlayRaster(info: SlideInfo, prediction: SlidePrediction, width: number, height: number, alpha: (confidence: number) => number): Uint8Array {
  const out = new Uint8Array(width * height * 4);
  const sx = width / info.width, sy = height / info.height;
  const step = prediction.plan.step;
  for (const t of prediction.tiles) {
    const inset = Math.max(0, (t.width - step) / 2);
    const s = Math.min(t.width, step);
    const x0 = Math.round((t.x + inset) * sx), x1 = Math.min(width, Math.round((t.x + inset + s) * sx));
    const y0 = Math.round((t.y + inset) * sy), y1 = Math.min(height, Math.round((t.y + inset + s) * sy));
    const [r, g, b] = rgb(CLASS_COLOURS[t.predicted % CLASS_COLOURS.length]!);
    const a = Math.round(255 * alpha(t.probabilities[t.predicted]!));
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out.set([r, g, b, a], (y * width + x) * 4);
  }
  return out;
}

function fitted(w: number, h: number, side: number): { width: number; height: number } {
  const f = Math.min(1, side / Math.max(w, h));
  return { width: Math.max(1, Math.round(w * f)), height: Math.max(1, Math.round(h * f)) };
}

/** heatmap.png: the thumbnail tinted by class (alpha 0.25 + 0.45·confidence), grid-free, with a legend. */
export async function renderSlideHeatmap(info: SlideInfo, config: ModelConfig, prediction: SlidePrediction, summary: SlideSummary, thumbnail: RgbImage): Promise<Buffer> {
  const { width, height } = fitted(info.width, info.height, HEATMAP_SIDE);
  const base = await sharp(thumbnail.data, { raw: { width: thumbnail.width, height: thumbnail.height, channels: 3 } }).resize(width, height, { fit: 'fill' }).png().toBuffer();
  const overlay = overlayRaster(info, prediction, width, height, (c) => 0.25 + 0.45 * c);
  const legendHeight = 56 + 22 * config.classes.length;
  const canvasWidth = Math.max(width, 520);
  const legend = config.classes.map((c, i) => {
    const y = height + 50 + 22 * i;
    const a = summary.areas[c]!;
    const area = a.mm2 === null ? `${a.pixels} px²` : `${a.mm2.toFixed(3)} mm²`;
    return `<rect x="10" y="${y - 12}" width="14" height="14" fill="${CLASS_COLOURS[i % CLASS_COLOURS.length]}"/><text x="30" y="${y}" font-family="DejaVu Sans, sans-serif" font-size="14">${escapeXml(c)}: ${a.tiles} tiles, ${(100 * a.share).toFixed(1)}% of classified tissue (${area})</text>`;
  });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${canvasWidth}" height="${height + legendHeight}">
    <rect x="0" y="${height}" width="${canvasWidth}" height="${legendHeight}" fill="white"/>
    <text x="10" y="${height + 24}" font-family="DejaVu Sans, sans-serif" font-size="16" font-weight="bold">Slide call: ${escapeXml(summary.call ?? 'no tissue classified')}</text>
    <text x="${canvasWidth - 10}" y="${height + 24}" text-anchor="end" font-family="DejaVu Sans, sans-serif" font-size="12" fill="#555">${summary.tiles} tiles of ${summary.tileSize} px${summary.mpp ? ` at ${summary.mpp} µm/px` : ''}</text>
    ${legend.join('\n')}
  </svg>`;
  return sharp(base)
    .extend({ bottom: legendHeight, right: canvasWidth - width, background: '#ffffff' })
    .composite([
      { input: Buffer.from(overlay), raw: { width, height, channels: 4 }, top: 0, left: 0 },
      { input: Buffer.from(svg), top: 0, left: 0 },
    ])
    .png()
    .toBuffer();
}

/** The finest level whose longer side is at most VIEW_SIDE (the coarsest level when none is). */
export function viewLevel(info: SlideInfo): number {
  for (let level = 0; level < info.levels.length; level++) {
    const l = info.levels[level]!;
    if (Math.max(l.width, l.height) <= VIEW_SIDE) return level;
  }
  return info.levels.length - 1;
}

/**
 * Writes `<name>.dzi` and `<name>_files/` into `dir` atomically enough for a reader: the pyramid is
 * built in a temporary folder, its tile folder moved in first and the .dzi file last, so an
 * existing .dzi always has its whole tile folder.
 */
async function writeDzi(dir: string, name: string, image: Sharp, format: 'png' | 'jpeg'): Promise<void> {
  const tmp = join(dir, `.dzi-${name}.${process.pid}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const pipeline = format === 'png' ? image.png() : image.jpeg({ quality: 85 });
    await pipeline.tile({ size: 256, overlap: 0, layout: 'dz' }).toFile(join(tmp, `${name}.dz`));
    rmSync(join(dir, `${name}_files`), { recursive: true, force: true });
    renameSync(join(tmp, `${name}_files`), join(dir, `${name}_files`));
    renameSync(join(tmp, `${name}.dzi`), join(dir, `${name}.dzi`));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * slide.dzi (the slide at viewLevel; the mask's thumbnail when a slide has no level small enough
 * to read whole) and overlay.dzi (class colours, alpha 0.35 + 0.5·confidence). Reading the view
 * level whole costs up to VIEW_SIDE² × 7 bytes (OpenSlide's ARGB and the RGB copy: ~450 MiB at 8192²).
 */
export async function writeDeepZoom(dir: string, slide: Slide, prediction: SlidePrediction): Promise<{ view: { width: number; height: number }; overlay: { width: number; height: number } }> {
  const info = slide.info;
  const level = viewLevel(info);
  const l = info.levels[level]!;
  const image = l.width * l.height <= MAX_REGION_PIXELS && Math.max(l.width, l.height) <= 2 * VIEW_SIDE ? await slide.readRegion(level, 0, 0, l.width, l.height) : prediction.thumbnail;
  const view = { width: image.width, height: image.height };
  await writeDzi(dir, 'slide', sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }), 'jpeg');
  const size = fitted(info.width, info.height, Math.min(OVERLAY_SIDE, Math.max(view.width, view.height)));
  const raster = overlayRaster(info, prediction, size.width, size.height, (c) => 0.35 + 0.5 * c);
  await writeDzi(dir, 'overlay', sharp(raster, { raw: { width: size.width, height: size.height, channels: 4 } }), 'png');
  return { view: { width: view.width, height: view.height }, overlay: size };
}
