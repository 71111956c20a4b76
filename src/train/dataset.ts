/**
 * The dataset on disk: `DIR/{train,val,test}/<CLASS>/*` (`validation/` accepted for `val/`), or
 * `DIR/<CLASS>/*` split per class from a seed in the original's proportions (1,200 / 300 / 100 of
 * 1,600 → 0.75 / 0.1875 / 0.0625). Class names are folder names, sorted by code unit, or a given
 * order (a trained model's). Images are files with an IMAGE_EXTENSIONS extension; other files are
 * listed in `ignored`.
 *
 * `readDataset` only lists folders and records what is wrong with their structure; the
 * `validateDataset` pass then checks every file (decode.ts `inspectImage`) and reports every
 * problem at once, before any training starts.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ModelConfig } from '../nn/config.ts';
import { hashText, mixSeed, Rng, SEED_STREAM } from '../nn/random.ts';
import { DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageError, checkImageFitsPatch, inspectImage, isImageFile, type MismatchPolicy } from './decode.ts';

export interface DatasetImage {
  path: string;
  label: number;
  className: string;
}

export type SplitName = 'train' | 'val' | 'test';
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

/** One problem, naming the file or folder it is about. */
export interface DatasetProblem {
  path: string;
  problem: string;
}

export interface Dataset {
  root: string;
  classes: string[];
  layout: 'split' | 'flat';
  splits: { train: DatasetImage[]; val: DatasetImage[]; test: DatasetImage[] };
  /** Files and folders that were not read: no image extension, or not where a class folder or image goes. */
  ignored?: string[];
  /** Structural problems found while listing (unreadable folder, empty class folder, missing class, no classes); all stop training. */
  problems?: DatasetProblem[];
}

/** The original's proportions: 1,200 / 300 / 100 of 1,600 images per class. */
export const DEFAULT_SPLIT_FRACTIONS: Readonly<Record<SplitName, number>> = { train: 0.75, val: 0.1875, test: 0.0625 };

export interface ReadDatasetOptions {
  /** Seeds the per-class split of a flat layout. */
  seed: number;
  /** Fractions of each class in train / val / test for a flat layout (sum 1). */
  splitFractions?: Partial<Record<SplitName, number>>;
  /** Class order to label with (a trained model's `classes`); default: folder names sorted. */
  classes?: readonly string[];
}

/** Thrown by validateDataset for problems that stop training even with skipBad. */
export class DatasetError extends Error {
  constructor(readonly problems: DatasetProblem[]) {
    super(formatProblems(problems));
    this.name = 'DatasetError';
  }
}

/** One problem per line, `  path: problem`, under a count. */
export function formatProblems(problems: readonly DatasetProblem[]): string {
  const head = `${problems.length} problem${problems.length === 1 ? '' : 's'} in the dataset:`;
  return [head, ...problems.map((p) => `  ${p.path}: ${p.problem}`)].join('\n');
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Listing {
  dirs: string[];
  files: string[];
}

/** Sorted sub-folder and file names of `dir`, or a problem naming it. Symbolic links are followed. */
function listFolder(dir: string, problems: DatasetProblem[]): Listing | null {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    problems.push({ path: dir, problem: describeFolderError(e) });
    return null;
  }
  const dirs: string[] = [];
  const files: string[] = [];
  for (const entry of entries) {
    let isDir = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const s = statSync(join(dir, entry.name));
        isDir = s.isDirectory();
        isFile = s.isFile();
      } catch {
        isFile = true; // a dangling link is reported when its file is inspected
      }
    }
    if (isDir) dirs.push(entry.name);
    else if (isFile) files.push(entry.name);
  }
  return { dirs: dirs.sort(byCodeUnit), files: files.sort(byCodeUnit) };
}

function describeFolderError(e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === 'EACCES' || code === 'EPERM') return 'cannot read folder: permission denied';
  if (code === 'ENOENT') return 'folder does not exist';
  if (code === 'ENOTDIR') return 'is a file, not a folder';
  return `cannot read folder (${code ?? (e instanceof Error ? e.message : String(e))})`;
}

/** Image paths of one class folder (sorted); other entries go to `ignored`. */
function classImages(dir: string, problems: DatasetProblem[], ignored: string[]): string[] | null {
  const listing = listFolder(dir, problems);
  if (!listing) return null;
  const images: string[] = [];
  for (const name of listing.files) (isImageFile(name) ? images : ignored).push(join(dir, name));
  for (const name of listing.dirs) ignored.push(join(dir, name) + '/');
  if (images.length === 0) {
    problems.push({ path: dir, problem: `class folder has no images (${IMAGE_EXTENSIONS.join(' ')})${listing.files.length ? `; ${listing.files.length} other files ignored` : ''}` });
  }
  return images;
}

const SPLIT_FOLDERS: Readonly<Record<string, SplitName>> = { train: 'train', val: 'val', validation: 'val', test: 'test' };

/**
 * Lists a dataset folder (see the file header). Throws only when `dir` is not a folder; every
 * other problem is recorded in `problems` for validateDataset to report.
 */
export function readDataset(dir: string, options: ReadDatasetOptions): Dataset {
  const root = resolve(dir);
  let rootStat;
  try {
    rootStat = statSync(root);
  } catch {
    throw new Error(`${root}: dataset folder does not exist`);
  }
  if (!rootStat.isDirectory()) throw new Error(`${root}: is a file; the dataset must be a folder`);
  const fractions = splitFractions(options.splitFractions);
  const problems: DatasetProblem[] = [];
  const ignored: string[] = [];
  const listing = listFolder(root, problems) ?? { dirs: [], files: [] };
  const splitDirs = listing.dirs.filter((d) => d in SPLIT_FOLDERS);
  const layout = splitDirs.length > 0 ? 'split' : 'flat';
  // class name → split → image paths
  const found = new Map<string, Partial<Record<SplitName, string[]>>>();
  const record = (className: string, split: SplitName, paths: string[]) => {
    const entry = found.get(className) ?? {};
    entry[split] = paths;
    found.set(className, entry);
  };
  const presentSplits: SplitName[] = [];
  const emptySplits = new Set<SplitName>();

  for (const name of listing.files) ignored.push(join(root, name));
  if (layout === 'split') {
    for (const name of listing.dirs) if (!splitDirs.includes(name)) ignored.push(join(root, name) + '/');
    if (splitDirs.includes('val') && splitDirs.includes('validation')) {
      problems.push({ path: root, problem: 'has both val/ and validation/; keep one' });
    }
    for (const name of splitDirs) {
      const split = SPLIT_FOLDERS[name] as SplitName;
      if (presentSplits.includes(split)) continue;
      presentSplits.push(split);
      const splitPath = join(root, name);
      const classes = listFolder(splitPath, problems);
      if (!classes) continue;
      for (const file of classes.files) ignored.push(join(splitPath, file));
      if (classes.dirs.length === 0) {
        problems.push({ path: splitPath, problem: 'split folder has no class folders' });
        emptySplits.add(split);
      }
      for (const className of classes.dirs) {
        const path = join(splitPath, className);
        const images = classImages(path, problems, ignored);
        if (images) record(className, split, images);
        else record(className, split, []);
      }
    }
  } else {
    for (const className of listing.dirs) {
      const path = join(root, className);
      const images = classImages(path, problems, ignored);
      for (const [split, paths] of Object.entries(stratifiedSplit(images ?? [], fractions, options.seed, className))) {
        record(className, split as SplitName, paths);
      }
    }
  }

  const folderClasses = [...found.keys()].sort(byCodeUnit);
  const classes = options.classes ? [...options.classes] : folderClasses;
  if (folderClasses.length === 0) {
    problems.push({ path: root, problem: layout === 'split' ? 'no class folders in any split folder' : 'no class folders (expected DIR/<CLASS>/* or DIR/{train,val,test}/<CLASS>/*)' });
  } else if (classes.length < 2) {
    problems.push({ path: root, problem: `needs at least 2 classes, found ${classes.length}: ${classes.join(', ')}` });
  }
  if (options.classes) {
    for (const name of folderClasses) {
      if (!classes.includes(name)) problems.push({ path: join(root, name), problem: `class '${name}' is not one of the model's classes (${classes.join(', ')})` });
    }
    if (folderClasses.length > 0) {
      for (const name of classes) if (!found.has(name)) problems.push({ path: root, problem: `no folder for the model's class '${name}'` });
    }
  }
  if (layout === 'split') {
    for (const name of classes) {
      const entry = found.get(name);
      if (!entry) continue;
      const where = presentSplits.filter((s) => entry[s]);
      for (const split of presentSplits) {
        if (!entry[split] && !emptySplits.has(split)) {
          problems.push({ path: join(root, splitDirs.find((d) => SPLIT_FOLDERS[d] === split) ?? split, name), problem: `class '${name}' is missing from this split (it is in ${where.join(', ')})` });
        }
      }
    }
  }

  const splits: Dataset['splits'] = { train: [], val: [], test: [] };
  classes.forEach((className, label) => {
    const entry = found.get(className) ?? {};
    for (const split of SPLIT_NAMES) {
      for (const path of entry[split] ?? []) splits[split].push({ path, label, className });
    }
  });
  for (const split of SPLIT_NAMES) splits[split].sort((a, b) => byCodeUnit(a.path, b.path));
  return { root, classes, layout, splits, ignored: ignored.sort(byCodeUnit), problems };
}

function splitFractions(given: Partial<Record<SplitName, number>> | undefined): Record<SplitName, number> {
  const f = { ...DEFAULT_SPLIT_FRACTIONS, ...given };
  for (const s of SPLIT_NAMES) {
    if (!(f[s] >= 0 && f[s] <= 1)) throw new RangeError(`splitFractions.${s} must be in [0, 1], got ${f[s]}`);
  }
  const sum = f.train + f.val + f.test;
  if (Math.abs(sum - 1) > 1e-9) throw new RangeError(`splitFractions must sum to 1, got ${sum}`);
  return f;
}

/**
 * Splits one class's images (sorted paths) into train / val / test: shuffled by a generator seeded
 * from (seed, class name), so one class's split does not depend on the other classes; counts by
 * largest remainder of n·fraction (1,600 → exactly 1,200 / 300 / 100).
 */
export function stratifiedSplit(paths: readonly string[], fractions: Record<SplitName, number>, seed: number, className: string): Record<SplitName, string[]> {
  const shuffled = new Rng(mixSeed(seed, SEED_STREAM.datasetSplit, hashText(className))).shuffle([...paths].sort(byCodeUnit));
  const n = shuffled.length;
  const exact = SPLIT_NAMES.map((s) => n * fractions[s]);
  const counts = exact.map(Math.floor);
  const order = [0, 1, 2].sort((a, b) => exact[b]! - counts[b]! - (exact[a]! - counts[a]!) || a - b);
  for (let left = n - counts.reduce((a, b) => a + b, 0), i = 0; left > 0; left--, i++) counts[order[i % 3]!]!++;
  const [nTrain, nVal] = counts as [number, number, number];
  return { train: shuffled.slice(0, nTrain), val: shuffled.slice(nTrain, nTrain + nVal), test: shuffled.slice(nTrain + nVal) };
}

export interface ValidateOptions {
  /** Leave bad files out (counted in `skipped`) instead of reporting them for the caller to stop. */
  skipBad?: boolean;
  /** With 'refuse', an image of the wrong size is a problem; with 'resize' (default) a warning. */
  onMismatch?: MismatchPolicy;
  maxPixels?: number;
  /** Decode every image fully instead of the header + completeness check (see inspectImage). */
  fullDecode?: boolean;
  /** Splits that must hold images (e.g. ['train', 'val'] to train). Default none. */
  requireSplits?: readonly SplitName[];
  /** Files inspected at once (sharp decodes on libuv's thread pool); default 4. */
  concurrency?: number;
}

export interface ValidationResult {
  /** Every problem found (skipBad false), or the files left out (skipBad true). */
  bad: DatasetProblem[];
  /** Files left out (skipBad true). */
  skipped: number;
  /** The dataset without the files left out. */
  dataset: Dataset;
  /** Images that will be resized to the model's size, one line each. */
  warnings: string[];
  /** Files and folders not read (no image extension, or out of place), as listed by readDataset. */
  ignored: string[];
}

/**
 * Checks every image of `ds` (each file once: header, size against `config`, completeness — see
 * decode.ts `inspectImage`) and the dataset's structure, and collects every problem. With skipBad
 * false the problems are returned in `bad` for the caller to stop with `formatProblems`; with
 * skipBad the bad files are left out of the returned dataset, and dataset-level problems (no
 * classes, fewer than 2, a class missing from a split or left without images, an unreadable or
 * empty folder) throw a DatasetError.
 */
export async function validateDataset(ds: Dataset, config: ModelConfig, options: ValidateOptions = {}): Promise<ValidationResult> {
  const { skipBad = false, onMismatch = 'resize', maxPixels = DEFAULT_MAX_PIXELS, fullDecode = false, concurrency = 4 } = options;
  const datasetProblems: DatasetProblem[] = [...(ds.problems ?? [])];
  const fileProblems = new Map<string, string>();
  const warnings: string[] = [];
  const images = SPLIT_NAMES.flatMap((s) => ds.splits[s]);
  const paths = [...new Set(images.map((i) => i.path))];

  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++] as string;
      try {
        const header = await inspectImage(path, { maxPixels, fullDecode });
        checkImageFitsPatch(path, header.width, header.height, config.patch.size);
        if (header.width !== config.imageSize || header.height !== config.imageSize) {
          const sizes = `image is ${header.width}×${header.height}, the model takes ${config.imageSize}×${config.imageSize}`;
          if (onMismatch === 'refuse') throw new ImageError(path, `${sizes} (resizing is turned off)`);
          warnings.push(`${path}: ${sizes}; it will be resized`);
        }
      } catch (e) {
        fileProblems.set(path, e instanceof ImageError ? e.problem : String(e));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, paths.length)) }, worker));

  const keep = (i: DatasetImage) => !fileProblems.has(i.path);
  const splits = { train: ds.splits.train.filter(keep), val: ds.splits.val.filter(keep), test: ds.splits.test.filter(keep) };
  for (const split of SPLIT_NAMES) {
    ds.classes.forEach((className, label) => {
      const before = ds.splits[split].filter((i) => i.label === label).length;
      const after = splits[split].filter((i) => i.label === label).length;
      if (before > 0 && after === 0) {
        datasetProblems.push({ path: join(ds.root, ds.layout === 'split' ? split : className), problem: `class '${className}' has no usable images in the ${split} split: all ${before} are bad` });
      }
    });
  }
  for (const split of options.requireSplits ?? []) {
    if (splits[split].length === 0 && ds.splits[split].length === 0) datasetProblems.push({ path: ds.root, problem: `the ${split} split has no images` });
  }
  const bad = paths.filter((p) => fileProblems.has(p)).map((path) => ({ path, problem: fileProblems.get(path) as string }));
  warnings.sort(byCodeUnit);
  const ignored = ds.ignored ?? [];
  if (!skipBad) return { bad: [...datasetProblems, ...bad], skipped: 0, dataset: ds, warnings, ignored };
  if (datasetProblems.length > 0) throw new DatasetError(datasetProblems);
  return { bad, skipped: bad.length, dataset: { ...ds, splits }, warnings, ignored };
}
