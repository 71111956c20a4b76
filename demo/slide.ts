/**
 * The whole-slide page of the demo (slide.html):
 *  1. a viewer for `lungpath predict-slide` results: the user picks one slide's output folder; its
 *     slide.dzi and overlay.dzi open in OpenSeadragon from the picked files (object URLs, nothing
 *     fetched from elsewhere), the overlay stacked at the same world width, with an opacity slider
 *     and the legend from summary.json;
 *  2. classifying a local slide: the pure-JavaScript reader (src/slide/js_reader.ts, jpeg-js) reads
 *     the file in place (Blob slices), then the tissue mask, the tile grid and the batched two-level
 *     model run as in predict-slide (src/slide/tissue.ts, inference_grid.ts, src/nn/classify_batch.ts),
 *     on WebGPU with the same kernels. Tiles are drawn on the thumbnail as they finish.
 *
 * `window.lungpathSlide` exposes the state and per-tile results for the browser test
 * (test/browser/slide.test.ts); `<body data-state>` mirrors `state`.
 */
import OpenSeadragon from 'openseadragon';
import { createBrowserRuntime } from '../src/kernels/browser.ts';
import type { Runtime } from '../src/kernels/runtime.ts';
import { loadModel, type LoadedModel } from '../src/nn/classify.ts';
import { classifyImageBatch } from '../src/nn/classify_batch.ts';
import { readTile, resolveScale, tilePlan, tissueTiles } from '../src/slide/inference_grid.ts';
import { jsJpegDecoder } from '../src/slide/jpeg.ts';
import { openJsSlide } from '../src/slide/js_reader.ts';
import { blobSource } from '../src/slide/source.ts';
import { slideTissueMask } from '../src/slide/tissue.ts';
import { CLASS_COLOURS } from '../src/nn/heatmap_cells.ts';

type State = 'starting' | 'ready' | 'viewing' | 'viewer-ready' | 'running' | 'done' | 'error';

export interface SlidePageState {
  state: State;
  error: string | null;
  /** Per-tile results of the last local classification (level-0 px, config.classes order). */
  tiles: { x: number; y: number; width: number; height: number; probabilities: number[] }[];
  classes: string[];
  warnings: string[];
  timings: { totalMs: number; tiles: number } | null;
  /** Items open in the viewer (2 when slide and overlay are shown). */
  viewerItems: number;
  /** The overlay's opacity in the viewer, as OpenSeadragon reports it. */
  overlayOpacity: number | null;
}

declare global {
  interface Window {
    lungpathSlide: SlidePageState;
  }
}

const page: SlidePageState = { state: 'starting', error: null, tiles: [], classes: [], warnings: [], timings: null, viewerItems: 0, overlayOpacity: null };
window.lungpathSlide = page;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

function setState(state: State): void {
  page.state = state;
  document.body.dataset.state = state;
}

function fail(e: unknown): void {
  page.error = e instanceof Error ? e.message : String(e);
  $('error').textContent = page.error;
  $('error').hidden = false;
  setState('error');
}

function legend(el: HTMLElement, classes: readonly string[], text: (name: string, i: number) => string): void {
  el.replaceChildren(
    ...classes.map((name, i) => {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = CLASS_COLOURS[i % CLASS_COLOURS.length]!;
      item.append(swatch, document.createTextNode(text(name, i)));
      return item;
    }),
  );
}

// ---- 1. the viewer ----------------------------------------------------------------------------

let viewer: OpenSeadragon.Viewer | null = null;

interface Dzi {
  width: number;
  height: number;
  tileSize: number;
  overlap: number;
  format: string;
}

function parseDzi(text: string, name: string): Dzi {
  const doc = new DOMParser().parseFromString(text, 'application/xml');
  const image = doc.getElementsByTagName('Image')[0];
  const size = doc.getElementsByTagName('Size')[0];
  if (!image || !size) throw new Error(`${name}: not a Deep Zoom (.dzi) file`);
  return { width: Number(size.getAttribute('Width')), height: Number(size.getAttribute('Height')), tileSize: Number(image.getAttribute('TileSize')), overlap: Number(image.getAttribute('Overlap')), format: image.getAttribute('Format') ?? 'jpeg' };
}

/** An OpenSeadragon tile source over picked files: `<name>_files/<level>/<x>_<y>.<format>`. */
function fileTileSource(dzi: Dzi, name: string, files: Map<string, File>): object {
  const urls = new Map<string, string>();
  return {
    width: dzi.width,
    height: dzi.height,
    tileSize: dzi.tileSize,
    tileOverlap: dzi.overlap,
    minLevel: 0,
    maxLevel: Math.ceil(Math.log2(Math.max(dzi.width, dzi.height))),
    getTileUrl(level: number, x: number, y: number): string {
      const path = `${name}_files/${level}/${x}_${y}.${dzi.format}`;
      let url = urls.get(path);
      if (!url) {
        const file = files.get(path);
        url = file ? URL.createObjectURL(file) : 'data:,';
        urls.set(path, url);
      }
      return url;
    },
  };
}

async function openResults(list: FileList): Promise<void> {
  setState('viewing');
  $('error').hidden = true;
  // Paths relative to the picked folder (webkitRelativePath starts with the folder's own name).
  const files = new Map<string, File>();
  for (const f of list) files.set(f.webkitRelativePath.split('/').slice(1).join('/') || f.name, f);
  const need = (name: string) => {
    const f = files.get(name);
    if (!f) throw new Error(`the folder has no ${name}: choose one slide's folder written by lungpath predict-slide (OUT/<slide>/)`);
    return f;
  };
  const summary = JSON.parse(await need('summary.json').text());
  const slide = parseDzi(await need('slide.dzi').text(), 'slide.dzi');
  const overlay = parseDzi(await need('overlay.dzi').text(), 'overlay.dzi');
  const classes = Object.keys(summary.areas);
  $('viewer-title').textContent = `${summary.slide}: call ${summary.call ?? '—'} (${summary.rule.split(':')[0]}); ${summary.tiles} tiles`;
  legend($('viewer-legend'), classes, (c) => `${c} ${(100 * summary.areas[c].share).toFixed(1)}%`);
  viewer?.destroy();
  page.viewerItems = 0;
  viewer = OpenSeadragon({ element: $('viewer'), showNavigationControl: true, prefixUrl: '', crossOriginPolicy: false, maxZoomPixelRatio: 4 });
  viewer.world.addHandler('add-item', () => {
    page.viewerItems = viewer!.world.getItemCount();
    if (page.viewerItems === 2) {
      page.overlayOpacity = viewer!.world.getItemAt(1).getOpacity();
      setState('viewer-ready');
    }
  });
  viewer.addTiledImage({ tileSource: fileTileSource(slide, 'slide', files) as OpenSeadragon.TileSource, x: 0, y: 0, width: 1 });
  viewer.addTiledImage({
    tileSource: fileTileSource(overlay, 'overlay', files) as OpenSeadragon.TileSource,
    x: 0,
    y: 0,
    width: 1,
    opacity: Number(($('opacity') as HTMLInputElement).value),
  });
}

function setOpacity(): void {
  const item = viewer?.world.getItemAt(1);
  item?.setOpacity(Number(($('opacity') as HTMLInputElement).value));
  page.overlayOpacity = item ? item.getOpacity() : null;
}

// ---- 2. classifying a local slide --------------------------------------------------------------

let rt: Runtime | null = null;
let model: LoadedModel | null = null;

async function getModel(): Promise<{ rt: Runtime; model: LoadedModel }> {
  rt ??= await createBrowserRuntime();
  if (!model) {
    const fetchBytes = async (url: string) => {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    };
    const [l1, l2] = await Promise.all([fetchBytes('model/level1.safetensors'), fetchBytes('model/level2.safetensors')]);
    model = await loadModel(rt, { name: 'level1.safetensors (demo)', bytes: l1 }, { name: 'level2.safetensors (demo)', bytes: l2 });
  }
  return { rt, model };
}

async function classifySlide(file: File): Promise<void> {
  setState('running');
  $('error').hidden = true;
  page.tiles = [];
  page.warnings = [];
  const status = $('local-status');
  const started = performance.now();
  const { rt, model } = await getModel();
  const config = model.config;
  page.classes = [...config.classes];
  const slide = await openJsSlide(blobSource(file.name, file), { decoder: jsJpegDecoder() });
  try {
    status.textContent = `${file.name}: ${slide.info.width}×${slide.info.height} px; finding tissue…`;
    const runMppText = ($('run-mpp') as HTMLInputElement).value;
    const { scale, mpp } = resolveScale(slide.info, runMppText ? Number(runMppText) : null, (m) => page.warnings.push(m));
    const { mask, thumbnail } = await slideTissueMask(slide);
    const plan = tilePlan(slide.info, config.imageSize, scale, mpp);
    const tiles = tissueTiles(slide.info, mask, plan, Number(($('min-tissue') as HTMLInputElement).value));
    const canvas = $('local-heatmap') as HTMLCanvasElement;
    canvas.width = thumbnail.width;
    canvas.height = thumbnail.height;
    const ctx = canvas.getContext('2d')!;
    const rgba = new Uint8ClampedArray(thumbnail.width * thumbnail.height * 4);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) rgba.set([thumbnail.data[j]!, thumbnail.data[j + 1]!, thumbnail.data[j + 2]!, 255], i);
    ctx.putImageData(new ImageData(rgba, thumbnail.width, thumbnail.height), 0, 0);
    legend($('local-legend'), config.classes, (c) => c);
    const batch = 8;
    for (let first = 0; first < tiles.length; first += batch) {
      const part = tiles.slice(first, first + batch);
      const images = await Promise.all(part.map((t) => readTile(slide, plan, t)));
      const rows = await classifyImageBatch(rt, model.level1, model.level2, config, images);
      part.forEach((t, i) => {
        const p = rows[i]!;
        const k = p.indexOf(Math.max(...p));
        page.tiles.push({ x: t.x, y: t.y, width: t.width, height: t.height, probabilities: p });
        ctx.fillStyle = CLASS_COLOURS[k % CLASS_COLOURS.length]!;
        ctx.globalAlpha = 0.25 + 0.45 * p[k]!;
        ctx.fillRect(t.x / mask.scale[0], t.y / mask.scale[1], t.width / mask.scale[0], t.height / mask.scale[1]);
        ctx.globalAlpha = 1;
      });
      status.textContent = `${file.name}: ${page.tiles.length} of ${tiles.length} tissue tiles classified`;
    }
    const totalMs = performance.now() - started;
    page.timings = { totalMs, tiles: tiles.length };
    status.textContent = `${file.name}: ${tiles.length} tissue tiles of ${plan.size} px classified in ${(totalMs / 1000).toFixed(1)} s on this computer.${page.warnings.length ? ` ${page.warnings.join(' ')}` : ''}`;
    setState('done');
  } finally {
    slide.close();
  }
}

function wireUp(): void {
  const results = $('results-input') as HTMLInputElement;
  results.addEventListener('change', () => {
    if (results.files?.length) openResults(results.files).catch(fail);
  });
  $('opacity').addEventListener('input', setOpacity);
  const input = $('slide-input') as HTMLInputElement;
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    input.value = '';
    if (file) classifySlide(file).catch(fail);
  });
  setState('ready');
}

wireUp();
