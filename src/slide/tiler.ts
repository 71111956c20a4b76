/**
 * Which tiles to cut from a slide: a grid aligned to the slide's origin at the chosen resolution,
 * read from the nearest finer pyramid level, and the tiles kept — enough tissue (the mask's
 * area-weighted fraction) and, with annotations, enough of the tile inside one class's regions
 * (measured on a 16×16 grid of points, geometry.ts). Pure: no I/O.
 */
import { bounds, shareInside } from './geometry.ts';
import type { AnnotationRegion } from './geojson.ts';
import { SlideError, type SlideInfo } from './slide.ts';
import { integralMask, tissueFraction, type TissueMask } from './tissue.ts';

export interface TileGrid {
  /** Output tile side in pixels. */
  size: number;
  /** Microns per output pixel, or null when the slide has no mpp and none was asked for. */
  mpp: number | null;
  /** Level-0 pixels per output pixel. */
  scale: number;
  /** The pyramid level read (the coarsest whose downsample ≤ scale). */
  level: number;
  /** Level-0 pixels one tile spans (size · scale). */
  span: number;
  across: number;
  down: number;
}

/** Relative tolerance when comparing resolutions (an mpp written as 0.2520 against 0.252). */
const RESOLUTION_TOLERANCE = 1e-3;

/** The grid of `size`-pixel tiles at `mpp` µm/px (default: level 0's resolution). */
export function planGrid(info: SlideInfo, size: number, mpp?: number): TileGrid {
  let scale = 1;
  let outMpp = info.mpp ? info.mpp[0] : null;
  if (mpp !== undefined) {
    if (!info.mpp) throw new SlideError(info.path, `the slide does not say its microns per pixel (no MPP field, no resolution tags), so --mpp ${mpp} cannot be met; leave out --mpp to cut at level 0's resolution`);
    if (Math.abs(info.mpp[0] - info.mpp[1]) > RESOLUTION_TOLERANCE * info.mpp[0]) throw new SlideError(info.path, `pixels are not square (${info.mpp[0]} × ${info.mpp[1]} µm); this is not supported`);
    scale = mpp / info.mpp[0];
    if (scale < 1 - RESOLUTION_TOLERANCE) throw new SlideError(info.path, `--mpp ${mpp} is finer than the slide's level 0 (${info.mpp[0]} µm/px); tiles are never upsampled`);
    if (scale < 1 + RESOLUTION_TOLERANCE) scale = 1;
    outMpp = mpp;
  }
  let level = 0;
  info.levels.forEach((l, i) => {
    if (l.downsample <= scale * (1 + RESOLUTION_TOLERANCE)) level = i;
  });
  const span = size * scale;
  return { size, mpp: outMpp, scale, level, span, across: Math.floor(info.width / span), down: Math.floor(info.height / span) };
}

export interface PlannedTile {
  /** Grid position. */
  col: number;
  row: number;
  /** Top-left corner in level-0 pixels (col · span, rounded). */
  x: number;
  y: number;
  tissue: number;
  className: string;
  /** The ids of the class's annotations near the tile ('+'-joined), or 'slide' for a label from the CSV. */
  annotation: string;
  /** Share of the tile inside the annotation (1 for a slide label). */
  inside: number;
}

export interface SelectOptions {
  minTissue: number;
  /** With annotations: least share of the tile inside one class's regions. */
  minInside: number;
}

export interface Selection {
  tiles: PlannedTile[];
  /** Grid cells considered, and why the others were left out. */
  considered: number;
  lowTissue: number;
  ambiguous: number;
}

/**
 * The tiles to cut: with `regions`, grid cells inside one class's regions (share of the cell inside
 * the union of that class's regions ≥ minInside; a cell inside two classes at that share is
 * ambiguous and left out), else with `label` every cell; in both
 * cases with tissue ≥ minTissue.
 */
export function selectTiles(grid: TileGrid, mask: TissueMask, source: { regions: readonly AnnotationRegion[] } | { label: string }, options: SelectOptions): Selection {
  const integral = integralMask(mask);
  const { span } = grid;
  const selection: Selection = { tiles: [], considered: 0, lowTissue: 0, ambiguous: 0 };
  const cell = (col: number, row: number) => ({ x0: col * span, y0: row * span, x1: (col + 1) * span, y1: (row + 1) * span });
  if ('label' in source) {
    for (let row = 0; row < grid.down; row++) for (let col = 0; col < grid.across; col++) {
      selection.considered++;
      const c = cell(col, row);
      const tissue = tissueFraction(mask, integral, c.x0, c.y0, c.x1, c.y1);
      if (tissue < options.minTissue) selection.lowTissue++;
      else selection.tiles.push({ col, row, x: Math.round(c.x0), y: Math.round(c.y0), tissue, className: source.label, annotation: 'slide', inside: 1 });
    }
    return selection;
  }
  // Regions grouped by class: a tile's share is measured against the union of its class's
  // regions (two adjacent annotations of one class count together). Cells near each class (its
  // regions' bounding boxes), then the best class per cell.
  const byClass = new Map<string, AnnotationRegion[]>();
  for (const region of source.regions) byClass.set(region.className, [...(byClass.get(region.className) ?? []), region]);
  const best = new Map<number, { share: number; className: string; annotation: string; tie: boolean }>();
  for (const [className, regions] of byClass) {
    const polygons = regions.flatMap((r) => r.polygons);
    const boxes = regions.map((r) => ({ id: r.id, ...bounds(r.polygons) }));
    const cells = new Set<number>();
    for (const b of boxes) {
      const c0 = Math.max(0, Math.floor(b.x0 / span)), c1 = Math.min(grid.across - 1, Math.floor(b.x1 / span));
      const r0 = Math.max(0, Math.floor(b.y0 / span)), r1 = Math.min(grid.down - 1, Math.floor(b.y1 / span));
      for (let row = r0; row <= r1; row++) for (let col = c0; col <= c1; col++) cells.add(row * grid.across + col);
    }
    for (const key of cells) {
      const col = key % grid.across, row = Math.floor(key / grid.across);
      const c = cell(col, row);
      const share = shareInside(polygons, c.x0, c.y0, c.x1, c.y1);
      if (share < options.minInside) continue;
      const annotation = boxes.filter((b) => b.x0 < c.x1 && b.x1 > c.x0 && b.y0 < c.y1 && b.y1 > c.y0).map((b) => b.id).join('+');
      const prev = best.get(key);
      if (!prev) best.set(key, { share, className, annotation, tie: false });
      else if (share > prev.share) best.set(key, { share, className, annotation, tie: true });
      else prev.tie = true;
    }
  }
  for (const [key, { share, className, annotation, tie }] of [...best].sort((a, b) => a[0] - b[0])) {
    selection.considered++;
    if (tie) {
      selection.ambiguous++;
      continue;
    }
    const col = key % grid.across, row = Math.floor(key / grid.across);
    const c = cell(col, row);
    const tissue = tissueFraction(mask, integral, c.x0, c.y0, c.x1, c.y1);
    if (tissue < options.minTissue) selection.lowTissue++;
    else selection.tiles.push({ col, row, x: Math.round(c.x0), y: Math.round(c.y0), tissue, className, annotation, inside: share });
  }
  return selection;
}
