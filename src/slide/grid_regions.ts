/**
 * Class regions from a grid of classified cells: the union of each class's cells as polygons with
 * holes (what QuPath draws as one annotation per class), by tracing cell boundaries. Cells that
 * touch only at a corner stay separate polygons (4-connectivity): at such a corner the trace turns
 * towards the inside. Rings come out clockwise on screen (y down) for outer boundaries and
 * anticlockwise for holes, without collinear vertices; coordinates are grid corners (integers).
 */

export type GridPoint = [number, number];
/** Outer ring, then holes; each ring closed (first point repeated last), as GeoJSON. */
export type GridPolygon = GridPoint[][];

const DIRS: GridPoint[] = [[1, 0], [0, 1], [-1, 0], [0, -1]]; // E, S, W, N: each the right turn of the one before

/**
 * The polygons covering the cells (col, row) in `cells` (keys `col,row`) of one class.
 * Returns one polygon per 4-connected component, holes included.
 */
export function cellRegions(cells: ReadonlySet<string>): GridPolygon[] {
  const has = (c: number, r: number) => cells.has(`${c},${r}`);
  // Directed boundary edges, interior on the right (y down): keyed by start vertex, with direction.
  const out = new Map<string, { dir: number; used: boolean }[]>();
  const add = (x: number, y: number, dir: number) => {
    const key = `${x},${y}`;
    const list = out.get(key) ?? [];
    list.push({ dir, used: false });
    out.set(key, list);
  };
  for (const key of cells) {
    const [c, r] = key.split(',').map(Number) as [number, number];
    if (!has(c, r - 1)) add(c, r, 0); // top edge, eastwards
    if (!has(c + 1, r)) add(c + 1, r, 1); // right edge, southwards
    if (!has(c, r + 1)) add(c + 1, r + 1, 2); // bottom edge, westwards
    if (!has(c - 1, r)) add(c, r + 1, 3); // left edge, northwards
  }
  const rings: GridPoint[][] = [];
  for (const [startKey, list] of out) {
    for (const first of list) {
      if (first.used) continue;
      const ring: GridPoint[] = [];
      let [x, y] = startKey.split(',').map(Number) as [number, number];
      let edge = first;
      for (;;) {
        edge.used = true;
        ring.push([x, y]);
        x += DIRS[edge.dir]![0];
        y += DIRS[edge.dir]![1];
        const here = out.get(`${x},${y}`)!;
        // Prefer the right turn, then straight on, then the left turn (no U-turns on a boundary).
        const next = [1, 0, 3].map((t) => here.find((e) => e.dir === (edge.dir + t) % 4)).find((e) => e !== undefined)!;
        if (next.used) break;
        edge = next;
      }
      rings.push(simplify(ring));
    }
  }
  const outers = rings.filter((r) => signedArea(r) > 0).map((r) => ({ ring: r, area: signedArea(r), holes: [] as GridPoint[][] }));
  for (const hole of rings.filter((r) => signedArea(r) < 0)) {
    // A point just inside the hole: beside its first edge, on the left (outside the class).
    const [a, b] = [hole[0]!, hole[1]!];
    const d: GridPoint = [Math.sign(b[0] - a[0]), Math.sign(b[1] - a[1])];
    const p: GridPoint = [a[0] + d[0] * 0.5 + d[1] * 0.5, a[1] + d[1] * 0.5 - d[0] * 0.5];
    const owner = outers.filter((o) => insideRing(o.ring, p[0], p[1])).sort((u, v) => u.area - v.area)[0];
    owner?.holes.push(hole);
  }
  return outers.map((o) => [o.ring, ...o.holes].map((r) => [...r, r[0]!]));
}

/** Drops vertices where the boundary goes straight on. */
function simplify(ring: GridPoint[]): GridPoint[] {
  return ring.filter((p, i) => {
    const a = ring[(i + ring.length - 1) % ring.length]!, b = ring[(i + 1) % ring.length]!;
    return (p[0] - a[0]) * (b[1] - p[1]) - (p[1] - a[1]) * (b[0] - p[0]) !== 0;
  });
}

/** Shoelace area; positive for rings clockwise on screen (y down). */
function signedArea(ring: readonly GridPoint[]): number {
  let s = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x0, y0] = ring[i]!, [x1, y1] = ring[(i + 1) % ring.length]!;
    s += x0 * y1 - x1 * y0;
  }
  return s / 2;
}

function insideRing(ring: readonly GridPoint[], x: number, y: number): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!, [xj, yj] = ring[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
