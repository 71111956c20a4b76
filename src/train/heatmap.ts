/**
 * The per-patch heatmap: the image (at the model's size) with each patch's stride cell tinted by
 * its Level-1 class (opacity by confidence), a grid, and a legend naming the classes and the
 * image-level prediction. Rendered with sharp (an SVG overlay composited on the image); the cells
 * and palette are src/nn/heatmap_cells.ts's, as the browser demo's.
 */
import sharp from 'sharp';
import type { ModelConfig } from '../nn/config.ts';
import { CLASS_COLOURS, heatmapLayout } from '../nn/heatmap_cells.ts';
import type { ImagePrediction } from './predict.ts';

export { CLASS_COLOURS } from '../nn/heatmap_cells.ts';

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export async function renderHeatmap(rgb: Uint8Array, config: ModelConfig, prediction: ImagePrediction): Promise<Buffer> {
  // Small images are shown enlarged so the cells and legend stay readable.
  const layout = heatmapLayout(config, prediction);
  const size = layout.side;
  const legendHeight = 52 + 22 * config.classes.length;
  const cells = layout.cells.map(
    (c) => `<rect x="${c.x}" y="${c.y}" width="${c.size}" height="${c.size}" fill="${c.colour}" fill-opacity="${c.opacity.toFixed(3)}" stroke="white" stroke-opacity="0.5" stroke-width="1"/>`,
  );
  const legend = config.classes.map((c, i) => {
    const y = size + 50 + 22 * i;
    const p = prediction.probabilities[c] ?? 0;
    return `<rect x="10" y="${y - 12}" width="14" height="14" fill="${CLASS_COLOURS[i % CLASS_COLOURS.length]}"/><text x="30" y="${y}" font-family="DejaVu Sans, sans-serif" font-size="14">${escapeXml(c)}: image probability ${(100 * p).toFixed(1)}%</text>`;
  });
  const width = Math.max(size, 460);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${size + legendHeight}">
    ${cells.join('\n')}
    <rect x="0" y="${size}" width="${width}" height="${legendHeight}" fill="white"/>
    <text x="10" y="${size + 22}" font-family="DejaVu Sans, sans-serif" font-size="16" font-weight="bold">Predicted: ${escapeXml(prediction.class)}</text>
    <text x="${width - 10}" y="${size + 22}" text-anchor="end" font-family="DejaVu Sans, sans-serif" font-size="12" fill="#555">tint: Level-1 class of each patch</text>
    ${legend.join('\n')}
  </svg>`;
  const base = await sharp(rgb, { raw: { width: config.imageSize, height: config.imageSize, channels: 3 } })
    .resize(size, size, { kernel: 'nearest' })
    .png()
    .toBuffer();
  return sharp(base)
    .extend({ bottom: legendHeight, right: width - size, background: '#ffffff' })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}
