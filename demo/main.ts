/**
 * The browser demo: pick or drop an H&E image (and optionally a run's two weights files); the page
 * decodes it in a canvas (decode.ts) and classifies it with `classifyImage` (src/nn/classify.ts) on
 * WebGPU — the same kernels (wgsl/, bundled by Vite through src/kernels/browser.ts) and the same
 * code path as `lungpath predict`. Nothing is sent anywhere: no request leaves the page except
 * fetching its own files (the bundled demo model and example image).
 *
 * `window.lungpathDemo` exposes the state, the last prediction and its input pixels for the
 * browser test (test/browser/demo.test.ts); `<body data-state>` mirrors `state`.
 */
import { createBrowserRuntime } from '../src/kernels/browser.ts';
import { describeAdapter } from '../src/kernels/device.ts';
import type { Runtime } from '../src/kernels/runtime.ts';
import { classifyImage, loadModel, orderModelFiles, type ImagePrediction, type LoadedModel, type ModelFile } from '../src/nn/classify.ts';
import { decodeImageFile, InputError } from './decode.ts';
import { classColour, drawHeatmap } from './heatmap.ts';

type State = 'starting' | 'loading-model' | 'ready' | 'running' | 'done' | 'error' | 'no-webgpu';

export interface DemoState {
  state: State;
  adapter: string | null;
  model: string | null;
  prediction: ImagePrediction | null;
  /** The RGB8 pixels the model saw (after any resize). */
  inputRgb: Uint8Array | null;
  error: string | null;
  timings: { decodeMs: number; classifyMs: number } | null;
}

declare global {
  interface Window {
    lungpathDemo: DemoState;
  }
}

const DEMO_MODEL = { level1: 'model/level1.safetensors', level2: 'model/level2.safetensors', name: 'demo model (tiny, trained on synthetic images)' };

const NO_WEBGPU =
  'This browser has no WebGPU, which the demo needs to run the network. Use a recent Chrome or Edge (version 113 or later) ' +
  'or another browser with WebGPU turned on (on Linux Chrome needs chrome://flags/#enable-unsafe-webgpu). ' +
  'The page must be opened over https or from http://127.0.0.1 / http://localhost.';
const NO_ADAPTER =
  'This browser supports WebGPU but gave the page no GPU adapter (the GPU may be blocklisted or WebGPU switched off). ' +
  'Check chrome://gpu, or try another browser.';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: element #${id} is missing`);
  return el as T;
};

const demo: DemoState = { state: 'starting', adapter: null, model: null, prediction: null, inputRgb: null, error: null, timings: null };
window.lungpathDemo = demo;

let rt: Runtime | null = null;
let model: LoadedModel | null = null;
let modelIsDemo = true;
let kernelsCompiled = false;
let lastImage: { file: Blob; name: string } | null = null;
let busy = false;

function setState(state: State): void {
  demo.state = state;
  document.body.dataset.state = state;
}

function showError(title: string, detail: string): void {
  demo.error = `${title} ${detail}`.trim();
  const box = $('error');
  box.replaceChildren();
  const strong = document.createElement('strong');
  strong.textContent = title;
  box.append(strong, document.createTextNode(detail));
  box.hidden = false;
}

function clearError(): void {
  demo.error = null;
  $('error').hidden = true;
}

function setBusy(text: string | null): void {
  busy = text !== null;
  $('busy').hidden = text === null;
  $('busy-text').textContent = text ?? '';
  for (const id of ['example', 'model-reset']) ($(id) as HTMLButtonElement).disabled = busy;
  ($('image-input') as HTMLInputElement).disabled = busy;
  ($('model-input-files') as HTMLInputElement).disabled = busy;
  if (text !== null) $('result-empty').hidden = true;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function getRuntime(): Promise<Runtime> {
  if (rt) return rt;
  if (!('gpu' in navigator) || !navigator.gpu) throw new InputError(NO_WEBGPU);
  try {
    rt = await createBrowserRuntime();
  } catch (e) {
    if (/No WebGPU adapter/.test(message(e))) throw new InputError(NO_ADAPTER);
    throw e;
  }
  demo.adapter = describeAdapter(rt.adapter);
  $('adapter').textContent = demo.adapter;
  return rt;
}

async function fetchBlob(url: string): Promise<Blob> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return response.blob();
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  return new Uint8Array(await (await fetchBlob(url)).arrayBuffer());
}

function showModel(name: string, loaded: LoadedModel): void {
  const c = loaded.config;
  demo.model = name;
  $('model-name').textContent = name;
  $('model-classes').textContent = c.classes.join(', ');
  $('model-input').textContent = `${c.imageSize}×${c.imageSize} px images, ${c.patch.size} px patches`;
  $('resize-note').textContent =
    `Images of another size than ${c.imageSize}×${c.imageSize} are resized to it in a canvas before classification ` +
    `(images smaller than one ${c.patch.size}×${c.patch.size} patch are refused).`;
  $('model-reset').hidden = modelIsDemo;
}

async function useModel(files: readonly ModelFile[], name: string, isDemo: boolean): Promise<void> {
  const runtime = await getRuntime();
  const [level1, level2] = orderModelFiles(files);
  const loaded = await loadModel(runtime, level1, level2);
  model?.destroy();
  model = loaded;
  modelIsDemo = isDemo;
  showModel(name, loaded);
}

async function loadDemoModel(): Promise<void> {
  const [l1, l2] = await Promise.all([fetchBytes(DEMO_MODEL.level1), fetchBytes(DEMO_MODEL.level2)]);
  await useModel([{ name: 'level1.safetensors (demo)', bytes: l1 }, { name: 'level2.safetensors (demo)', bytes: l2 }], DEMO_MODEL.name, true);
}

function renderResult(prediction: ImagePrediction, rgb: Uint8Array, info: { name: string; width: number; height: number; resized: boolean }, decodeMs: number, classifyMs: number, firstRun: boolean): void {
  if (!model) return;
  const config = model.config;
  $('result').hidden = false;
  $('result-empty').hidden = true;
  $('predicted').textContent = prediction.class;
  $('predicted').style.color = classColour(config, prediction.class);
  $('predicted-p').textContent = `${(100 * (prediction.probabilities[prediction.class] ?? 0)).toFixed(1)}% probability`;

  const table = $('probabilities');
  table.replaceChildren();
  const sorted = [...config.classes].sort((a, b) => (prediction.probabilities[b] ?? 0) - (prediction.probabilities[a] ?? 0));
  for (const name of sorted) {
    const p = prediction.probabilities[name] ?? 0;
    const row = document.createElement('tr');
    if (name === prediction.class) row.className = 'top';
    const label = document.createElement('td');
    label.className = 'name';
    label.textContent = name;
    const bar = document.createElement('td');
    bar.className = 'bar';
    const track = document.createElement('div');
    track.className = 'track';
    const fill = document.createElement('div');
    fill.className = 'fill';
    fill.style.width = `${(100 * p).toFixed(2)}%`;
    fill.style.background = classColour(config, name);
    track.append(fill);
    bar.append(track);
    const value = document.createElement('td');
    value.className = 'value';
    value.textContent = `${(100 * p).toFixed(1)}%`;
    value.title = String(p);
    row.append(label, bar, value);
    table.append(row);
  }

  const legend = $('legend');
  legend.replaceChildren(
    ...config.classes.map((name) => {
      const item = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = classColour(config, name);
      item.append(swatch, document.createTextNode(name));
      return item;
    }),
  );
  redrawHeatmap();

  const size = `${info.width}×${info.height}`;
  $('image-info').textContent = info.resized
    ? `${info.name}: ${size} pixels, resized to ${config.imageSize}×${config.imageSize} for the model; ${prediction.patches.length} patches.`
    : `${info.name}: ${size} pixels; ${prediction.patches.length} patches of ${config.patch.size} px.`;
  $('timing').textContent =
    `Classified in ${Math.round(classifyMs)} ms on ${demo.adapter ?? 'WebGPU'}; decoding the image took ${Math.round(decodeMs)} ms.` +
    (firstRun ? ' The first run also compiles the GPU kernels.' : '');
}

function redrawHeatmap(): void {
  if (!model || !demo.inputRgb) return;
  const show = ($('show-heatmap') as HTMLInputElement).checked;
  drawHeatmap($('heatmap') as HTMLCanvasElement, demo.inputRgb, model.config, show ? demo.prediction : null);
}

async function classify(file: Blob, name: string): Promise<void> {
  if (busy) return;
  clearError();
  setState('running');
  setBusy(`Classifying ${name}…`);
  try {
    const runtime = await getRuntime();
    if (!model) await loadDemoModel();
    const loaded = model as LoadedModel;
    const t0 = performance.now();
    const image = await decodeImageFile(file, name, loaded.config.imageSize, loaded.config.patch.size);
    const t1 = performance.now();
    const prediction = await classifyImage(runtime, loaded.level1, loaded.level2, loaded.config, image.rgb, { file: name });
    const t2 = performance.now();
    const firstRun = !kernelsCompiled;
    kernelsCompiled = true;
    lastImage = { file, name };
    demo.prediction = prediction;
    demo.inputRgb = image.rgb;
    demo.timings = { decodeMs: t1 - t0, classifyMs: t2 - t1 };
    renderResult(prediction, image.rgb, { name, ...image }, t1 - t0, t2 - t1, firstRun);
    setState('done');
  } catch (e) {
    // The result on show belongs to another image: take it down rather than let it pass for this one.
    demo.prediction = null;
    demo.inputRgb = null;
    lastImage = null;
    $('result').hidden = true;
    fail(e instanceof InputError ? 'Cannot use this image.' : 'Classification failed.', e);
  } finally {
    setBusy(null);
    if (!demo.prediction) $('result-empty').hidden = false;
  }
}

function fail(title: string, e: unknown): void {
  if (e instanceof InputError && (e.message === NO_WEBGPU || e.message === NO_ADAPTER)) {
    showError('WebGPU is not available.', ` ${e.message}`);
    setState('no-webgpu');
    return;
  }
  showError(title, ` ${message(e)}`);
  setState('error');
}

async function useOwnModel(list: FileList | File[]): Promise<void> {
  if (busy) return;
  clearError();
  setState('loading-model');
  setBusy('Loading the model…');
  try {
    const files = await Promise.all([...list].map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
    await useModel(files, files.map((f) => f.name).join(' + '), false);
    setState('ready');
  } catch (e) {
    fail('Cannot use this model.', e);
  } finally {
    setBusy(null);
  }
  if (demo.state === 'ready' && lastImage) await classify(lastImage.file, lastImage.name);
}

function isModelFile(f: File): boolean {
  return f.name.toLowerCase().endsWith('.safetensors');
}

function wireUp(): void {
  const imageInput = $('image-input') as HTMLInputElement;
  imageInput.addEventListener('change', () => {
    const file = imageInput.files?.[0];
    imageInput.value = '';
    if (file) void classify(file, file.name);
  });
  const modelInput = $('model-input-files') as HTMLInputElement;
  modelInput.addEventListener('change', () => {
    const files = modelInput.files ? [...modelInput.files] : [];
    modelInput.value = '';
    if (files.length) void useOwnModel(files);
  });
  $('example').addEventListener('click', async () => {
    try {
      await classify(await fetchBlob('example.png'), 'example.png');
    } catch (e) {
      fail('Cannot load the example image.', e);
    }
  });
  $('model-reset').addEventListener('click', async () => {
    if (busy) return;
    clearError();
    setBusy('Loading the demo model…');
    try {
      await loadDemoModel();
      setState('ready');
    } catch (e) {
      fail('Cannot load the demo model.', e);
    } finally {
      setBusy(null);
    }
    if (demo.state === 'ready' && lastImage) await classify(lastImage.file, lastImage.name);
  });
  $('show-heatmap').addEventListener('change', redrawHeatmap);

  const drop = $('drop');
  const over = (on: boolean) => (e: Event) => {
    e.preventDefault();
    drop.classList.toggle('over', on);
  };
  // The whole page accepts drops, so a file dropped beside the box is not opened by the browser.
  document.addEventListener('dragover', over(true));
  document.addEventListener('dragleave', over(false));
  document.addEventListener('drop', async (e) => {
    over(false)(e);
    const files = [...(e.dataTransfer?.files ?? [])];
    const models = files.filter(isModelFile);
    const images = files.filter((f) => !isModelFile(f));
    if (models.length) await useOwnModel(models);
    const image = images[0];
    if (image) await classify(image, image.name);
  });
}

async function start(): Promise<void> {
  wireUp();
  setState('loading-model');
  setBusy('Starting WebGPU and loading the demo model…');
  try {
    await getRuntime();
    await loadDemoModel();
    setState('ready');
  } catch (e) {
    fail('Cannot start.', e);
    if (demo.state === 'no-webgpu') {
      $('adapter').textContent = 'none: this browser has no WebGPU';
      $('model-name').textContent = 'not loaded (needs WebGPU)';
      for (const id of ['example', 'image-input', 'model-input-files']) ($(id) as HTMLInputElement).disabled = true;
    }
  } finally {
    if (demo.state === 'no-webgpu') {
      $('busy').hidden = true;
      busy = true;
    } else setBusy(null);
    $('result-empty').hidden = false;
  }
}

void start();
