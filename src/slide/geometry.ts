/**
 * Plane geometry of annotation regions in level-0 pixels: point in polygon (even-odd over a
 * polygon's rings, so holes are outside), the share of a rectangle inside a region (sampled on a
 * SHARE_SAMPLES² grid of points), and a check that a polygon's rings neither cross themselves nor
 * each other (edges bucketed on a grid, so large QuPath outlines are checked in near-linear time).
 */

export type Point = [number, number];
export type Ring = Point[];
/** Outer ring then holes; rings closed (last point = first). */
export type Polygon = Ring[];

/** Points per side of the grid on which the share of a tile inside a region is measured. */
export const SHARE_SAMPLES = 16;

export interface Bounds {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export function bounds(polygons: readonly Polygon[]): Bounds {
  const b = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
  for (const p of polygons) for (const [x, y] of p[0] ?? []) {
    if (x < b.x0) b.x0 = x;
    if (x > b.x1) b.x1 = x;
    if (y < b.y0) b.y0 = y;
    if (y > b.y1) b.y1 = y;
  }
  return b;
}

/** Whether (x, y) lies inside `polygon` (even-odd rule over all its rings: holes are outside). */
export function pointInPolygon(polygon: Polygon, x: number, y: number): boolean {
  let inside = false;
  for (const ring of polygon) {
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const xi = ring[i]![0], yi = ring[i]![1], xj = ring[j]![0], yj = ring[j]![1];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
  }
  return inside;
}

/** Share (0–1) of the rectangle [x0, x1) × [y0, y1) inside any of `polygons`, on a SHARE_SAMPLES² grid of cell centres. */
export function shareInside(polygons: readonly Polygon[], x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let j = 0; j < SHARE_SAMPLES; j++) {
    const y = y0 + ((j + 0.5) * (y1 - y0)) / SHARE_SAMPLES;
    for (let i = 0; i < SHARE_SAMPLES; i++) {
      const x = x0 + ((i + 0.5) * (x1 - x0)) / SHARE_SAMPLES;
      if (polygons.some((p) => pointInPolygon(p, x, y))) n++;
    }
  }
  return n / (SHARE_SAMPLES * SHARE_SAMPLES);
}

/** Orientation of (a, b, c): > 0 counter-clockwise, < 0 clockwise, 0 collinear. */
function orient(a: Point, b: Point, c: Point): number {
  return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
}

function onSegment(a: Point, b: Point, p: Point): boolean {
  return Math.min(a[0], b[0]) <= p[0] && p[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= p[1] && p[1] <= Math.max(a[1], b[1]);
}

function segmentsIntersect(a: Point, b: Point, c: Point, d: Point): boolean {
  const o1 = orient(a, b, c), o2 = orient(a, b, d), o3 = orient(c, d, a), o4 = orient(c, d, b);
  if (((o1 > 0 && o2 < 0) || (o1 < 0 && o2 > 0)) && ((o3 > 0 && o4 < 0) || (o3 < 0 && o4 > 0))) return true;
  return (o1 === 0 && onSegment(a, b, c)) || (o2 === 0 && onSegment(a, b, d)) || (o3 === 0 && onSegment(c, d, a)) || (o4 === 0 && onSegment(c, d, b));
}

/**
 * The first place where `polygon`'s edges cross or touch other than at shared neighbouring
 * vertices (a self-intersecting ring, or a hole crossing its outer ring), or null.
 */
export function findSelfIntersection(polygon: Polygon): Point | null {
  const edges: [Point, Point, number, number][] = []; // a, b, ring, index in ring
  polygon.forEach((ring, r) => {
    for (let i = 0; i + 1 < ring.length; i++) edges.push([ring[i]!, ring[i + 1]!, r, i]);
  });
  if (edges.length < 3) return null;
  const b = bounds([polygon]);
  const cells = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(edges.length))));
  const cw = (b.x1 - b.x0) / cells || 1, ch = (b.y1 - b.y0) / cells || 1;
  const grid = new Map<number, number[]>();
  edges.forEach(([a, c], e) => {
    const cx0 = Math.min(cells - 1, Math.floor((Math.min(a[0], c[0]) - b.x0) / cw)), cx1 = Math.min(cells - 1, Math.floor((Math.max(a[0], c[0]) - b.x0) / cw));
    const cy0 = Math.min(cells - 1, Math.floor((Math.min(a[1], c[1]) - b.y0) / ch)), cy1 = Math.min(cells - 1, Math.floor((Math.max(a[1], c[1]) - b.y0) / ch));
    for (let cy = cy0; cy <= cy1; cy++) for (let cx = cx0; cx <= cx1; cx++) {
      const key = cy * cells + cx;
      const list = grid.get(key);
      if (list) list.push(e);
      else grid.set(key, [e]);
    }
  });
  for (const list of grid.values()) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const e = edges[list[i]!]!, f = edges[list[j]!]!;
        if (e[2] === f[2]) {
          const n = polygon[e[2]]!.length - 1; // edges in this ring
          const d = Math.abs(e[3] - f[3]);
          if (d === 1 || d === n - 1) {
            // Neighbours share a vertex; they only intersect wrongly when they overlap along a line.
            const shared = d === 1 ? (e[3] < f[3] ? e[1] : f[1]) : e[3] === 0 ? e[0] : f[0];
            const other = e[0] === shared ? e[1] : e[0];
            const otherF = f[0] === shared ? f[1] : f[0];
            if (orient(shared, other, otherF) === 0 && (other[0] - shared[0]) * (otherF[0] - shared[0]) + (other[1] - shared[1]) * (otherF[1] - shared[1]) > 0) return shared;
            continue;
          }
        }
        if (segmentsIntersect(e[0], e[1], f[0], f[1])) return intersectionPoint(e[0], e[1], f[0], f[1]);
      }
    }
  }
  return null;
}

function intersectionPoint(a: Point, b: Point, c: Point, d: Point): Point {
  const den = (a[0] - b[0]) * (c[1] - d[1]) - (a[1] - b[1]) * (c[0] - d[0]);
  if (den === 0) return a;
  const t = ((a[0] - c[0]) * (c[1] - d[1]) - (a[1] - c[1]) * (c[0] - d[0])) / den;
  return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
}
