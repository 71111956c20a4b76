/**
 * Images changed under a run (src/train/data_manifest.ts): deleted, cut short, replaced keeping
 * size and modification time, or added — each named, never used silently; a file touched but not
 * edited passes. The feature cache never serves the maps of a changed image (and on a full disk
 * stops naming its file, leaving no partial one), and `lungpath train`
 * stops naming the image when it changes between Level-1 epochs or before a resume.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiskFullError } from '../../src/nn/files.ts';
import { buildPatchNetwork } from '../../src/nn/networks.ts';
import { DataChangedError, DataManifest } from '../../src/train/data_manifest.ts';
import { cachedFeatures } from '../../src/train/features.ts';
import type { DatasetImage } from '../../src/train/dataset.ts';
import { gpu } from '../helpers/gpu.ts';
import { MICRO, microSetup, trainMicro, type MicroSetup } from '../helpers/micro_run.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lungpath-data-change-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An uncompressed 128² RGB TIFF of seeded noise: every seed gives a file of the same size. */
async function noiseTiff(path: string, seed: number): Promise<void> {
  const pixels = new Uint8Array(128 * 128 * 3);
  let h = seed >>> 0;
  for (let i = 0; i < pixels.length; i++) pixels[i] = (h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + i) >>> 24;
  await sharp(pixels, { raw: { width: 128, height: 128, channels: 3 } }).tiff({ compression: 'none' }).toFile(path);
}

/** Rewrites `path` with the bytes of `from`, then sets its times back to the whole second `settle` gave it. */
function replaceKeepingMtime(path: string, from: string): void {
  writeFileSync(path, readFileSync(from));
  settle(path);
}

/** Sets a file's times to a whole second, which utimes can restore exactly (its stat keeps nanoseconds). */
function settle(path: string): void {
  utimesSync(path, 1_700_000_000, 1_700_000_000);
}

describe('data manifest', () => {
  it('names each image deleted, cut short, replaced (same size and mtime) or added; a touch is not a change', async () => {
    const files = await Promise.all([0, 1, 2, 3, 4].map(async (k) => {
      const path = join(dir, `m${k}.tif`);
      await noiseTiff(path, k + 1);
      return path;
    }));
    const spare = join(dir, 'spare.tif');
    await noiseTiff(spare, 99);
    files.forEach(settle);
    expect(statSync(spare).size).toBe(statSync(files[0] as string).size);
    const manifest = DataManifest.build(files);
    manifest.write(join(dir, 'data.json'));
    expect(DataManifest.read(join(dir, 'data.json'))?.changes(files)).toEqual([]);

    unlinkSync(files[0] as string);
    truncateSync(files[1] as string, 1000);
    replaceKeepingMtime(files[2] as string, spare);
    const later = new Date(Date.now() + 5000);
    utimesSync(files[3] as string, later, later); // touched, same bytes
    const added = join(dir, 'added.tif');
    await noiseTiff(added, 7);

    const recorded = DataManifest.read(join(dir, 'data.json')) as DataManifest;
    const changes = recorded.changes([...files.slice(1), added]);
    expect(changes.map((c) => c.path)).toEqual([files[0], files[1], files[2], added]);
    expect(changes[0]?.change).toBe('deleted');
    expect(changes[1]?.change).toMatch(/^size changed from \d+ to 1000 bytes \(cut short\?\)$/);
    expect(changes[2]?.change).toMatch(/^content changed \(same size and modification time; SHA-256 /);
    expect(changes[3]?.change).toBe('new: not among the images the run started with');
    expect(() => recorded.check('when resuming')).toThrow(DataChangedError);
    expect(() => recorded.check('when resuming')).toThrow(/3 images changed on disk since the run started \(found when resuming\):\n .*m0\.tif: deleted/);
  });
});

/** Two noise TIFFs `${prefix}0.tif`, `${prefix}1.tif` in the test folder (seeds `seed`, `seed` + 1), labels 0 and 1. */
function noiseImages(prefix: string, seed: number): Promise<DatasetImage[]> {
  return Promise.all([0, 1].map(async (k) => {
    const path = join(dir, `${prefix}${k}.tif`);
    await noiseTiff(path, seed + k);
    return { path, label: k, className: String(k) };
  }));
}

describe('feature cache', () => {
  it('recomputes the maps of an image replaced keeping its size and modification time', async () => {
    const rt = await gpu();
    const net = buildPatchNetwork(rt, MICRO, 1);
    const images = await noiseImages('f', 10);
    const spare = join(dir, 'f-spare.tif');
    await noiseTiff(spare, 50);
    images.forEach((image) => settle(image.path));
    const cache = join(dir, 'cache');
    mkdirSync(cache);
    const computed: string[] = [];
    const options = { warn: () => {}, onMismatch: 'resize' as const, log: (m: string) => computed.push(m) };
    const load = async () => {
      const split = await cachedFeatures(rt, cache, 'train', net, new Uint8Array([1, 2, 3]), MICRO, images, options);
      const maps = [split.read(0), split.read(1)];
      split.close();
      return maps;
    };
    const before = await load();
    await load();
    expect(computed.length, 'an unchanged set is served from the cache').toBe(1);
    replaceKeepingMtime(images[0]!.path, spare);
    const after = await load();
    expect(computed.length, 'the changed image made the cache stale').toBe(2);
    expect(after[1]).toEqual(before[1]);
    expect(after[0]).not.toEqual(before[0]);
    expect(readdirSync(cache).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    net.destroy();
  });

  it('creates its folder when it is missing (a run folder whose cache/ was deleted)', async () => {
    const rt = await gpu();
    const net = buildPatchNetwork(rt, MICRO, 1);
    const images = await noiseImages('g', 2);
    const cache = join(dir, 'deleted', 'cache');
    const split = await cachedFeatures(rt, cache, 'train', net, new Uint8Array([5]), MICRO, images, { warn: () => {}, onMismatch: 'resize' });
    expect(split.read(0).length).toBeGreaterThan(0);
    split.close();
    expect(readdirSync(cache).filter((n) => n.endsWith('.f32'))).toHaveLength(1);
    net.destroy();
  });
});

describe('feature cache on a full disk', () => {
  it('stops naming the cache file and the free space, leaves no partial file, and works once space is freed', async () => {
    const rt = await gpu();
    const net = buildPatchNetwork(rt, MICRO, 1);
    const images = await noiseImages('d', 20);
    const cache = join(dir, 'full-disk');
    mkdirSync(cache);
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', cache], { stdio: 'ignore' });
      mounted = true;
    } catch {
      // mounting refused: fail the writes at the write layer instead
    }
    const flag = join(dir, 'disk-full.flag');
    const filler = join(cache, 'filler');
    const previous = process.env.LUNGPATH_FAULT_DISK_FULL_FLAG;
    process.env.LUNGPATH_FAULT_DISK_FULL_FLAG = flag;
    try {
      if (mounted) {
        const st = statfsSync(cache);
        writeFileSync(filler, Buffer.alloc(Number(st.bavail) * Number(st.bsize)));
      } else writeFileSync(flag, '');
      const options = { warn: () => {}, onMismatch: 'resize' as const };
      const failed = await cachedFeatures(rt, cache, 'train', net, new Uint8Array([4]), MICRO, images, options).then(() => null, (e: unknown) => e);
      expect(failed).toBeInstanceOf(DiskFullError);
      expect((failed as Error).message).toMatch(new RegExp(`^${cache}/level2-train-[0-9a-f]{24}\\.f32: no space left on the device \\(writing 2\\.00 KiB; [\\d.]+ \\S+ free on its filesystem\\)$`));
      expect(readdirSync(cache).filter((n) => n !== 'filler')).toEqual([]);
      rmSync(filler, { force: true });
      rmSync(flag, { force: true });
      const split = await cachedFeatures(rt, cache, 'train', net, new Uint8Array([4]), MICRO, images, options);
      expect(split.count).toBe(2);
      split.close();
    } finally {
      if (previous === undefined) delete process.env.LUNGPATH_FAULT_DISK_FULL_FLAG;
      else process.env.LUNGPATH_FAULT_DISK_FULL_FLAG = previous;
      if (mounted) execFileSync('umount', [cache]);
      net.destroy();
    }
  });
});

describe('lungpath train', () => {
  let s: MicroSetup;
  beforeAll(async () => {
    s = await microSetup('lungpath-data-change-run-');
  });
  afterAll(() => rmSync(s.root, { recursive: true, force: true }));

  it('stops naming an image replaced between Level-1 epochs, and refuses to resume on it', async () => {
    const rt = await gpu();
    const out = join(s.root, 'run');
    const victim = join(s.data, 'train', 'ADC', readdirSync(join(s.data, 'train', 'ADC'))[0] as string);
    const other = join(s.data, 'train', 'NORM', readdirSync(join(s.data, 'train', 'NORM'))[0] as string);
    const training = trainMicro(s, rt, out, ['--epochs', '8', '--level2-epochs', '1', '--log-interval', '1']);
    const failed = training.then(() => null, (e: unknown) => e);
    // Once the first Level-1 epoch is logged, replace one training image with another.
    const metrics = join(out, 'metrics.jsonl');
    while (!(existsSync(metrics) && readFileSync(metrics, 'utf8').includes('"kind":"epoch"'))) {
      if (await Promise.race([failed.then(() => true), new Promise((r) => setTimeout(() => r(false), 50))])) break;
    }
    // Replaced whole (written beside it, then renamed over it), as a copy tool or a sync does: an
    // in-place rewrite can be read half-written by the pool's decoder mid-epoch, which then stops
    // with an ImageError naming the file instead (seen once in CI).
    const replacement = join(s.root, 'replacement');
    writeFileSync(replacement, readFileSync(other));
    renameSync(replacement, victim);
    const error = await failed;
    expect(error).toBeInstanceOf(DataChangedError);
    expect((error as Error).message).toMatch(/found (level 1 epoch [2-8]|before the feature cache)/);
    expect((error as Error).message).toContain(`${victim}: size changed`);
    expect(existsSync(join(out, 'level2.safetensors')), 'Level 2 never trained on it').toBe(false);

    // The resume refuses too, before anything is read.
    await expect(trainMicro(s, rt, out, ['--epochs', '8', '--level2-epochs', '1', '--resume'])).rejects.toThrow(new RegExp(`found when resuming\\):\\n  ${victim.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: size changed`));
  }, 180_000);
});
