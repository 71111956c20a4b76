/**
 * The text outputs of `lungpath predict-slide` for one slide: tiles.csv and tiles.json (per-tile
 * probabilities, level-0 pixel coordinates), summary.json (area per class and the slide-level call
 * with its rule) and annotations.geojson for QuPath (File › Import objects…: a FeatureCollection of
 * `tile` objects, each with properties.classification {name, color} and properties.measurements
 * {"<class> probability": p, "Tissue fraction": t} — the keys QuPath's PathObjectTypeAdapters read,
 * measurements as an object as QuPath ≥ 0.4 writes them).
 */
import type { ModelConfig } from '../nn/config.ts';
import type { SlideInfo } from '../slide/slide.ts';
import { CLASS_COLOURS } from './heatmap.ts';
import type { SlidePrediction, TileResult } from './slide_predict.ts';

/** The rule behind summary.json's `call`, stated in the summary itself. */
export const CALL_RULE =
  'plurality by tissue area: each classified tile counts its grid cell (step² level-0 pixels) times its tissue fraction for its predicted (Level-2) class; the class with the largest area is the call, ties to the higher mean probability';

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** tiles.csv: x, y, width, height (level-0 px), tissue, one probability column per class, class. */
export function tilesCsv(config: ModelConfig, tiles: readonly TileResult[]): string {
  const header = ['x', 'y', 'width', 'height', 'tissue', ...config.classes.map((c) => `p_${c}`), 'class'].map(csvField).join(',');
  const rows = tiles.map((t) => [t.x, t.y, t.width, t.height, t.tissue.toFixed(4), ...t.probabilities.map((p) => String(p)), csvField(config.classes[t.predicted]!)].join(','));
  return [header, ...rows].join('\n') + '\n';
}

/** tiles.json: the same rows as objects, with the plan. */
export function tilesJson(info: SlideInfo, config: ModelConfig, prediction: SlidePrediction): string {
  const { plan } = prediction;
  return JSON.stringify({
    slide: info.path,
    classes: config.classes,
    tileSize: plan.size,
    mpp: plan.mpp,
    level: plan.level,
    step: plan.step,
    tiles: prediction.tiles.map((t) => ({ x: t.x, y: t.y, width: t.width, height: t.height, tissue: Number(t.tissue.toFixed(4)), class: config.classes[t.predicted], probabilities: Object.fromEntries(config.classes.map((c, i) => [c, t.probabilities[i]])) })),
  });
}

export interface SlideSummary {
  slide: string;
  reader: string;
  width: number;
  height: number;
  slideMpp: [number, number] | null;
  /** Microns per model pixel the tiles were classified at. */
  mpp: number | null;
  tileSize: number;
  level: number;
  tiles: number;
  /** Per class: tiles predicted, tissue area in level-0 px² and in mm² (when the mpp is known), share of classified area. */
  areas: Record<string, { tiles: number; pixels: number; mm2: number | null; share: number }>;
  meanProbabilities: Record<string, number>;
  call: string | null;
  rule: string;
  timings: Record<string, number>;
}

export function slideSummary(info: SlideInfo, config: ModelConfig, prediction: SlidePrediction, extra: { run: string }): SlideSummary & { run: string } {
  const { plan, tiles } = prediction;
  const k = config.classes.length;
  const pixels = new Array<number>(k).fill(0);
  const counts = new Array<number>(k).fill(0);
  const meanP = new Array<number>(k).fill(0);
  const cell = plan.step * plan.step;
  for (const t of tiles) {
    pixels[t.predicted] += cell * t.tissue;
    counts[t.predicted]++;
    t.probabilities.forEach((p, i) => (meanP[i] += p / tiles.length));
  }
  const total = pixels.reduce((a, b) => a + b, 0);
  const umPerPx = info.mpp ? (info.mpp[0] + info.mpp[1]) / 2 : null;
  let call: number | null = null;
  for (let i = 0; i < k; i++) {
    if (counts[i] === 0) continue;
    if (call === null || pixels[i]! > pixels[call]! || (pixels[i] === pixels[call] && meanP[i]! > meanP[call]!)) call = i;
  }
  const t = prediction.timings;
  return {
    slide: info.path,
    run: extra.run,
    reader: info.reader,
    width: info.width,
    height: info.height,
    slideMpp: info.mpp,
    mpp: plan.mpp,
    tileSize: plan.size,
    level: plan.level,
    tiles: tiles.length,
    areas: Object.fromEntries(config.classes.map((c, i) => [c, { tiles: counts[i]!, pixels: Math.round(pixels[i]!), mm2: umPerPx === null ? null : Number(((pixels[i]! * umPerPx * umPerPx) / 1e6).toFixed(6)), share: total > 0 ? Number((pixels[i]! / total).toFixed(6)) : 0 }])),
    meanProbabilities: Object.fromEntries(config.classes.map((c, i) => [c, Number(meanP[i]!.toFixed(6))])),
    call: call === null ? null : config.classes[call]!,
    rule: CALL_RULE,
    timings: { maskMs: Math.round(t.maskMs), decodeMs: Math.round(t.decodeMs), decodeWaitMs: Math.round(t.decodeWaitMs), uploadMs: Math.round(t.uploadMs), gpuMs: Math.round(t.gpuMs), wallMs: Math.round(t.wallMs), resumedTiles: prediction.resumed },
  };
}

function hexToRgb(hex: string): [number, number, number] {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

/** annotations.geojson: one QuPath `tile` object per classified tile (its grid cell as a square). */
export function qupathGeoJson(config: ModelConfig, prediction: SlidePrediction): string {
  const { plan, tiles } = prediction;
  const features = tiles.map((t) => {
    // The tile's own cell: with a stride below the tile size, tiles overlap; each object is then
    // the step-sized square at the tile's centre, so objects tile the slide without overlapping.
    const inset = (t.width - plan.step) / 2;
    const x0 = Math.round(t.x + Math.max(0, inset)), y0 = Math.round(t.y + Math.max(0, inset));
    const s = Math.round(Math.min(t.width, plan.step));
    const name = config.classes[t.predicted]!;
    const measurements: Record<string, number> = { 'Tissue fraction': Number(t.tissue.toFixed(4)) };
    config.classes.forEach((c, i) => (measurements[`${c} probability`] = t.probabilities[i]!));
    return {
      type: 'Feature',
      geometry: { type: 'Polygon', coordinates: [[[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s], [x0, y0]]] },
      properties: { objectType: 'tile', classification: { name, color: hexToRgb(CLASS_COLOURS[t.predicted % CLASS_COLOURS.length]!) }, measurements },
    };
  });
  return JSON.stringify({ type: 'FeatureCollection', features });
}
