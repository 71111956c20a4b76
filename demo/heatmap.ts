/**
 * The per-patch heatmap on a canvas, drawn as the CLI's (src/train/heatmap.ts): the image at the
 * model's size, enlarged to at least 512 pixels, each patch's stride cell tinted by its Level-1 class
 * with opacity 0.15 + 0.45·confidence, and a thin white grid.
 */
import type { ModelConfig } from '../src/nn/config.ts';
import type { ImagePrediction } from '../src/nn/classify.ts';

/** Okabe–Ito colours (colour-blind safe), in the order of src/train/heatmap.ts's CLASS_COLOURS. */
export const CLASS_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

export function classColour(config: ModelConfig, name: string): string {
  return CLASS_COLOURS[Math.max(0, config.classes.indexOf(name)) % CLASS_COLOURS.length] as string;
}

export function drawHeatmap(canvas: HTMLCanvasElement, rgb: Uint8Array, config: ModelConfig, prediction: ImagePrediction | null): void {
  const side = config.imageSize;
  const scale = Math.max(1, Math.ceil(512 / side));
  canvas.width = side * scale;
  canvas.height = side * scale;
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
  if (!prediction) return;
  const stride = config.patch.stride * scale;
  const inset = ((config.patch.size - config.patch.stride) * scale) / 2;
  for (const p of prediction.patches) {
    const x = p.x * stride + inset;
    const y = p.y * stride + inset;
    ctx.globalAlpha = 0.15 + 0.45 * (p.probabilities[p.class] ?? 0);
    ctx.fillStyle = classColour(config, p.class);
    ctx.fillRect(x, y, stride, stride);
    ctx.globalAlpha = 0.5;
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 1;
    ctx.strokeRect(x + 0.5, y + 0.5, stride - 1, stride - 1);
  }
  ctx.globalAlpha = 1;
}
