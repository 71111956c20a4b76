/**
 * The text outputs of `lungpath predict-slide` for one slide: tiles.csv and tiles.json (per-tile
 * probabilities, level-0 pixel coordinates), summary.json (area per class and the slide-level call
 * with its rule) and annotations.geojson for QuPath (File › Import objects…): a FeatureCollection
 * of one `annotation` per predicted class (the union of its tiles' cells, MultiPolygon with holes)
 * followed by one `tile` object per tile, each with properties.classification {name, color} and
 * properties.measurements {"<class> probability": p, …} — the keys QuPath's PathObjectTypeAdapters
 * read, measurements as an object as QuPath ≥ 0.4 writes them.
 */
import type { ModelConfig } from '../nn/config.ts';
import { cellRegions } from '../slide/grid_regions.ts';
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

/**
 * annotations.geojson: per predicted class one QuPath annotation (the union of its tiles' cells,
 * clipped to the slide), then one `tile` object per tile (its cell as a square). A tile's cell is
 * the tile itself at the default stride; with a smaller stride tiles overlap and the cell is the
 * step-sized square at the tile's centre, so cells never overlap.
 */
export function qupathGeoJson(info: SlideInfo, config: ModelConfig, prediction: SlidePrediction): string {
  const { plan, tiles } = prediction;
  const inset = Math.max(0, (plan.size * plan.scale - plan.step) / 2);
  const cellSide = Math.min(plan.size * plan.scale, plan.step);
  const colour = (i: number) => hexToRgb(CLASS_COLOURS[i % CLASS_COLOURS.length]!);
  const toX = (g: number) => Math.min(info.width, Math.round(g * plan.step + inset));
  const toY = (g: number) => Math.min(info.height, Math.round(g * plan.step + inset));
  const regions = config.classes.flatMap((name, k) => {
    const mine = tiles.filter((t) => t.predicted === k);
    if (mine.length === 0) return [];
    const cells = new Set(mine.map((t) => `${Math.round(t.x / plan.step)},${Math.round(t.y / plan.step)}`));
    const polygons = cellRegions(cells).map((polygon) => polygon.map((ring) => ring.map(([gx, gy]) => [toX(gx), toY(gy)])));
    const measurements: Record<string, number> = { Tiles: mine.length };
    config.classes.forEach((c, i) => (measurements[`Mean ${c} probability`] = mine.reduce((s, t) => s + t.probabilities[i]!, 0) / mine.length));
    return [{
      type: 'Feature',
      geometry: polygons.length === 1 ? { type: 'Polygon', coordinates: polygons[0] } : { type: 'MultiPolygon', coordinates: polygons },
      properties: { objectType: 'annotation', name: `${name} (predicted)`, classification: { name, color: colour(k) }, measurements },
    }];
  });
  const tileFeatures = tiles.map((t) => {
    const x0 = Math.round(t.x + inset), y0 = Math.round(t.y + inset);
    const s = Math.round(cellSide);
    const measurements: Record<string, number> = { 'Tissue fraction': Number(t.tissue.toFixed(4)) };
    config.classes.forEach((c, i) => (measurements[`${c} probability`] = t.probabilities[i]!));
    return {
      type: 'Feature',
      geometry: { type: 'Polygon', coordinates: [[[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s], [x0, y0]]] },
      properties: { objectType: 'tile', classification: { name: config.classes[t.predicted]!, color: colour(t.predicted) }, measurements },
    };
  });
  return JSON.stringify({ type: 'FeatureCollection', features: [...regions, ...tileFeatures] });
}
