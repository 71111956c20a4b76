/**
 * Dataset reading (both layouts, class order, the stratified split) and the validation pass: every
 * bad input is one line through `expectProblem`, which builds a small valid dataset, breaks it, and
 * expects exactly that one problem, naming the file or folder.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_CONFIG, type ModelConfig } from '../../src/nn/config.ts';
import {
  DatasetError,
  formatProblems,
  readDataset,
  stratifiedSplit,
  validateDataset,
  DEFAULT_SPLIT_FRACTIONS,
  type Dataset,
  type ValidateOptions,
} from '../../src/train/dataset.ts';

const config: ModelConfig = { ...TINY_CONFIG, imageSize: 24, patch: { size: 8, stride: 4 }, level2: { ...TINY_CONFIG.level2, patchStride: 8 } };
const top = mkdtempSync(join(tmpdir(), 'lungpath-dataset-'));
afterAll(() => rmSync(top, { recursive: true, force: true }));

/** Random RGB8 noise (incompressible, so the files are large enough to cut). */
function noise(width: number, height: number, seed: number): Uint8Array {
  let s = seed >>> 0;
  return Uint8Array.from({ length: width * height * 3 }, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24));
}
const image = (size: number, seed = size) => sharp(noise(size, size, seed), { raw: { width: size, height: size, channels: 3 } });
const files: Record<string, Buffer> = {};
beforeAll(async () => {
  files.png = await image(24).png().toBuffer();
  files.png64 = await image(64).png().toBuffer();
  files.jpg = await image(24).jpeg().toBuffer();
  files.webp = await image(64).webp({ lossless: true }).toBuffer();
  files.tif = await image(24).tiff({ compression: 'jpeg' }).toBuffer();
  files.small = await image(6).png().toBuffer();
  files.wrongSize = await image(30).png().toBuffer();
  files.big = await image(25).png().toBuffer();
});
const cut = (bytes: Buffer, fraction: number) => bytes.subarray(0, Math.floor(bytes.length * fraction));

let dirs = 0;
/** A fresh folder holding `tree` (relative path → file bytes, or null for an empty folder). */
function build(tree: Record<string, Buffer | string | null>): string {
  const root = join(top, `d${dirs++}`);
  for (const [path, content] of Object.entries(tree)) {
    const full = join(root, path);
    if (content === null) mkdirSync(full, { recursive: true });
    else {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, content);
    }
  }
  return root;
}

/** train/{ADC,NORM}/{a,b}.png, val/{ADC,NORM}/c.png, all valid 24×24. */
const base = () => build({ 'train/ADC/a.png': files.png!, 'train/ADC/b.png': files.png!, 'train/NORM/a.png': files.png!, 'train/NORM/b.png': files.png!, 'val/ADC/c.png': files.png!, 'val/NORM/c.png': files.png! });

async function problems(root: string, options: ValidateOptions = {}, classes?: string[]): Promise<[string, string][]> {
  const { bad } = await validateDataset(readDataset(root, { seed: 1, classes }), config, options);
  return bad.map((p) => [relative(root, p.path) || '.', p.problem]);
}

/** Breaks the base dataset with `mutate` and expects exactly one problem, about `path`, matching `message`. */
async function expectProblem(mutate: (root: string) => void, path: string, message: RegExp, options: ValidateOptions = {}): Promise<void> {
  const root = base();
  mutate(root);
  const found = await problems(root, options);
  expect(found, JSON.stringify(found)).toHaveLength(1);
  expect(found[0]![0]).toBe(path);
  expect(found[0]![1]).toMatch(message);
}

const put = (path: string, bytes: () => Uint8Array | string) => (root: string) => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), bytes());
};
const remove = (...paths: string[]) => (root: string) => paths.forEach((p) => rmSync(join(root, p), { recursive: true }));

describe('validateDataset: each bad input is reported, naming the file or folder', () => {
  it.each<[string, (root: string) => void, string, RegExp, ValidateOptions?]>([
    ['truncated PNG', put('train/ADC/t.png', () => cut(files.png!, 0.9)), 'train/ADC/t.png', /truncated PNG \(no IEND chunk/],
    ['PNG cut just before its end', put('train/ADC/t.png', () => cut(files.png!, 0.995)), 'train/ADC/t.png', /truncated PNG/],
    ['truncated JPEG', put('train/ADC/t.jpg', () => cut(files.jpg!, 0.9)), 'train/ADC/t.jpg', /truncated JPEG \(no end-of-image marker/],
    ['truncated WebP', put('train/ADC/t.webp', () => cut(files.webp!, 0.9)), 'train/ADC/t.webp', /truncated/],
    ['truncated TIFF (fully decoded)', put('train/ADC/t.tiff', () => cut(files.tif!, 0.9)), 'train/ADC/t.tiff', /corrupt or truncated image/],
    ['corrupt header', put('val/NORM/h.png', () => Buffer.concat([files.png!.subarray(0, 16), Buffer.alloc(200, 7)])), 'val/NORM/h.png', /not an image, or its header is damaged|corrupt/],
    ['corrupt pixel data (full decode)', put('train/ADC/x.png', () => Buffer.concat([files.png64!.subarray(0, 200), Buffer.alloc(2000, 0x55), files.png64!.subarray(2200)])), 'train/ADC/x.png', /corrupt or truncated image/, { fullDecode: true }],
    ['non-image with an image extension', put('train/NORM/notes.png', () => 'patient notes, not pixels'), 'train/NORM/notes.png', /not an image/],
    ['zero-byte file', put('train/NORM/empty.jpg', () => new Uint8Array(0)), 'train/NORM/empty.jpg', /^empty file \(0 bytes\)$/],
    ['image smaller than a patch', put('val/ADC/small.png', () => files.small!), 'val/ADC/small.png', /^image is 6×6, smaller than one 8×8 patch$/],
    ['wrong size with resizing off', put('val/ADC/w.png', () => files.wrongSize!), 'val/ADC/w.png', /image is 30×30, the model takes 24×24 \(resizing is turned off\)/, { onMismatch: 'refuse' }],
    ['image over the pixel cap', put('val/ADC/big.png', () => files.big!), 'val/ADC/big.png', /25×25 = 625 pixels, over the limit of 600 pixels/, { maxPixels: 600 }],
    ['empty class folder', remove('val/NORM/c.png'), 'val/NORM', /^class folder has no images \(.png .jpg .jpeg .tif .tiff .webp\)$/],
    ['class missing from one split', remove('val/NORM'), 'val/NORM', /^class 'NORM' is missing from this split \(it is in train\)$/],
    ['split folder without class folders', (root) => mkdirSync(join(root, 'test')), 'test', /^split folder has no class folders$/],
    ['only one class', remove('train/NORM', 'val/NORM'), '.', /^needs at least 2 classes, found 1: ADC$/],
    ['folder with no classes', (root) => (remove('train', 'val')(root), put('README.txt', () => 'hello')(root)), '.', /^no class folders \(expected DIR\/<CLASS>\/\* or/],
    ['both val/ and validation/', (root) => put('validation/ADC/c.png', () => files.png!)(root), '.', /^has both val\/ and validation\/; keep one$/],
  ])('%s', async (_, mutate, path, message, options) => {
    await expectProblem(mutate, path, message, options);
  });

  it('the cheap check passes damaged pixel data that only a full decode finds (documented)', async () => {
    const root = base();
    put('train/ADC/x.png', () => Buffer.concat([files.png64!.subarray(0, 200), Buffer.alloc(2000, 0x55), files.png64!.subarray(2200)]))(root);
    expect(await problems(root)).toEqual([]);
  });

  it('an unreadable folder (permission denied)', async () => {
    const root = base();
    chmodSync(join(root, 'train/NORM'), 0o000);
    let found: unknown;
    if (process.getuid?.() === 0) {
      // root reads any folder: list it as an unprivileged user in a child process.
      for (let d = root; d !== top; d = dirname(d)) chmodSync(d, 0o755);
      chmodSync(top, 0o755);
      const repo = fileURLToPath(new URL('../..', import.meta.url));
      const script = `import { readDataset } from ${JSON.stringify(join(repo, 'src/train/dataset.ts'))};\n` + `console.log(JSON.stringify(readDataset(process.argv[2], { seed: 1 }).problems));`;
      const scriptPath = join(top, 'list-as-nobody.ts');
      writeFileSync(scriptPath, script, { mode: 0o644 });
      const child = spawnSync(process.execPath, ['--import', 'tsx', scriptPath, root], { uid: 65534, gid: 65534, cwd: repo, encoding: 'utf8', env: { ...process.env, HOME: tmpdir() } });
      expect(child.status, child.stderr).toBe(0);
      found = JSON.parse(child.stdout);
    } else {
      found = readDataset(root, { seed: 1 }).problems;
    }
    chmodSync(join(root, 'train/NORM'), 0o755);
    expect(found).toEqual([{ path: join(root, 'train/NORM'), problem: 'cannot read folder: permission denied' }]);
  });

  it('model classes that do not match the folders', async () => {
    expect(await problems(base(), {}, ['NORM', 'ADC', 'SCLC'])).toEqual([['.', "no folder for the model's class 'SCLC'"]]);
    expect(await problems(base(), {}, ['NORM', 'SC'])).toEqual([
      ['ADC', "class 'ADC' is not one of the model's classes (NORM, SC)"],
      ['.', "no folder for the model's class 'SC'"],
    ]);
  });

  it('collects every problem in one pass, dataset-level first', async () => {
    const root = base();
    put('train/ADC/t.png', () => cut(files.png!, 0.5))(root);
    put('train/NORM/empty.png', () => '')(root);
    put('val/ADC/small.png', () => files.small!)(root);
    remove('val/NORM')(root);
    expect((await problems(root)).map(([path]) => path)).toEqual(['val/NORM', 'train/ADC/t.png', 'train/NORM/empty.png', 'val/ADC/small.png']);
  });

  it('skipBad leaves bad files out and counts them; size mismatches are warnings', async () => {
    const root = base();
    put('train/ADC/t.png', () => cut(files.png!, 0.5))(root);
    put('val/ADC/w.png', () => files.wrongSize!)(root);
    const ds = readDataset(root, { seed: 1 });
    const result = await validateDataset(ds, config, { skipBad: true });
    expect(result.skipped).toBe(1);
    expect(result.bad.map((p) => relative(root, p.path))).toEqual(['train/ADC/t.png']);
    expect(result.dataset.splits.train.map((i) => relative(root, i.path))).toEqual(['train/ADC/a.png', 'train/ADC/b.png', 'train/NORM/a.png', 'train/NORM/b.png']);
    expect(result.warnings).toEqual([`${join(root, 'val/ADC/w.png')}: image is 30×30, the model takes 24×24; it will be resized`]);
    expect(ds.splits.train).toHaveLength(5); // the input is not modified
  });

  it('dataset-level problems stop even with skipBad', async () => {
    const missing = base();
    remove('val/NORM')(missing);
    await expect(validateDataset(readDataset(missing, { seed: 1 }), config, { skipBad: true })).rejects.toThrow(DatasetError);
    const allBad = base();
    put('val/NORM/c.png', () => 'garbage')(allBad);
    await expect(validateDataset(readDataset(allBad, { seed: 1 }), config, { skipBad: true })).rejects.toThrow(
      `${join(allBad, 'val')}: class 'NORM' has no usable images in the val split: all 1 are bad`,
    );
    await expect(validateDataset(readDataset(base(), { seed: 1 }), config, { requireSplits: ['test'], skipBad: true })).rejects.toThrow(/the test split has no images/);
  });

  it('formatProblems lists one problem per line under a count', () => {
    expect(formatProblems([{ path: '/d/a.png', problem: 'empty file (0 bytes)' }, { path: '/d/B', problem: 'class folder has no images' }])).toBe(
      '2 problems in the dataset:\n  /d/a.png: empty file (0 bytes)\n  /d/B: class folder has no images',
    );
  });
});

describe('readDataset', () => {
  it('split layout: classes sorted from folder names, labels, validation/ for val/, other files ignored', () => {
    const root = build({
      'train/b_class/1.PNG': '', 'train/b_class/2.jpeg': '', 'train/A/1.tif': '', 'train/A/notes.txt': '', 'train/A/sub': null, 'train/readme.md': '',
      'validation/A/3.webp': '', 'validation/b_class/4.TIFF': '', 'test/A/5.jpg': '', 'test/b_class/6.png': '', 'extra': null,
    });
    const ds = readDataset(root, { seed: 0 });
    expect(ds.problems).toEqual([]);
    expect([ds.layout, ds.classes]).toEqual(['split', ['A', 'b_class']]);
    const short = (images: Dataset['splits']['train']) => images.map((i) => [relative(root, i.path), i.label, i.className]);
    expect(short(ds.splits.train)).toEqual([['train/A/1.tif', 0, 'A'], ['train/b_class/1.PNG', 1, 'b_class'], ['train/b_class/2.jpeg', 1, 'b_class']]);
    expect(short(ds.splits.val)).toEqual([['validation/A/3.webp', 0, 'A'], ['validation/b_class/4.TIFF', 1, 'b_class']]);
    expect(short(ds.splits.test)).toEqual([['test/A/5.jpg', 0, 'A'], ['test/b_class/6.png', 1, 'b_class']]);
    expect(ds.ignored!.map((p) => relative(root, p))).toEqual(['extra', 'train/A/notes.txt', 'train/A/sub', 'train/readme.md']);
  });

  it('an explicit class order (a trained model\'s) sets the labels', () => {
    const root = build({ 'NORM/1.png': '', 'ADC/2.png': '', 'SC/3.png': '' });
    const ds = readDataset(root, { seed: 0, classes: ['SC', 'NORM', 'ADC'], splitFractions: { train: 1, val: 0, test: 0 } });
    expect(ds.classes).toEqual(['SC', 'NORM', 'ADC']);
    expect(ds.splits.train.map((i) => [i.className, i.label])).toEqual([['ADC', 2], ['NORM', 1], ['SC', 0]]);
  });

  it('flat layout: a stratified split in the original proportions, a function of the seed', () => {
    const tree: Record<string, string> = {};
    for (const c of ['ADC', 'NORM', 'SCLC']) for (let i = 0; i < 16; i++) tree[`${c}/img${i}.png`] = '';
    const root = build(tree);
    const ds = readDataset(root, { seed: 7 });
    expect([ds.layout, ds.classes, ds.problems]).toEqual(['flat', ['ADC', 'NORM', 'SCLC'], []]);
    for (const [split, n] of [['train', 12], ['val', 3], ['test', 1]] as const) {
      for (let label = 0; label < 3; label++) expect(ds.splits[split].filter((i) => i.label === label), `${split} ${label}`).toHaveLength(n);
    }
    const all = [...ds.splits.train, ...ds.splits.val, ...ds.splits.test].map((i) => i.path).sort();
    expect(all).toEqual(Object.keys(tree).map((p) => join(root, p)).sort());
    expect(readDataset(root, { seed: 7 })).toEqual(ds);
    expect(readDataset(root, { seed: 8 }).splits.test).not.toEqual(ds.splits.test);
  });

  it('stratifiedSplit: 1,600 → 1,200 / 300 / 100; each class split on its own; fractions checked', () => {
    const names = Array.from({ length: 1600 }, (_, i) => `x${i}.png`);
    const split = stratifiedSplit(names, { ...DEFAULT_SPLIT_FRACTIONS }, 3, 'ADC');
    expect([split.train.length, split.val.length, split.test.length]).toEqual([1200, 300, 100]);
    expect(new Set([...split.train, ...split.val, ...split.test]).size).toBe(1600);
    expect(stratifiedSplit([...names].reverse(), { ...DEFAULT_SPLIT_FRACTIONS }, 3, 'ADC')).toEqual(split);
    expect(stratifiedSplit(names, { ...DEFAULT_SPLIT_FRACTIONS }, 3, 'NORM').test).not.toEqual(split.test);
    expect([10, 1, 2, 3].map((n) => Object.values(stratifiedSplit(names.slice(0, n), { ...DEFAULT_SPLIT_FRACTIONS }, 0, 'A')).map((s) => s.length))).toEqual([[7, 2, 1], [1, 0, 0], [2, 0, 0], [2, 1, 0]]);
    expect(() => readDataset(base(), { seed: 0, splitFractions: { train: 0.9 } })).toThrow(/must sum to 1/);
  });

  it('a missing dataset folder is an error naming it', () => {
    expect(() => readDataset(join(top, 'nope'), { seed: 0 })).toThrow(`${join(top, 'nope')}: dataset folder does not exist`);
    const file = join(top, 'file.png');
    writeFileSync(file, readFileSync(fileURLToPath(import.meta.url)));
    expect(() => readDataset(file, { seed: 0 })).toThrow(/is a file; the dataset must be a folder/);
  });
});
