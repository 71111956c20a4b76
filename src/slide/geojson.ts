/**
 * QuPath GeoJSON annotations (File › Export objects as GeoJSON): a FeatureCollection, an array of
 * Features or one Feature, coordinates in level-0 pixels. Each annotation with a classification and
 * a Polygon or MultiPolygon geometry (holes included) becomes a region of that class; detections,
 * unclassified annotations and other geometry types are listed in `ignored`. Problems — not JSON,
 * unknown classes (when a class list is given), invalid or self-intersecting rings, coordinates
 * outside the slide — are all collected and thrown together as one AnnotationError naming the file
 * and each feature. Pure: no file system (the caller reads the text).
 */
import { bounds, findSelfIntersection, type Point, type Polygon, type Ring } from './geometry.ts';

/** One annotated region: a class and one or more polygons with holes. */
export interface AnnotationRegion {
  /** QuPath's id, else `feature N`. */
  id: string;
  className: string;
  polygons: Polygon[];
}

export interface ParsedAnnotations {
  regions: AnnotationRegion[];
  /** Features not used, one line each (why). */
  ignored: string[];
}

export interface ParseAnnotationOptions {
  /** The slide's level-0 size: every coordinate must lie inside [0, width] × [0, height]. */
  slideSize?: { width: number; height: number };
  /** Allowed class names; a classification outside them is a problem. */
  classes?: readonly string[];
}

/** The annotation file's problems, one per line, under the file's name. */
export class AnnotationError extends Error {
  constructor(
    readonly path: string,
    readonly problems: string[],
  ) {
    super(`${path}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n${problems.map((p) => `  ${p}`).join('\n')}`}`);
    this.name = 'AnnotationError';
  }
}

/** Most vertices one file may hold (a hostile file cannot make the intersection check run for hours). */
export const MAX_VERTICES = 5_000_000;
const MAX_LISTED = 20;

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses QuPath GeoJSON text (see the file header). */
export function parseAnnotations(path: string, text: string, options: ParseAnnotationOptions = {}): ParsedAnnotations {
  let doc: Json;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new AnnotationError(path, [`not valid JSON (${(e as Error).message})`]);
  }
  let features: Json[];
  if (Array.isArray(doc)) features = doc;
  else if (isObject(doc) && doc.type === 'FeatureCollection') {
    if (!Array.isArray(doc.features)) throw new AnnotationError(path, ['FeatureCollection without a "features" array']);
    features = doc.features;
  } else if (isObject(doc) && doc.type === 'Feature') features = [doc];
  else throw new AnnotationError(path, [`not GeoJSON annotations: expected a FeatureCollection, a Feature or an array of Features, found ${describe(doc)}`]);

  const problems: string[] = [];
  const ignored: string[] = [];
  const regions: AnnotationRegion[] = [];
  let vertices = 0;
  features.forEach((feature, index) => {
    if (problems.length > MAX_LISTED) return;
    const label = isObject(feature) && (typeof feature.id === 'string' || typeof feature.id === 'number') ? `feature ${index} (id ${feature.id})` : `feature ${index}`;
    if (!isObject(feature) || feature.type !== 'Feature') {
      problems.push(`${label}: not a GeoJSON Feature (found ${describe(feature)})`);
      return;
    }
    const props = isObject(feature.properties) ? feature.properties : {};
    const objectType = props.objectType;
    if (objectType !== undefined && objectType !== 'annotation') {
      ignored.push(`${label}: a ${String(objectType)}, not an annotation`);
      return;
    }
    const className = classificationName(props.classification);
    if (className === null) {
      ignored.push(`${label}: no classification`);
      return;
    }
    if (options.classes && !options.classes.includes(className)) {
      problems.push(`${label}: class '${className}' is not one of the classes (${options.classes.join(', ')})`);
      return;
    }
    const geometry = feature.geometry;
    if (!isObject(geometry)) {
      problems.push(`${label}: no geometry`);
      return;
    }
    let raw: Json[];
    if (geometry.type === 'Polygon') raw = [geometry.coordinates];
    else if (geometry.type === 'MultiPolygon') {
      if (!Array.isArray(geometry.coordinates)) {
        problems.push(`${label}: MultiPolygon coordinates must be an array of polygons`);
        return;
      }
      raw = geometry.coordinates;
    } else {
      ignored.push(`${label}: ${typeof geometry.type === 'string' ? geometry.type : 'unknown'} geometry (only Polygon and MultiPolygon are regions)`);
      return;
    }
    const polygons: Polygon[] = [];
    for (let p = 0; p < raw.length; p++) {
      const where = raw.length > 1 ? `${label}, polygon ${p}` : label;
      const polygon = readPolygon(raw[p], where, problems);
      if (!polygon) return;
      vertices += polygon.reduce((n, r) => n + r.length, 0);
      if (vertices > MAX_VERTICES) {
        problems.push(`more than ${MAX_VERTICES} vertices in the file`);
        return;
      }
      const crossing = findSelfIntersection(polygon);
      if (crossing) {
        problems.push(`${where}: self-intersecting geometry (edges cross near (${crossing[0].toFixed(1)}, ${crossing[1].toFixed(1)})); fix it in QuPath (Objects › Annotations › Simplify or redraw)`);
        return;
      }
      polygons.push(polygon);
    }
    if (polygons.length === 0) {
      problems.push(`${label}: empty geometry`);
      return;
    }
    if (options.slideSize) {
      const b = bounds(polygons);
      const { width, height } = options.slideSize;
      const tol = 1;
      if (b.x0 < -tol || b.y0 < -tol || b.x1 > width + tol || b.y1 > height + tol) {
        problems.push(`${label} (${className}): lies outside the slide: it spans x ${fmt(b.x0)}..${fmt(b.x1)}, y ${fmt(b.y0)}..${fmt(b.y1)}, the slide is ${width}×${height} (is this the annotation file of another slide?)`);
        return;
      }
    }
    regions.push({ id: isObject(feature) && feature.id !== undefined ? String(feature.id) : `feature ${index}`, className, polygons });
  });
  if (problems.length > MAX_LISTED) problems.splice(MAX_LISTED, Infinity, `… and more (listing stopped after ${MAX_LISTED})`);
  if (problems.length > 0) throw new AnnotationError(path, problems);
  return { regions, ignored };
}

/** QuPath writes `classification: { name, color }`; older exports a plain name. */
function classificationName(c: Json): string | null {
  if (typeof c === 'string' && c.trim() !== '') return c.trim();
  if (isObject(c) && typeof c.name === 'string' && c.name.trim() !== '') return c.name.trim();
  return null;
}

function readPolygon(raw: Json, where: string, problems: string[]): Polygon | null {
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.push(`${where}: a polygon must be a non-empty array of rings`);
    return null;
  }
  const polygon: Polygon = [];
  for (let r = 0; r < raw.length; r++) {
    const ringWhere = `${where}, ${r === 0 ? 'outer ring' : `hole ${r}`}`;
    const ring = raw[r];
    if (!Array.isArray(ring)) {
      problems.push(`${ringWhere}: not an array of positions`);
      return null;
    }
    const points: Ring = [];
    for (let i = 0; i < ring.length; i++) {
      const p = ring[i];
      if (!Array.isArray(p) || p.length < 2 || typeof p[0] !== 'number' || typeof p[1] !== 'number' || !Number.isFinite(p[0]) || !Number.isFinite(p[1])) {
        problems.push(`${ringWhere}: position ${i} is ${describe(p)}, not [x, y] with finite numbers`);
        return null;
      }
      points.push([p[0], p[1]] as Point);
    }
    if (points.length < 4) {
      problems.push(`${ringWhere}: ${points.length} positions; a ring needs at least 4 (3 corners and the first again)`);
      return null;
    }
    const [f, l] = [points[0]!, points[points.length - 1]!];
    if (f[0] !== l[0] || f[1] !== l[1]) {
      problems.push(`${ringWhere}: not closed (the last position must repeat the first)`);
      return null;
    }
    if (Math.abs(ringArea(points)) === 0) {
      problems.push(`${ringWhere}: encloses no area`);
      return null;
    }
    polygon.push(points);
  }
  return polygon;
}

function ringArea(ring: Ring): number {
  let a = 0;
  for (let i = 0; i + 1 < ring.length; i++) a += ring[i]![0] * ring[i + 1]![1] - ring[i + 1]![0] * ring[i]![1];
  return a / 2;
}

function describe(v: Json): string {
  const text = JSON.stringify(v);
  if (text === undefined) return String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
