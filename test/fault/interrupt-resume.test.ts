/**
 * Interruptions that are not crashes, each followed by --resume, against one uninterrupted micro
 * run (final level1/level2.safetensors compared byte for byte):
 * - signals: SIGINT during Level 1, SIGTERM during Level 2 (each: a checkpoint saved at the next
 *   batch boundary, exit code 3, the message naming it), and a second SIGINT landing in the middle
 *   of that checkpoint's write (the process ends at once, by the signal; the previous checkpoints
 *   intact);
 * - one writer per run folder: while a train runs, a second one is refused naming its pid, and
 *   `evaluate` and `predict` read the folder;
 * - a full disk: the run folder on a small tmpfs the test mounts (or, where mounting is refused,
 *   LUNGPATH_FAULT_DISK_FULL_FLAG, which fails writes at the write layer — the test says which),
 *   filled while Level 1 trains: the run stops naming the file and the free space, every
 *   checkpoint left verifies, and the resume after freeing the space ends identical.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findJemalloc } from '../../bin/allocator.js';
import { FAULT_WRITE_MARKER } from '../../src/nn/files.ts';
import { generateSynthDataset } from '../../src/train/synth.ts';
import { MICRO } from '../helpers/micro_run.ts';
import { REPO_ROOT, TrainChild, type ChildExit } from './child.ts';
import { fileHash, scanRun } from './scan.ts';

const ENV = { LUNGPATH_KERNELS: 'heuristic', FORCE_COLOR: '0' };
let work = '';
let reference = '';

function args(out: string, extra: string[] = []): string[] {
  return ['--data', join(work, 'data'), '--out', out, '--preset', join(work, 'micro.json'), '--seed', '4', '--batch-size', '8',
    '--epochs', '2', '--level2-epochs', '4', '--log-interval', '1', ...extra];
}

async function finish(child: TrainChild): Promise<ChildExit> {
  const exit = await child.exited;
  return exit;
}

function identical(run: string): string[] {
  return ['level1.safetensors', 'level2.safetensors'].filter((f) => !existsSync(join(run, f)) || fileHash(join(run, f)) !== fileHash(join(reference, f)));
}

function output(child: TrainChild): string {
  return [...child.stdout, ...child.stderr].filter((l) => !l.startsWith('Warning: max')).join('\n');
}

/** Runs `lungpath <command> …` to the end; exit code and output. */
function cli(command: string, argv: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['bin/lungpath.js', command, ...argv], { cwd: REPO_ROOT, env: { ...process.env, ...ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('exit', (code) => resolve({ code, out }));
  });
}

const batchLine = (l: string) => / batch \d+: loss /.test(l);

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'lungpath-interrupt-'));
  writeFileSync(join(work, 'micro.json'), JSON.stringify(MICRO));
  await generateSynthDataset({ out: join(work, 'data'), perClass: 8, size: 128, seed: 9, layout: 'split' });
  reference = join(work, 'uninterrupted');
  const whole = new TrainChild(args(reference), ENV);
  const exit = await whole.exited;
  if (exit.code !== 0) throw new Error(`the uninterrupted run failed:\n${output(whole)}`);
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('signals', () => {
  it('SIGINT and SIGTERM save a checkpoint at the next batch and exit 3; a second signal exits at once; the resume is identical', async () => {
    const run = join(work, 'signals');
    // 1. SIGINT in Level 1, after the third batch line.
    const a = new TrainChild(args(run, ['--checkpoint-every', '2']), ENV);
    for (let k = 0; k < 3; k++) expect(await a.waitForLine(batchLine), output(a)).not.toBeNull();
    const t0 = Date.now();
    a.process.kill('SIGINT');
    const exitA = await finish(a);
    const stopMs = Date.now() - t0;
    expect(exitA.code, output(a)).toBe(3);
    const savedA = /saved (\S+\.safetensors)/.exec(output(a))?.[1];
    expect(savedA, output(a)).toMatch(/level1-epoch-0001-batch-\d{6}\.safetensors$/);
    expect(output(a)).toMatch(/stopped by SIGINT after level 1 epoch 1 batch \d+; saved .*--resume/);
    expect(scanRun(run, null).corrupt).toEqual([]);
    expect(existsSync(join(run, 'train.lock')), 'the lock is released').toBe(false);

    // 2. SIGTERM in Level 2, once its first epoch is reported.
    const b = new TrainChild(args(run, ['--checkpoint-every', '2', '--resume']), ENV);
    expect(await b.waitForLine((l) => /^level 2 epoch 1: /.test(l)), output(b)).not.toBeNull();
    b.process.kill('SIGTERM');
    const exitB = await finish(b);
    expect(exitB.code, output(b)).toBe(3);
    expect(output(b)).toMatch(/stopped by SIGTERM after level 2 epoch \d batch \d+; saved \S+level2-epoch-\d{4}-batch-\d{6}\.safetensors/);

    // 3. SIGINT, then a second SIGINT while the stop's checkpoint is being written (each write pauses halfway).
    const c = new TrainChild(args(run, ['--checkpoint-every', '2', '--resume']), { ...ENV, LUNGPATH_FAULT_SLOW_WRITE_MS: '700' });
    expect(await c.waitForLine((l) => l.startsWith(FAULT_WRITE_MARKER) && l.includes('/checkpoints/level2-')), output(c)).not.toBeNull();
    c.process.kill('SIGINT');
    expect(await c.waitForLine((l) => l.includes('SIGINT received')), output(c)).not.toBeNull();
    expect(await c.waitForLine((l) => l.startsWith(FAULT_WRITE_MARKER) && l.includes('/checkpoints/level2-')), output(c)).not.toBeNull();
    const t1 = Date.now();
    c.process.kill('SIGINT');
    const exitC = await finish(c);
    const secondMs = Date.now() - t1;
    expect(exitC.signal, output(c)).toBe('SIGINT');
    const scan = scanRun(run, null);
    expect(scan.corrupt).toEqual([]);
    expect(scan.tempFiles.length, 'the interrupted write left its temporary file').toBeGreaterThanOrEqual(1);

    // 4. The resume finishes; same bytes as the uninterrupted run.
    const d = new TrainChild(args(run, ['--checkpoint-every', '2', '--resume']), ENV);
    const exitD = await finish(d);
    expect(exitD.code, output(d)).toBe(0);
    expect(identical(run)).toEqual([]);
    expect(scanRun(run, null).tempFiles).toEqual([]);
    console.log(`signals: SIGINT → exit ${stopMs} ms; second SIGINT (in a write) → exit ${secondMs} ms`);
  }, 600_000);
});

describe('one writer per run folder', () => {
  it('a second train is refused naming the holder; evaluate and predict read meanwhile', async () => {
    // Continue the finished uninterrupted run for more epochs, so the folder has weights to read.
    const holder = new TrainChild(args(reference, ['--epochs', '40', '--resume']), ENV);
    expect(await holder.waitForLine(batchLine), output(holder)).not.toBeNull();
    const second = await cli('train', args(reference, ['--resume']));
    expect(second.code, second.out).toBe(1);
    expect(second.out).toContain(`in use by another 'lungpath train' (pid ${holder.process.pid}`);
    // The CLI re-executed itself in place under jemalloc where installed (bin/allocator.js): the pid spawned, the lock's pid and the allocator's process are one.
    expect(readFileSync(`/proc/${holder.process.pid}/maps`, 'utf8').includes('libjemalloc'), 'train runs on jemalloc when installed').toBe(findJemalloc() !== null && process.env.LUNGPATH_ALLOCATOR !== 'system');
    const evaluate = await cli('evaluate', ['--run', reference, '--data', join(work, 'data')]);
    expect(evaluate.code, evaluate.out).toBe(0);
    expect(evaluate.out).toMatch(/image-level accuracy/);
    const image = join(work, 'data', 'test', 'ADC', readdirSync(join(work, 'data', 'test', 'ADC'))[0] as string);
    const predict = await cli('predict', ['--run', reference, image]);
    expect(predict.code, predict.out).toBe(0);
    expect(await holder.waitForLine(batchLine), 'training went on').not.toBeNull();
    holder.process.kill('SIGINT');
    expect((await holder.exited).code, output(holder)).toBe(3);
  }, 600_000);
});

describe('disk full', () => {
  it('a checkpoint write that finds the disk full stops naming the file and the free space; the resume after freeing it is identical', async () => {
    const mount = join(work, 'small-disk');
    mkdirSync(mount);
    let mounted = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mount], { stdio: 'ignore' });
      mounted = true;
    } catch {
      // no permission (not root, or a container without CAP_SYS_ADMIN): inject the fault instead
    }
    console.log(`disk full: ${mounted ? 'a 16 MiB tmpfs, filled during Level 1' : 'mount refused: LUNGPATH_FAULT_DISK_FULL_FLAG (write-layer fault)'}`);
    const flag = join(work, 'disk-full.flag');
    const filler = join(mount, 'filler');
    try {
      const run = join(mount, 'run');
      const a = new TrainChild(args(run, ['--checkpoint-every', '2']), { ...ENV, LUNGPATH_FAULT_DISK_FULL_FLAG: flag });
      // Batch 3's line comes after batch 2's checkpoint is written: fill the disk before batch 4's.
      for (let k = 0; k < 3; k++) expect(await a.waitForLine(batchLine), output(a)).not.toBeNull();
      if (mounted) {
        // Leave 32 KiB: less than a checkpoint (~75 KiB), enough for the metrics lines until then.
        fillLeaving(filler, mount, 32 * 1024);
      } else writeFileSync(flag, '');
      const exit = await finish(a);
      const text = output(a);
      expect(exit.code, text).toBe(1);
      expect(text).toMatch(new RegExp(`lungpath train: ${run.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S+: no space left on the device \\(writing [\\d.]+ \\S+; [\\d.]+ \\S+ free on its filesystem\\)`));
      expect(text).toMatch(/free space and run the same command with --resume/);
      const scan = scanRun(run, null);
      expect(scan.corrupt).toEqual([]);
      expect(scan.tempFiles, 'a failed write deletes its temporary file').toEqual([]);
      expect(scan.checkpoints.length, text).toBeGreaterThanOrEqual(1);
      rmSync(filler, { force: true });
      rmSync(flag, { force: true });
      const b = new TrainChild(args(run, ['--checkpoint-every', '2', '--resume']), ENV);
      const exitB = await finish(b);
      expect(exitB.code, output(b)).toBe(0);
      expect(identical(run)).toEqual([]);
    } finally {
      if (mounted) execFileSync('umount', [mount]);
    }
  }, 600_000);
});

/**
 * Writes `path` so that `leave` bytes stay free on `mount`. The training child keeps writing while
 * this runs (a checkpoint's temporary file can appear between statfs and the write: seen once in a
 * fresh-clone CI run as ENOSPC on the filler), so on ENOSPC measure again and retry.
 */
function fillLeaving(path: string, mount: string, leave: number): void {
  for (let attempt = 1; ; attempt++) {
    const s = statfsSync(mount);
    try {
      writeFileSync(path, Buffer.alloc(Math.max(0, Number(s.bavail) * Number(s.bsize) - leave)));
      return;
    } catch (e) {
      rmSync(path, { force: true });
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC' || attempt === 5) throw e;
    }
  }
}
