/**
 * The browser demo (demo/) in a real browser: Debian's Chromium driven by playwright-core, WebGPU
 * on its SwiftShader adapter, the page built by Vite and served on 127.0.0.1. It classifies the
 * committed example image with the bundled demo model and must agree with `lungpath predict --json`
 * (Dawn in Node) on the same image and model: same pixels, same class, every probability within
 * 1e-4. Also: the page's messages for a non-image, an image smaller than a patch, a file that is
 * not a checkpoint, and a browser without WebGPU; and no request leaves 127.0.0.1.
 * Saves a screenshot to test-artifacts/demo.png. Fails (never skips) when Chromium is missing.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DemoState } from '../../demo/main.ts';
import type { ImagePrediction } from '../../src/nn/classify.ts';
import { parseSafetensors } from '../../src/nn/safetensors.ts';
import { freePort, launchChromium } from '../helpers/chromium.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const example = join(repo, 'demo/public/example.png');
const modelDir = join(repo, 'demo/public/model');
const artifacts = join(repo, 'test-artifacts');
const TOLERANCE = 1e-4;

const tmp = mkdtempSync(join(tmpdir(), 'lungpath-demo-'));
let server: PreviewServer | null = null;
let browser: Browser | null = null;
let url = '';
let cliPrediction: Promise<ImagePrediction>;

/** `lungpath predict --json` on the example, with a run folder holding the demo model. */
async function predictWithCli(): Promise<ImagePrediction> {
  const run = join(tmp, 'run');
  mkdirSync(run);
  for (const f of ['level1.safetensors', 'level2.safetensors']) copyFileSync(join(modelDir, f), join(run, f));
  const config = parseSafetensors(readFileSync(join(run, 'level1.safetensors')), 'level1.safetensors').metadata.config;
  writeFileSync(join(run, 'config.json'), `${config}\n`);
  const { stdout } = await promisify(execFile)(process.execPath, ['bin/lungpath.js', 'predict', '--run', run, '--json', example], { cwd: repo, encoding: 'utf8' });
  return JSON.parse(stdout.trim()) as ImagePrediction;
}

async function openDemo(init?: () => void): Promise<{ page: Page; requests: string[]; failed: string[] }> {
  const page = await (browser as Browser).newPage({ viewport: { width: 1180, height: 1000 } });
  const requests: string[] = [];
  const failed: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  if (init) await page.addInitScript(init);
  await page.goto(url);
  return { page, requests, failed };
}

async function waitForState(page: Page, states: string[], timeout = 60_000): Promise<string> {
  await page.waitForFunction((wanted) => wanted.includes(document.body.dataset.state ?? ''), states, { timeout });
  return page.evaluate(() => document.body.dataset.state ?? '');
}

async function errorText(page: Page): Promise<string> {
  return (await page.locator('#error').textContent()) ?? '';
}

describe('the browser demo', () => {
  beforeAll(async () => {
    for (const f of [example, join(modelDir, 'level1.safetensors'), join(modelDir, 'level2.safetensors')]) {
      if (!existsSync(f)) throw new Error(`${f} is missing: the demo ships an example image and a demo model`);
    }
    cliPrediction = predictWithCli();
    cliPrediction.catch(() => {}); // awaited by the test that needs it
    const outDir = join(tmp, 'site');
    const configFile = join(repo, 'demo/vite.config.ts');
    await build({ configFile, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
    const port = await freePort();
    server = await preview({ configFile, logLevel: 'warn', build: { outDir }, preview: { host: '127.0.0.1', port, strictPort: true } });
    url = `http://127.0.0.1:${port}/`;
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('classifies the example image as `lungpath predict --json` does, within 1e-4', async () => {
    const { page, requests, failed } = await openDemo();
    expect(await waitForState(page, ['ready', 'error', 'no-webgpu'])).toBe('ready');
    await expect.poll(() => page.locator('#adapter').textContent()).toMatch(/swiftshader/i);
    await page.setInputFiles('#image-input', example);
    expect(await waitForState(page, ['done', 'error']), await errorText(page)).toBe('done');

    const browserSide = await page.evaluate(() => {
      const demo: DemoState = window.lungpathDemo;
      return { prediction: demo.prediction, rgb: Array.from(demo.inputRgb ?? []) };
    });
    const cli = await cliPrediction;
    const prediction = browserSide.prediction as ImagePrediction;
    const sharpRgb = await sharp(example).removeAlpha().raw().toBuffer();
    expect(Buffer.compare(Buffer.from(browserSide.rgb), sharpRgb), 'canvas-decoded pixels differ from sharp').toBe(0);

    expect(prediction.class).toBe(cli.class);
    expect(Object.keys(prediction.probabilities)).toEqual(Object.keys(cli.probabilities));
    let maxDiff = 0;
    const compare = (a: Record<string, number>, b: Record<string, number>) => {
      for (const [name, p] of Object.entries(b)) maxDiff = Math.max(maxDiff, Math.abs((a[name] as number) - p));
    };
    compare(prediction.probabilities, cli.probabilities);
    expect(prediction.patches.map((p) => [p.x, p.y, p.class])).toEqual(cli.patches.map((p) => [p.x, p.y, p.class]));
    prediction.patches.forEach((p, i) => compare(p.probabilities, (cli.patches[i] as ImagePrediction['patches'][number]).probabilities));
    console.log(`browser vs CLI: largest probability difference ${maxDiff.toExponential(2)} over ${1 + prediction.patches.length} rows`);
    expect(maxDiff).toBeLessThanOrEqual(TOLERANCE);

    await expect.poll(() => page.locator('#predicted').textContent()).toBe(cli.class);
    expect(await page.locator('#timing').textContent()).toMatch(/Classified in \d+ ms on .*swiftshader/i);
    expect(await page.locator('#privacy').textContent()).toMatch(/Nothing leaves this browser/);
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'demo.png'), fullPage: true });

    // The same model chosen by the user as a run's two files (in either order) re-classifies the image.
    await page.evaluate(() => {
      window.lungpathDemo.prediction = null;
    });
    await page.setInputFiles('#model-input-files', [join(modelDir, 'level2.safetensors'), join(modelDir, 'level1.safetensors')]);
    await page.waitForFunction(() => window.lungpathDemo.prediction !== null || document.body.dataset.state === 'error', null, { timeout: 30_000 });
    expect(await errorText(page)).toBe('');
    expect(await page.locator('#model-name').textContent()).toBe('level2.safetensors + level1.safetensors');
    const again = (await page.evaluate(() => window.lungpathDemo.prediction)) as ImagePrediction;
    expect(again.probabilities).toEqual(prediction.probabilities);

    expect(requests.filter((r) => !r.startsWith(url)), 'requests that left the page origin').toEqual([]);
    expect(failed, 'failed requests').toEqual([]);
    await page.close();
  }, 90_000);

  it('explains a file that is not an image, an image smaller than a patch, and a file that is not a checkpoint', async () => {
    const { page } = await openDemo();
    expect(await waitForState(page, ['ready', 'error', 'no-webgpu'])).toBe('ready');

    await page.setInputFiles('#image-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
    expect(await waitForState(page, ['done', 'error'])).toBe('error');
    expect(await errorText(page)).toMatch(/notes\.txt is not an image this browser can read/);

    const tiny = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#c0a0d0' } }).png().toBuffer();
    await page.setInputFiles('#image-input', { name: 'tiny.png', mimeType: 'image/png', buffer: tiny });
    await page.waitForFunction(() => /tiny\.png/.test(document.getElementById('error')?.textContent ?? ''));
    expect(await errorText(page)).toMatch(/tiny\.png is 40×30 pixels, smaller than one 64×64 patch/);

    const junk = Buffer.from('definitely not safetensors, just text');
    await page.setInputFiles('#model-input-files', [
      { name: 'level1.safetensors', mimeType: 'application/octet-stream', buffer: junk },
      { name: 'level2.safetensors', mimeType: 'application/octet-stream', buffer: junk },
    ]);
    await page.waitForFunction(() => /checkpoint/.test(document.getElementById('error')?.textContent ?? ''));
    expect(await errorText(page)).toMatch(/Cannot use this model\. level1\.safetensors: .*not a valid lungpath checkpoint/);
    expect(await page.locator('#model-name').textContent()).toMatch(/demo model/);
    await page.close();
  }, 60_000);

  it('says so when the browser has no WebGPU', async () => {
    const { page } = await openDemo(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    });
    expect(await waitForState(page, ['no-webgpu', 'ready', 'error'])).toBe('no-webgpu');
    expect(await errorText(page)).toMatch(/WebGPU is not available\. This browser has no WebGPU/);
    expect(await page.locator('#image-input').isDisabled()).toBe(true);
    await page.close();
  }, 30_000);
});
