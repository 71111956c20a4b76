/**
 * The images a run trained on, as they were: path, size, modification and change times, inode and
 * SHA-256 of the content, saved in RUN/data.json when a run starts. A resume, every Level-1 epoch
 * and the feature cache check the files against it and stop naming each image that was deleted,
 * cut short, replaced or edited — or added — so changed data is never used silently.
 *
 * The check is cheap: one stat per file. Only a file whose stat differs (mtime, ctime or inode;
 * `cp -p` or `touch -r` keep the mtime but not the ctime or the inode) is hashed again, and it is
 * a change only if its bytes differ — a file touched but not edited passes. The content hashes
 * are memoised per (path, stat), so the feature cache's key, which covers them, costs nothing more.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, type Stats } from 'node:fs';
import { writeFileAtomic } from '../nn/files.ts';
import { SPLIT_NAMES, type Dataset } from './dataset.ts';
import type { RunFolder } from './run_folder.ts';

export interface ManifestEntry {
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  sha256: string;
}

/** One changed image and what changed. */
export interface DataChange {
  path: string;
  change: string;
}

/** Thrown when images changed under a run; the message lists each one. */
export class DataChangedError extends Error {
  constructor(
    readonly changes: DataChange[],
    where: string,
  ) {
    const shown = changes.slice(0, 20).map((c) => `  ${c.path}: ${c.change}`);
    if (changes.length > 20) shown.push(`  … and ${changes.length - 20} more`);
    super(
      `${changes.length} image${changes.length === 1 ? '' : 's'} changed on disk since the run started (found ${where}):\n${shown.join('\n')}\n` +
        `A run must see the data it started with: put the files back as they were, or train a new run (another --out)`,
    );
    this.name = 'DataChangedError';
  }
}

const stamp = (s: Stats) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
const digests = new Map<string, { stamp: string; sha256: string }>();

/** SHA-256 of a file's bytes, memoised while its stat (device, inode, size, mtime, ctime) is unchanged. */
export function contentDigest(path: string, stat: Stats = statSync(path)): string {
  const key = stamp(stat);
  const known = digests.get(path);
  if (known?.stamp === key) return known.sha256;
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
  digests.set(path, { stamp: key, sha256 });
  return sha256;
}

function describeStatError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'deleted' : `cannot be read any more (${code ?? (e as Error).message})`;
}

/** The images of a run and their recorded state. */
export class DataManifest {
  readonly entries: Map<string, ManifestEntry>;

  constructor(entries: readonly ManifestEntry[]) {
    this.entries = new Map(entries.map((e) => [e.path, { ...e }]));
  }

  /** Records `paths` as they are now (reads and hashes every file). */
  static build(paths: readonly string[]): DataManifest {
    return new DataManifest(
      [...new Set(paths)].map((path) => {
        const s = statSync(path);
        return { path, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino, sha256: contentDigest(path, s) };
      }),
    );
  }

  /** The manifest saved in `file`, or null when there is none (a run from before manifests). */
  static read(file: string): DataManifest | null {
    if (!existsSync(file)) return null;
    let parsed: { files?: unknown };
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as { files?: unknown };
    } catch (e) {
      throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
    }
    if (!Array.isArray(parsed.files)) throw new Error(`${file}: no 'files' list`);
    return new DataManifest(parsed.files as ManifestEntry[]);
  }

  write(file: string): void {
    writeFileAtomic(file, `${JSON.stringify({ format: 'lungpath-data-1', files: [...this.entries.values()] })}\n`);
  }

  /**
   * What changed: every recorded file that is gone, a different size, or different bytes, and
   * (given `current`, the paths the dataset lists now) every listed file not recorded. A file
   * whose stat moved but whose bytes did not is re-recorded, not reported.
   */
  changes(current?: readonly string[]): DataChange[] {
    const out: DataChange[] = [];
    for (const entry of this.entries.values()) {
      let s: Stats;
      try {
        s = statSync(entry.path);
      } catch (e) {
        out.push({ path: entry.path, change: describeStatError(e) });
        continue;
      }
      if (s.size !== entry.size) {
        out.push({ path: entry.path, change: `size changed from ${entry.size} to ${s.size} bytes${s.size < entry.size ? ' (cut short?)' : ''}` });
        continue;
      }
      if (s.mtimeMs === entry.mtimeMs && s.ctimeMs === entry.ctimeMs && s.ino === entry.ino) continue;
      let sha256: string;
      try {
        sha256 = contentDigest(entry.path, s);
      } catch (e) {
        out.push({ path: entry.path, change: describeStatError(e) });
        continue;
      }
      if (sha256 !== entry.sha256) {
        const when = s.mtimeMs === entry.mtimeMs ? 'same size and modification time' : `modified ${new Date(s.mtimeMs).toISOString()}`;
        out.push({ path: entry.path, change: `content changed (${when}; SHA-256 ${sha256.slice(0, 12)}…, was ${entry.sha256.slice(0, 12)}…)` });
      } else Object.assign(entry, { mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs, ino: s.ino });
    }
    for (const path of current ?? []) if (!this.entries.has(path)) out.push({ path, change: 'new: not among the images the run started with' });
    return out;
  }

  /** Throws a DataChangedError naming every change (see `changes`), found `where`. */
  check(where: string, current?: readonly string[]): void {
    const changes = this.changes(current);
    if (changes.length > 0) throw new DataChangedError(changes, where);
  }
}

/**
 * The manifest `train` works with: on --resume, the one saved in the run (checked against the
 * files now, and against the dataset's listing: a new image is a change too); otherwise — or for
 * a run from before manifests — a new one of `dataset`'s images, saved in the run.
 */
export function runDataManifest(run: RunFolder, dataset: Dataset, resume: boolean, log: (m: string) => void): DataManifest {
  const paths = SPLIT_NAMES.flatMap((split) => dataset.splits[split].map((image) => image.path));
  const recorded = resume ? DataManifest.read(run.dataManifest) : null;
  if (recorded) {
    recorded.check('when resuming', paths);
    recorded.write(run.dataManifest); // stats of files touched but not edited, refreshed
    return recorded;
  }
  if (resume) log(`${run.dataManifest}: none (a run from before data manifests); recording the images as they are now`);
  const manifest = DataManifest.build(paths);
  manifest.write(run.dataManifest);
  return manifest;
}
