/**
 * The per-patch heatmap as geometry, platform-neutral: the palette and, for a prediction, each
 * patch's stride cell (position at display scale, class colour, opacity 0.15 + 0.45·confidence).
 * Two painters draw it — the CLI's PNG (src/train/heatmap.ts, SVG through sharp) and the browser
 * demo's canvas (demo/heatmap.ts) — so both show the same picture.
 */
import type { ImagePrediction } from './classify.ts';
import type { ModelConfig } from './config.ts';

/** Distinct colours for up to 8 classes (Okabe–Ito, colour-blind safe). */
export const CLASS_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'] as const;

/** The colour of class `name` (by its index in `classes`). */
export function classColour(classes: readonly string[], name: string): string {
  return CLASS_COLOURS[Math.max(0, classes.indexOf(name)) % CLASS_COLOURS.length] as string;
}

export interface HeatmapCell {
  x: number;
  y: number;
  size: number;
  colour: string;
  opacity: number;
}

export interface HeatmapLayout {
  /** Display pixels per image pixel: small images are enlarged to at least 512 pixels a side. */
  scale: number;
  /** Side of the displayed image. */
  side: number;
  cells: HeatmapCell[];
}

/** Where each patch's cell goes: the centre stride×stride square of the patch, at display scale. */
export function heatmapLayout(config: ModelConfig, prediction: ImagePrediction | null): HeatmapLayout {
  const scale = Math.max(1, Math.ceil(512 / config.imageSize));
  const stride = config.patch.stride * scale;
  const inset = ((config.patch.size - config.patch.stride) * scale) / 2;
  const cells = (prediction?.patches ?? []).map((p) => ({
    x: p.x * stride + inset,
    y: p.y * stride + inset,
    size: stride,
    colour: classColour(config.classes, p.class),
    opacity: 0.15 + 0.45 * (p.probabilities[p.class] ?? 0),
  }));
  return { scale, side: config.imageSize * scale, cells };
}
