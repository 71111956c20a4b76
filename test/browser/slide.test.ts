/**
 * The whole-slide page of the demo (demo/slide.html) in Chromium (playwright-core, WebGPU on
 * SwiftShader, the page built by Vite into a temporary folder and served on 127.0.0.1):
 *  - it classifies a small synthetic slide chosen as a local file — the pure-JS reader with jpeg-js,
 *    the same WGSL kernels — and every tile's probabilities equal `lungpath predict-slide --reader js
 *    --jpeg js` (Dawn in Node, same decoder) within 1e-4;
 *  - it opens that run's output folder in OpenSeadragon (slide and overlay), shows the legend, and
 *    the opacity slider changes the overlay's opacity; no request leaves 127.0.0.1.
 * Saves a screenshot to test-artifacts/slide-viewer.png. Fails (never skips) when Chromium is missing.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SlidePageState } from '../../demo/slide.ts';
import { demoRun, writeMosaicSlide } from '../slide/mosaic_slide.ts';
import { freePort, launchChromium } from '../helpers/chromium.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const TOLERANCE = 1e-4;
const tmp = mkdtempSync(join(tmpdir(), 'lungpath-slide-page-'));
let server: PreviewServer | null = null;
let browser: Browser | null = null;
let url = '';
let cli: Promise<unknown>;
const slidePath = join(tmp, 'local.tiff');
const out = join(tmp, 'out');

beforeAll(async () => {
  await writeMosaicSlide(slidePath, {
    cols: 3, rows: 2, cell: 256, mpp: 0.5, seed: 31,
    blocks: [{ className: 'SC', col: 0, row: 0, cols: 2, rows: 1 }, { className: 'SCLC', col: 1, row: 1, cols: 2, rows: 1 }],
  });
  const run = demoRun(join(tmp, 'run'));
  cli = promisify(execFile)(process.execPath, ['bin/lungpath.js', 'predict-slide', '--run', run, '--out', out, '--reader', 'js', '--jpeg', 'js', '--min-tissue', '0.1', slidePath], { cwd: repo, encoding: 'utf8' });
  cli.catch(() => {});
  const outDir = join(tmp, 'site');
  const configFile = join(repo, 'demo/vite.config.ts');
  await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const port = await freePort();
  server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port, strictPort: true } });
  url = `http://127.0.0.1:${port}/slide.html`;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

it('classifies a local slide as predict-slide does (within 1e-4), then views the results with the overlay', async () => {
  const page = await (browser as Browser).newPage({ viewport: { width: 1100, height: 1400 } });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === 'ready');
  await page.fill('#min-tissue', '0.1');
  await page.setInputFiles('#slide-input', slidePath);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 90_000 });
  const browserSide: SlidePageState = await page.evaluate(() => window.lungpathSlide);
  expect(browserSide.error).toBeNull();

  await cli;
  const [header, ...rows] = readFileSync(join(out, 'local', 'tiles.csv'), 'utf8').trim().split('\n');
  expect(header!.split(',').slice(5, -1)).toEqual(browserSide.classes.map((c) => `p_${c}`));
  expect(browserSide.tiles.map((t) => [t.x, t.y, t.width, t.height])).toEqual(rows.map((r) => r.split(',').slice(0, 4).map(Number)));
  let maxDiff = 0;
  browserSide.tiles.forEach((t, i) => {
    const cliP = rows[i]!.split(',').slice(5, -1).map(Number);
    t.probabilities.forEach((p, c) => (maxDiff = Math.max(maxDiff, Math.abs(p - cliP[c]!))));
  });
  console.log(`slide page vs predict-slide: ${rows.length} tiles, largest probability difference ${maxDiff.toExponential(2)}`);
  expect(rows.length).toBe(4);
  expect(maxDiff).toBeLessThanOrEqual(TOLERANCE);

  // The viewer: pick the output folder.
  await page.setInputFiles('#results-input', join(out, 'local'));
  await page.waitForFunction(() => ['viewer-ready', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 30_000 });
  expect(await page.evaluate(() => window.lungpathSlide.error)).toBeNull();
  expect(await page.evaluate(() => window.lungpathSlide.viewerItems)).toBe(2);
  expect(await page.locator('#viewer-legend').textContent()).toMatch(/SC .*%/);
  expect(await page.evaluate(() => window.lungpathSlide.overlayOpacity)).toBe(0.6);
  await page.locator('#opacity').fill('0.2');
  expect(await page.evaluate(() => window.lungpathSlide.overlayOpacity)).toBe(0.2);
  await page.waitForTimeout(1500); // tiles load
  mkdirSync(join(repo, 'test-artifacts'), { recursive: true });
  await page.screenshot({ path: join(repo, 'test-artifacts', 'slide-viewer.png'), fullPage: true });
  expect(requests.filter((r) => !r.startsWith(url.replace('slide.html', '')) && !r.startsWith('blob:') && !r.startsWith('data:')), 'requests that left the page').toEqual([]);
  await page.close();
}, 150_000);
