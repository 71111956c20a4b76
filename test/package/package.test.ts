/**
 * The published package, as another project gets it: `npm pack` (which builds dist/), the tarball
 * installed into a fresh project with `npm ci --offline` (the tarball plus the local npm cache: the
 * project's lock pins the same dependency versions as ours), then
 *  - the tarball holds only the package (no tests, fixtures, runs, caches, demo build);
 *  - every entry point imports in Node, and a launcher runs with the WGSL shipped in the package;
 *    lungpath/slide opens a test slide (the JS reader, jpeg-js) and reads a region;
 *  - a TypeScript file type-checks against the shipped .d.ts (and misuse is refused);
 *  - examples/classify-folder.mjs runs against the installed package;
 *  - a page importing the browser entry, lungpath/kernels and lungpath/nn is bundled by Vite with
 *    no configuration (no Node module may reach the bundle) and run in Chromium (WebGPU on
 *    SwiftShader): it must classify the example as example (a) did in Node, within 1e-4, and read
 *    the test slide's region through lungpath/slide's browser entry with the same bytes as Node.
 * Needs the npm cache that `npm ci` / `npm run setup` fills, and Chromium (as test/browser).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { build, preview, type Rollup } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImagePrediction } from '../../src/nn/classify.ts';
import { parseSafetensors } from '../../src/nn/safetensors.ts';
import { writeTestSlide } from '../slide/make_slide.ts';
import { freePort, launchChromium } from '../helpers/chromium.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const modelDir = join(repo, 'demo/public/model');
const example = join(repo, 'demo/public/example.png');
const tmp = mkdtempSync(join(tmpdir(), 'lungpath-package-'));
const app = join(tmp, 'app');
let tarball = '';
let packedFiles: string[] = [];
let exampleA: ImagePrediction | null = null;
/** The test slide's region as lungpath/slide read it in Node: its size and a digest of its bytes. */
let slideNode: { levels: number; width: number; height: number; digest: number } | null = null;
const slidePath = join(tmp, 'slide.tiff');
/** The region both Node and the page read: level 0, (200, 150), 300×200. */
const REGION = [0, 200, 150, 300, 200] as const;

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LUNGPATH_FROM_SOURCE: '', ...env } });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${err.stderr || err.stdout || err.message}`);
  }
}

/** The consumer's lock: lungpath from the tarball, its dependencies exactly as our lock pins them. */
function consumerLock(tgz: string): object {
  const ours = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const manifest = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; bin: object; engines: object; license: string };
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'consumer', dependencies: { lungpath: `file:${tgz}` } },
    'node_modules/lungpath': { version: manifest.version, resolved: `file:${tgz}`, integrity, license: manifest.license, dependencies: manifest.dependencies, bin: manifest.bin, engines: manifest.engines },
  };
  for (const [path, entry] of Object.entries(ours.packages)) if (path && !entry.dev) packages[path] = entry;
  return { name: 'consumer', lockfileVersion: 3, requires: true, packages };
}

describe('the npm package', () => {
  beforeAll(() => {
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', tmp], repo)) as { filename: string; files: { path: string }[] }[];
    const first = packed[0] as { filename: string; files: { path: string }[] };
    tarball = join(tmp, first.filename);
    packedFiles = first.files.map((f) => f.path);
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies: { lungpath: `file:${tarball}` } }, null, 2)}\n`);
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(consumerLock(tarball), null, 2));
    try {
      run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], app);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n(the offline install needs the npm cache that \`npm ci\` fills: run \`npm run setup\` on a fresh clone)`);
    }
  }, 240_000);

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('holds only the package: dist/, wgsl/, bin/, README, CHANGELOG, package.json', () => {
    const outside = packedFiles.filter((f) => !/^(dist\/|wgsl\/|bin\/lungpath\.js$|bin\/allocator\.(js|d\.ts)$|README\.md$|CHANGELOG\.md$|package\.json$)/.test(f));
    expect(outside).toEqual([]);
    expect(packedFiles.filter((f) => /(^|\/)(test|fixtures|runs|\.cache|demo|test-artifacts)\//.test(f) || f.endsWith('.tgz'))).toEqual([]);
    for (const entry of ['dist/index.js', 'dist/index.d.ts', 'dist/index.browser.js', 'dist/kernels/index.js', 'dist/kernels/index.node.js', 'dist/nn/index.js', 'dist/train/index.js', 'dist/slide/index.js', 'dist/slide/index.node.js', 'dist/cli.js', 'dist/kernels/wgsl_sources.js']) {
      expect(packedFiles, entry).toContain(entry);
    }
  });

  it('every entry point imports in Node; a launcher runs on the WGSL shipped in the package', async () => {
    await writeTestSlide(slidePath, { width: 1024, height: 768, tileSize: 256, mpp: 0.5, format: 'tiff', regions: [{ className: 'ADC', polygons: [[[[100, 100], [900, 100], [900, 600], [100, 600]]]] }] });
    const out = run(process.execPath, ['--input-type=module', '-e', `
      import * as root from 'lungpath';
      import * as browser from 'lungpath/browser';
      import * as kernels from 'lungpath/kernels';
      import * as nn from 'lungpath/nn';
      import * as train from 'lungpath/train';
      import * as slide from 'lungpath/slide';
      const opened = await slide.openSlide(${JSON.stringify(slidePath)}, { reader: 'js', jpeg: 'js' });
      const region = await opened.readRegion(${REGION.join(', ')});
      opened.close();
      let digest = 0;
      for (const v of region.data) digest = (Math.imul(digest, 31) + v) >>> 0;
      const rt = await kernels.createNodeRuntime();
      const x = new Float32Array([-1, 2, -3, 4, 0.5]);
      const y = await rt.readF32(kernels.reluForward(rt, rt.upload(x), x.length), x.length);
      rt.destroy();
      console.log(JSON.stringify({
        root: [typeof root.openRun, typeof root.classifyImage, typeof root.createNodeRuntime],
        browser: [typeof browser.createBrowserRuntime, typeof browser.loadModel, 'openRun' in browser],
        kernels: [typeof kernels.conv2dForward, typeof kernels.conv2dForwardRef, typeof kernels.Runtime, Object.keys(kernels.bundledShaderSources()).length],
        nn: [typeof nn.Tape, typeof nn.Conv2d, typeof nn.buildPatchNetwork, typeof nn.parseSafetensors],
        train: [typeof train.RunFolder, typeof train.readDataset, typeof train.evaluateRun],
        slide: [typeof slide.openSlide, typeof slide.openJsSlide, typeof slide.cutTiles, typeof slide.detectTissue, typeof slide.parseAnnotations],
        slideRead: { levels: opened.info.levels.length, width: region.width, height: region.height, digest },
        relu: Array.from(y),
      }));`], app);
    const result = JSON.parse(out) as { slideRead: typeof slideNode };
    slideNode = result.slideRead;
    expect(slideNode).toMatchObject({ width: REGION[3], height: REGION[4] });
    expect(slideNode!.levels).toBeGreaterThan(1);
    expect(result).toEqual({
      root: ['function', 'function', 'function'],
      browser: ['function', 'function', false],
      kernels: ['function', 'function', 'function', readFileSync(join(repo, 'dist/kernels/wgsl_sources.js'), 'utf8').match(/^ "[a-z0-9_]+": /gm)?.length],
      nn: ['function', 'function', 'function', 'function'],
      train: ['function', 'function', 'function'],
      slide: ['function', 'function', 'function', 'function', 'function'],
      slideRead: slideNode,
      relu: [0, 2, 0, 4, 0.5],
    });
  });

  it("the installed CLI runs the built JavaScript (no tsx in the project)", () => {
    expect(existsSync(join(app, 'node_modules/tsx'))).toBe(false);
    expect(run(join(app, 'node_modules/.bin/lungpath'), ['--help'], app)).toMatch(/^Usage: lungpath <command>/);
  });

  it('a TypeScript file type-checks against the shipped declarations, and misuse is refused', () => {
    writeFileSync(join(app, 'check.ts'), `
      import { openRun, type ImagePrediction, type RunClassifier } from 'lungpath';
      import { conv2dForwardRef, createNodeRuntime, type Conv2dShape, type Runtime } from 'lungpath/kernels';
      import { Tape, Tensor, buildPatchNetwork, TINY_CONFIG, type ModelConfig } from 'lungpath/nn';
      import { RunFolder, accuracy } from 'lungpath/train';
      import { openSlide, type Slide, type SlideInfo } from 'lungpath/slide';
      export async function slideSize(path: string): Promise<[number, number]> {
        const slide: Slide = await openSlide(path, { reader: 'js' });
        const info: SlideInfo = slide.info;
        slide.close();
        return [info.width, info.height];
      }
      export async function classify(dir: string, file: string): Promise<ImagePrediction> {
        const model: RunClassifier = await openRun(dir, { batchSize: 8 });
        try { return await model.classifyFile(file); } finally { model.close(); }
      }
      export async function patchLogits(): Promise<Float32Array> {
        const rt: Runtime = await createNodeRuntime();
        const config: ModelConfig = TINY_CONFIG;
        const net = buildPatchNetwork(rt, config, 1);
        const x = Tensor.zeros(rt, [1, 3, config.patch.size, config.patch.size]);
        const y = net.forward(x, { tape: new Tape(), seed: 0 });
        return y.read();
      }
      const shape: Conv2dShape = { n: 1, cIn: 1, h: 3, w: 3, cOut: 1, kh: 1, kw: 1, stride: 1, pad: 0 };
      export const ref: Float64Array = conv2dForwardRef(new Float32Array(9), new Float32Array(1), null, shape);
      export const folder: string = new RunFolder('/tmp/run').configPath;
      export const acc: number = accuracy([0, 1], [0, 1]);
      // @ts-expect-error openRun takes a folder path
      openRun(42);
      // @ts-expect-error the reader is 'auto', 'openslide' or 'js'
      openSlide('a.svs', { reader: 'vips' });
      // @ts-expect-error a Conv2dShape needs every field
      export const bad: Conv2dShape = { n: 1 };
    `);
    // The GPU types: lib.dom (TypeScript 7 has WebGPU) or the @webgpu/types lungpath's declarations
    // reference for older compilers; skipLibCheck, as both declare them (so does this repository).
    // @types/node from this repository (a Node project has its own).
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', lib: ['es2022', 'dom'], module: 'nodenext', moduleResolution: 'nodenext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(app, 'node_modules/@types'), join(repo, 'node_modules/@types')] },
      files: ['check.ts'],
    }));
    run(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', join(app, 'tsconfig.json')], app);
  });

  it('example (a) classifies a folder with the installed package and prints JSON', () => {
    const runDir = join(tmp, 'run');
    const images = join(tmp, 'images');
    mkdirSync(runDir);
    mkdirSync(images);
    for (const f of ['level1.safetensors', 'level2.safetensors']) copyFileSync(join(modelDir, f), join(runDir, f));
    writeFileSync(join(runDir, 'config.json'), `${parseSafetensors(readFileSync(join(modelDir, 'level1.safetensors')), 'level1').metadata.config}\n`);
    copyFileSync(example, join(images, 'example.png'));
    copyFileSync(join(repo, 'examples/classify-folder.mjs'), join(app, 'classify-folder.mjs'));
    const lines = run(process.execPath, ['classify-folder.mjs', runDir, images], app).trim().split('\n');
    expect(lines).toHaveLength(1);
    exampleA = JSON.parse(lines[0] as string) as ImagePrediction;
    expect(exampleA.file).toBe(join(images, 'example.png'));
    expect(Object.values(exampleA.probabilities).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(exampleA.patches.length).toBeGreaterThan(0);
  });

  it('a page on the browser entry bundles with Vite (no Node modules) and classifies in Chromium as Node does', async () => {
    expect(exampleA, 'example (a) ran first').not.toBeNull();
    const page = join(app, 'page');
    cpSync(join(repo, 'test/package/page'), page, { recursive: true });
    mkdirSync(join(page, 'public/model'), { recursive: true });
    for (const f of ['level1.safetensors', 'level2.safetensors']) copyFileSync(join(modelDir, f), join(page, 'public/model', f));
    writeFileSync(join(page, 'public/example.rgb'), await sharp(example).removeAlpha().raw().toBuffer());
    copyFileSync(slidePath, join(page, 'public/slide.tiff'));
    const outDir = join(page, 'dist');
    const warnings: string[] = [];
    const output = (await build({
      root: page,
      configFile: false,
      logLevel: 'silent',
      base: './',
      build: { outDir, emptyOutDir: true, target: 'es2022', rollupOptions: { onwarn: (w: Rollup.RollupLog) => void warnings.push(w.message) } },
    })) as Rollup.RollupOutput | Rollup.RollupOutput[];
    const chunks = (Array.isArray(output) ? output : [output]).flatMap((o) => o.output).filter((c): c is Rollup.OutputChunk => c.type === 'chunk');
    const modules = chunks.flatMap((c) => Object.keys(c.modules));
    expect(warnings.filter((w) => /externalized|node:|sharp|koffi|webgpu/.test(w))).toEqual([]);
    expect(modules.filter((m) => /node_modules\/(sharp|koffi|webgpu|vega)|\/node:|__vite-browser-external/.test(m))).toEqual([]);
    expect(modules.some((m) => m.includes('node_modules/lungpath/dist/index.browser.js'))).toBe(true);
    expect(modules.some((m) => m.includes('node_modules/lungpath/dist/slide/index.js'))).toBe(true);
    expect(modules.filter((m) => /lungpath\/dist\/slide\/(index\.node|open|openslide|node_source|node_jpeg|cut)\.js/.test(m))).toEqual([]);
    expect(chunks.map((c) => c.code).join('\n')).toContain('fn '); // the WGSL travelled into the bundle

    const port = await freePort();
    const server = await preview({ root: page, configFile: false, logLevel: 'silent', build: { outDir }, preview: { host: '127.0.0.1', port, strictPort: true } });
    const browser = await launchChromium();
    try {
      const tab = await browser.newPage();
      await tab.goto(`http://127.0.0.1:${port}/`);
      await tab.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), undefined, { timeout: 90_000 });
      const state = await tab.evaluate(() => document.body.dataset.state);
      expect(state, (await tab.locator('#out').textContent()) ?? '').toBe('done');
      const r = (await tab.evaluate(() => (window as unknown as { packageCheck: unknown }).packageCheck)) as { adapter: string; relu: number[]; reluRef: number[]; level: string; prediction: ImagePrediction; slide: unknown };
      expect(r.relu).toEqual(r.reluRef);
      expect(slideNode, 'the Node slide read ran first').not.toBeNull();
      expect(r.slide).toEqual(slideNode);
      expect(r.level).toBe('level1');
      const node = exampleA as ImagePrediction;
      expect(r.prediction.class).toBe(node.class);
      let maxDiff = 0;
      for (const [name, p] of Object.entries(node.probabilities)) maxDiff = Math.max(maxDiff, Math.abs((r.prediction.probabilities[name] as number) - p));
      node.patches.forEach((p, i) => {
        for (const [name, q] of Object.entries(p.probabilities)) maxDiff = Math.max(maxDiff, Math.abs((r.prediction.patches[i]?.probabilities[name] as number) - q));
      });
      expect(r.prediction.patches).toHaveLength(node.patches.length);
      expect(maxDiff).toBeLessThan(1e-4);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 150_000);
});
