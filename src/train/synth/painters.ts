/**
 * The four morphologies, painted as stain densities (h: haematoxylin, nuclei; e: eosin, cytoplasm
 * and stroma). Lengths are in px of a 256² image times `u` = size / 256, so a larger image shows the
 * same field of view at a higher resolution. The pattern descriptions follow standard lung
 * pathology (WHO classification of thoracic tumours):
 *  - NORM: alveolar air spaces framed by thin septa with few flat (type I pneumocyte/endothelial)
 *    nuclei, some rounder type II nuclei at the septal junctions, red cells, alveolar macrophages.
 *  - SCLC: sheets of small dark round-to-oval nuclei with scant cytoplasm, finely granular
 *    chromatin, nuclear moulding (neighbouring nuclei flattened against each other), necrosis.
 *  - SC: nests of large polygonal cells with glassy pink cytoplasm, sharp cell borders, vesicular
 *    nuclei with nucleoli, keratin pearls (concentric lamellae of keratin), stroma between nests.
 *  - ADC: glands — rings of columnar cells with basal, radially elongated nuclei around lumens —
 *    in a fibrous stroma with sparse spindle nuclei.
 */
import type { Rng } from '../../nn/random.ts';
import { type Canvas, cellMap, clamp01, hash2, jitteredGrid, smoothstep, stampEllipse, uniform, valueNoise } from './canvas.ts';

export type Painter = (c: Canvas, rng: Rng, u: number) => void;

/** Random warp fields for `cellMap`: bends walls by up to `amp` px over `cell` px. */
function warpFields(size: number, cell: number, amp: number, rng: Rng): [Float32Array, Float32Array, number] {
  return [valueNoise(size, cell, rng), valueNoise(size, cell, rng), amp];
}

/** Fibrous stroma: pale eosin with streaks along a random direction, sparse spindle nuclei. */
function paintStroma(c: Canvas, rng: Rng, u: number, mask: Float32Array | null, strength: number): void {
  const { size } = c;
  const fine = valueNoise(size, 2.5 * u, rng);
  const coarse = valueNoise(size, 30 * u, rng);
  const angle = rng.next() * Math.PI;
  const ca = Math.cos(angle);
  const sa = Math.sin(angle);
  const freq = (2 * Math.PI) / (uniform(rng, 3, 5) * u);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const m = mask ? (mask[i] as number) : 1;
      if (m <= 0) continue;
      const along = -x * sa + y * ca + 6 * u * (coarse[i] as number);
      const streak = 0.5 + 0.5 * Math.sin(along * freq + 3 * (fine[i] as number));
      const ev = strength * (0.7 + 0.25 * streak + 0.3 * ((fine[i] as number) - 0.5));
      c.paint(i, m, 0.03, ev);
    }
  }
  const spindles = Math.round(((size * size) / (u * u)) * uniform(rng, 1 / 900, 1 / 500));
  for (let k = 0; k < spindles; k++) {
    const x = rng.next() * size;
    const y = rng.next() * size;
    const i = Math.floor(y) * size + Math.floor(x);
    if (mask && (mask[i] as number) < 0.9) continue;
    const el = { x, y, a: uniform(rng, 2.5, 4.5) * u, b: uniform(rng, 0.7, 1.0) * u, angle: angle + 0.4 * rng.normal() };
    stampEllipse(c, el, uniform(rng, 0.7, 1.0), 0.15, { soft: 0.7 * u });
  }
}

/** Normal lung: alveoli of rounded Voronoi cells whose walls are thin eosinophilic septa. */
export const paintNormal: Painter = (c, rng, u) => {
  const { size } = c;
  const spacing = uniform(rng, 20, 30) * u;
  const grid = jitteredGrid(size, spacing, 0.85, rng);
  const map = cellMap(size, grid, warpFields(size, 28 * u, uniform(rng, 4, 7) * u, rng));
  const thick = valueNoise(size, 12 * u, rng);
  const fine = valueNoise(size, 2 * u, rng);
  const wall = uniform(rng, 1.1, 1.9) * u;
  const eWall = uniform(rng, 0.5, 0.7);
  const radius = new Float32Array(grid.x.length);
  for (let k = 0; k < radius.length; k++) radius[k] = uniform(rng, 0.6, 0.75) * spacing;
  // Some walls are missing (alveolar ducts, sacs), so the spaces differ in size and shape.
  const drop = uniform(rng, 0.1, 0.25);
  const dropSeed = rng.nextU32() | 0;
  // Some alveoli hold pale pink oedema fluid.
  const fluid = new Float32Array(grid.x.length);
  const wet = uniform(rng, 0, 0.3);
  for (let k = 0; k < fluid.length; k++) fluid[k] = rng.next() < wet ? uniform(rng, 0.05, 0.16) : 0;
  const soft = 0.6 * u;
  for (let i = 0; i < size * size; i++) {
    const p = map.nearest[i] as number;
    const q = map.second[i] as number;
    const t = wall * (0.6 + 0.9 * (thick[i] as number));
    const edge = map.edge[i] as number;
    const near = edge < t + soft && hash2(Math.min(p, q), Math.max(p, q), dropSeed) >= drop;
    const septum = near ? 1 - smoothstep(t - soft, t + soft, edge) : 0;
    const corner = smoothstep(-soft, soft, (map.d1[i] as number) - (radius[p] as number));
    const tissue = Math.max(septum, corner);
    const grain = 0.8 + 0.4 * (fine[i] as number);
    c.h[i] = tissue * 0.15 * grain;
    c.e[i] = (tissue * eWall + (1 - tissue) * (fluid[p] as number)) * grain;
  }
  // Flat nuclei lying along the septa, rounder type II nuclei where septa meet.
  const nuclei = Math.round(((size * size) / (u * u)) * uniform(rng, 1 / 900, 1 / 500));
  for (let k = 0, tries = 0; k < nuclei && tries < 40 * nuclei; tries++) {
    const x = rng.next() * size;
    const y = rng.next() * size;
    const i = Math.floor(y) * size + Math.floor(x);
    const atWall = (map.edge[i] as number) < wall * 0.8;
    const atCorner = (map.d1[i] as number) > (radius[map.nearest[i] as number] as number) + 1.5 * u;
    if (!atWall && !atCorner) continue;
    k++;
    if (atCorner && rng.next() < 0.6) {
      stampEllipse(c, { x, y, a: uniform(rng, 1.7, 2.3) * u, b: uniform(rng, 1.4, 1.8) * u, angle: rng.next() * Math.PI }, uniform(rng, 0.75, 0.95), 0.2, { soft: 0.6 * u });
      continue;
    }
    const p = map.nearest[i] as number;
    const q = map.second[i] as number;
    const normal = Math.atan2((grid.y[q] as number) - (grid.y[p] as number), (grid.x[q] as number) - (grid.x[p] as number));
    const el = { x, y, a: uniform(rng, 3, 4.5) * u, b: uniform(rng, 0.8, 1.15) * u, angle: normal + Math.PI / 2 };
    stampEllipse(c, el, uniform(rng, 0.85, 1.1), 0.1, { soft: 0.6 * u });
  }
  // Red cells in the septal capillaries.
  const reds = Math.round(((size * size) / (u * u)) * uniform(rng, 1 / 1500, 1 / 500));
  for (let k = 0, tries = 0; k < reds && tries < 40 * reds; tries++) {
    const x = rng.next() * size;
    const y = rng.next() * size;
    const i = Math.floor(y) * size + Math.floor(x);
    if ((map.edge[i] as number) > wall * 0.7) continue;
    k++;
    stampEllipse(c, { x, y, a: 1.3 * u, b: 1.1 * u, angle: 0 }, 0.02, uniform(rng, 1.0, 1.3), { soft: 0.5 * u });
  }
  // Alveolar macrophages: round cells with a brownish cytoplasm, loose in the air spaces.
  const macrophages = rng.below(7);
  for (let k = 0; k < macrophages; k++) {
    const x = rng.next() * size;
    const y = rng.next() * size;
    const r = uniform(rng, 3.5, 5) * u;
    stampEllipse(c, { x, y, a: r, b: r * uniform(rng, 0.8, 1), angle: rng.next() * Math.PI }, 0.18, 0.4, { soft: 0.8 * u });
    stampEllipse(c, { x: x + 0.4 * r * rng.normal(), y: y + 0.4 * r * rng.normal(), a: 1.8 * u, b: 1.5 * u, angle: rng.next() * Math.PI }, 0.8, 0.2, { soft: 0.6 * u });
  }
};

/** Small cell carcinoma: crowded moulded nuclei (Voronoi cells ∩ ovals), necrosis, thin septa. */
export const paintSmallCell: Painter = (c, rng, u) => {
  const { size } = c;
  const spacing = uniform(rng, 5.2, 6.6) * u;
  const grid = jitteredGrid(size, spacing, 0.9, rng);
  const map = cellMap(size, grid, warpFields(size, 20 * u, 1.5 * u, rng));
  const chromatin = valueNoise(size, 1.1 * u, rng);
  const n = grid.x.length;
  const radius = new Float32Array(n);
  const aspect = new Float32Array(n);
  const cos = new Float32Array(n);
  const sin = new Float32Array(n);
  const dark = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    radius[k] = uniform(rng, 0.42, 0.6) * spacing;
    aspect[k] = uniform(rng, 1, 1.5);
    const a = rng.next() * Math.PI;
    cos[k] = Math.cos(a);
    sin[k] = Math.sin(a);
    dark[k] = uniform(rng, 0.65, 0.95);
  }
  const gap = 0.3 * u;
  const soft = 0.5 * u;
  // Necrosis and thin fibrovascular septa, from two low-frequency fields.
  const necrosis = valueNoise(size, 50 * u, rng, 2);
  const necroticCut = rng.next() < 0.5 ? 1 : uniform(rng, 0.62, 0.72);
  const septa = valueNoise(size, 70 * u, rng, 2);
  const septumWidth = rng.next() < 0.4 ? 0 : uniform(rng, 0.008, 0.025);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const k = map.nearest[i] as number;
      const dx = x + 0.5 - (grid.x[k] as number);
      const dy = y + 0.5 - (grid.y[k] as number);
      const r = radius[k] as number;
      const pu = (dx * (cos[k] as number) + dy * (sin[k] as number)) / (r * (aspect[k] as number));
      const pv = (dy * (cos[k] as number) - dx * (sin[k] as number)) / r;
      const inside = Math.min((1 - Math.sqrt(pu * pu + pv * pv)) * r, (map.edge[i] as number) - gap);
      const a = clamp01(inside / soft + 0.5);
      const hv = (dark[k] as number) * (0.75 + 0.5 * (chromatin[i] as number));
      c.h[i] = 0.06 + a * (hv - 0.06);
      c.e[i] = 0.28 - a * 0.12;
      const nec = smoothstep(necroticCut, necroticCut + 0.03, necrosis[i] as number);
      if (nec > 0) c.paint(i, nec, (chromatin[i] as number) > 0.8 ? 0.9 : 0.12, 0.42);
      const band = Math.abs((septa[i] as number) - 0.5);
      if (band < septumWidth) c.paint(i, 1 - smoothstep(septumWidth * 0.5, septumWidth, band), 0.05, 0.5);
    }
  }
};

/** Squamous cell carcinoma: nests of polygonal pink cells with sharp borders, keratin pearls. */
export const paintSquamous: Painter = (c, rng, u) => {
  const { size } = c;
  const spacing = uniform(rng, 12, 17) * u;
  const grid = jitteredGrid(size, spacing, 0.7, rng);
  const map = cellMap(size, grid, warpFields(size, 40 * u, 2.5 * u, rng));
  const grain = valueNoise(size, 1.5 * u, rng);
  const n = grid.x.length;
  const cyto = new Float32Array(n);
  const nucleus = new Float32Array(n);
  for (let k = 0; k < n; k++) {
    cyto[k] = uniform(rng, 0.5, 0.75);
    nucleus[k] = uniform(rng, 0.2, 0.28) * spacing;
  }
  const border = uniform(rng, 0.45, 0.7) * u;
  const soft = 0.5 * u;
  for (let i = 0; i < size * size; i++) {
    const k = map.nearest[i] as number;
    const g = grain[i] as number;
    const line = 1 - smoothstep(border - soft, border + soft, map.edge[i] as number);
    const halo = 1 - smoothstep(border + soft, border + 3 * soft, map.edge[i] as number);
    const ev = (cyto[k] as number) * (0.88 + 0.24 * g) * (1 - 0.35 * (halo - line));
    c.h[i] = 0.04 + line * 0.35;
    c.e[i] = ev + line * 0.2;
  }
  for (let k = 0; k < n; k++) {
    const x = (grid.x[k] as number) + 0.1 * spacing * rng.normal();
    const y = (grid.y[k] as number) + 0.1 * spacing * rng.normal();
    if (x < -spacing || y < -spacing || x > size + spacing || y > size + spacing) continue;
    const r = nucleus[k] as number;
    const el = { x, y, a: r * uniform(rng, 1, 1.3), b: r, angle: rng.next() * Math.PI };
    stampEllipse(c, el, uniform(rng, 0.55, 0.85), 0.25, { soft: 0.6 * u, texture: grain, grain: 0.5, rim: 0.6 });
    stampEllipse(c, { x, y, a: 0.8 * u, b: 0.8 * u, angle: 0 }, 1.1, 0.2, { soft: 0.5 * u, alpha: 0.9 });
  }
  // Stroma between the nests.
  const nests = valueNoise(size, 60 * u, rng, 2);
  const cut = uniform(rng, 0.25, 0.35);
  const stromaMask = new Float32Array(size * size);
  for (let i = 0; i < stromaMask.length; i++) stromaMask[i] = 1 - smoothstep(cut - 0.02, cut + 0.02, nests[i] as number);
  paintStroma(c, rng, u, stromaMask, uniform(rng, 0.35, 0.5));
  // Keratin pearls: concentric eosinophilic lamellae with flattened nuclei in the outer rings.
  const pearls = 1 + rng.below(3);
  for (let p = 0; p < pearls; p++) {
    const R = uniform(rng, 18, 32) * u;
    const cx = uniform(rng, 0.1, 0.9) * size;
    const cy = uniform(rng, 0.1, 0.9) * size;
    const period = uniform(rng, 3, 4.2) * u;
    const phase = rng.next() * 6.28;
    const x0 = Math.max(0, Math.floor(cx - R - 2 * u));
    const x1 = Math.min(size - 1, Math.ceil(cx + R + 2 * u));
    const y0 = Math.max(0, Math.floor(cy - R - 2 * u));
    const y1 = Math.min(size - 1, Math.ceil(cy + R + 2 * u));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - cx;
        const dy = y + 0.5 - cy;
        const theta = Math.atan2(dy, dx);
        const rr = Math.hypot(dx, dy) * (1 + 0.07 * Math.sin(3 * theta + phase));
        const a = 1 - smoothstep(R - 1.5 * u, R + 1.5 * u, rr);
        if (a <= 0) continue;
        const lamella = 0.5 + 0.5 * Math.cos((2 * Math.PI * rr) / period);
        const core = 1 - smoothstep(0.2 * R, 0.4 * R, rr);
        const ev = 0.55 + 0.75 * lamella * (1 - core) + 0.6 * core;
        c.paint(y * size + x, a, 0.03 + 0.08 * lamella * (1 - core), ev);
      }
    }
    const flat = Math.round((2 * Math.PI * R) / (5 * u));
    for (let k = 0; k < flat; k++) {
      const t = rng.next() * 2 * Math.PI;
      const rr = R * uniform(rng, 0.55, 0.95);
      const el = { x: cx + rr * Math.cos(t), y: cy + rr * Math.sin(t), a: uniform(rng, 2.5, 3.8) * u, b: uniform(rng, 0.7, 1) * u, angle: t + Math.PI / 2 };
      stampEllipse(c, el, uniform(rng, 0.7, 1), 0.3, { soft: 0.5 * u });
    }
  }
};

/** Adenocarcinoma: glands (columnar epithelium around a lumen) in fibrous stroma. */
export const paintAdeno: Painter = (c, rng, u) => {
  const { size } = c;
  paintStroma(c, rng, u, null, uniform(rng, 0.35, 0.5));
  const grain = valueNoise(size, 1.2 * u, rng);
  const glands: { x: number; y: number; r: number }[] = [];
  const gap = uniform(rng, 1.5, 6) * u;
  const rMin = uniform(rng, 9, 12);
  const rMax = rMin + uniform(rng, 5, 10);
  for (let tries = 0; tries < 400; tries++) {
    const r = uniform(rng, rMin, rMax) * u;
    const x = uniform(rng, -r, size + r);
    const y = uniform(rng, -r, size + r);
    if (glands.some((g) => Math.hypot(g.x - x, g.y - y) < g.r + r + gap)) continue;
    glands.push({ x, y, r });
  }
  const soft = 0.6 * u;
  for (const g of glands) {
    const aspect = uniform(rng, 1, 1.7);
    const rot = rng.next() * Math.PI;
    const cr = Math.cos(rot);
    const sr = Math.sin(rot);
    const h2 = 0.12 * rng.normal();
    const h3 = 0.08 * rng.normal();
    const p2 = rng.next() * 6.28;
    const p3 = rng.next() * 6.28;
    const thick = Math.min(uniform(rng, 4.5, 6.5) * u, 0.6 * g.r);
    const radiusAt = (t: number) => g.r * (1 + h2 * Math.sin(2 * t + p2) + h3 * Math.sin(3 * t + p3));
    const secretion = rng.next() < 0.3 ? uniform(rng, 0.05, 0.2) : 0;
    const wobble = Math.abs(h2) + Math.abs(h3);
    const rOut = g.r * (1 + wobble) + soft;
    const rIn = g.r * (1 - wobble) - thick - soft;
    const reach = rOut * aspect + u;
    const x0 = Math.max(0, Math.floor(g.x - reach));
    const x1 = Math.min(size - 1, Math.ceil(g.x + reach));
    const y0 = Math.max(0, Math.floor(g.y - reach));
    const y1 = Math.min(size - 1, Math.ceil(g.y + reach));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - g.x;
        const dy = y + 0.5 - g.y;
        const lx = (dx * cr + dy * sr) / aspect;
        const ly = dy * cr - dx * sr;
        const r = Math.sqrt(lx * lx + ly * ly);
        if (r >= rOut) continue;
        const i = y * size + x;
        const gr = grain[i] as number;
        if (r <= rIn) {
          c.paint(i, 1, 0, secretion * gr);
          continue;
        }
        const R = radiusAt(Math.atan2(ly, lx));
        const outer = 1 - smoothstep(R - soft, R + soft, r);
        if (outer <= 0) continue;
        const lumen = 1 - smoothstep(R - thick - soft, R - thick + soft, r);
        c.paint(i, outer, 0.1 + 0.06 * gr, 0.4 + 0.15 * gr);
        if (lumen > 0) c.paint(i, lumen, 0, secretion * gr);
      }
    }
    // Columnar cells: one radially elongated nucleus per cell, near the basement membrane.
    const width = uniform(rng, 3.2, 4.2) * u;
    const cells = Math.max(6, Math.round((2 * Math.PI * (g.r - thick / 2) * (1 + aspect) * 0.5) / width));
    for (let k = 0; k < cells; k++) {
      const t = ((k + 0.3 * rng.normal()) / cells) * 2 * Math.PI;
      const rr = radiusAt(t) - thick * uniform(rng, 0.3, 0.45);
      const lx = rr * Math.cos(t) * aspect;
      const ly = rr * Math.sin(t);
      const x = g.x + lx * cr - ly * sr;
      const y = g.y + lx * sr + ly * cr;
      const el = { x, y, a: thick * uniform(rng, 0.28, 0.36), b: uniform(rng, 0.9, 1.2) * u, angle: Math.atan2(y - g.y, x - g.x) };
      stampEllipse(c, el, uniform(rng, 0.9, 1.2), 0.1, { soft: 0.5 * u, texture: grain, grain: 0.4 });
    }
  }
};

/** The painter of each class (synth.ts checks that every class has one). */
export const PAINTERS = { NORM: paintNormal, SCLC: paintSmallCell, SC: paintSquamous, ADC: paintAdeno } as const;
