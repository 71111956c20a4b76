/**
 * The per-patch heatmap on a canvas, drawn as the CLI's (src/train/heatmap.ts): the image at the
 * model's size, enlarged to at least 512 pixels, each patch's stride cell tinted by its Level-1 class
 * with opacity 0.15 + 0.45·confidence, and a thin white grid. Cells and palette: src/nn/heatmap_cells.ts.
 */
import type { ImagePrediction } from '../src/nn/classify.ts';
import type { ModelConfig } from '../src/nn/config.ts';
import { classColour as colourOf, heatmapLayout } from '../src/nn/heatmap_cells.ts';

export function classColour(config: ModelConfig, name: string): string {
  return colourOf(config.classes, name);
}

export function drawHeatmap(canvas: HTMLCanvasElement, rgb: Uint8Array, config: ModelConfig, prediction: ImagePrediction | null): void {
  const side = config.imageSize;
  const layout = heatmapLayout(config, prediction);
  canvas.width = layout.side;
  canvas.height = layout.side;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const rgba = new Uint8ClampedArray(side * side * 4);
  for (let i = 0, j = 0; j < rgb.length; i += 4, j += 3) {
    rgba[i] = rgb[j] as number;
    rgba[i + 1] = rgb[j + 1] as number;
    rgba[i + 2] = rgb[j + 2] as number;
    rgba[i + 3] = 255;
  }
  const source = document.createElement('canvas');
  source.width = side;
  source.height = side;
  source.getContext('2d')?.putImageData(new ImageData(rgba, side, side), 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  for (const c of layout.cells) {
    ctx.globalAlpha = c.opacity;
    ctx.fillStyle = c.colour;
    ctx.fillRect(c.x, c.y, c.size, c.size);
    ctx.globalAlpha = 0.5;
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1;
    ctx.strokeRect(c.x + 0.5, c.y + 0.5, c.size - 1, c.size - 1);
  }
  ctx.globalAlpha = 1;
}
