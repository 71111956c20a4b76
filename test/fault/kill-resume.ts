/**
 * Fault script: kill `lungpath train` with SIGKILL at random (seeded) moments, resume it with
 * --resume each time, and check that nothing is lost.
 *
 *   npx tsx test/fault/kill-resume.ts [--kills N] [--seed S] [--keep]
 *
 * It trains a micro config (custom JSON preset, 128² synthetic images, one epoch takes about a
 * second here) once uninterrupted, then again in rounds of kill → scan → resume until it has
 * killed N times (default 12). Kills come three ways: after a random number of batch log lines,
 * after a random time (startup, validation, feature caching and evaluation included), or in the
 * middle of a checkpoint write — LUNGPATH_FAULT_SLOW_WRITE_MS makes every atomic write pause
 * halfway after printing a marker (src/nn/files.ts), and the kill lands in the pause. After every
 * kill the run folder is scanned: every checkpoint must verify, the temporary file of an
 * interrupted write must be there and the next start must delete it. Twice (once in a short run)
 * the newest checkpoint is corrupted on purpose; the resume must warn and fall back to the
 * previous one. Each round's final level1/level2.safetensors must equal the uninterrupted run's,
 * byte for byte. Prints a table of kills and a summary; exits 1 on any failure.
 * test/fault/kill-resume.test.ts runs a short version in CI.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Rng } from '../../src/nn/random.ts';
import { FAULT_WRITE_MARKER } from '../../src/nn/files.ts';
import { generateSynthDataset } from '../../src/train/synth.ts';
import { MICRO } from '../helpers/micro_run.ts';
import { sleep, TrainChild } from './child.ts';
import { corruptFile, fileHash, newestCheckpoint, scanRun } from './scan.ts';

export interface KillResumeOptions {
  kills: number;
  seed: number;
  level1Epochs: number;
  level2Epochs: number;
  /** Kills per round before a round is let finish. */
  killsPerRound: number;
  /** Kill numbers (1-based) after which the newest checkpoint is corrupted on purpose. */
  corruptAfter: number[];
  /** Kill numbers that are forced to land in a checkpoint write. */
  writeKills: number[];
  keep: boolean;
  log: (line: string) => void;
}

export interface KillRecord {
  n: number;
  round: number;
  trigger: string;
  /** What the run was doing (its last log line, or the file being written). */
  moment: string;
  duringWrite: boolean;
  checkpoints: number;
  tempFiles: number;
  corrupt: string[];
  corruptedOnPurpose: string | null;
}

export interface KillResumeSummary {
  kills: KillRecord[];
  killsDuringWrite: number;
  starts: number;
  resumes: number;
  corruptFound: string[];
  corruptedOnPurpose: number;
  fallbacksSeen: number;
  tempFilesLeft: number;
  tempFilesCleaned: number;
  rounds: { identical: boolean; differing: string[] }[];
  failures: string[];
  passed: boolean;
}

/** How long the fault hook pauses in the middle of a write; the kill lands 20–420 ms into it. */
const PAUSE_MS = 1200;

/** The `lungpath train` arguments of the micro run in `out`. */
function trainArgs(work: string, out: string, o: KillResumeOptions, checkpointEvery: number): string[] {
  return ['--data', join(work, 'data'), '--out', out, '--preset', join(work, 'micro.json'), '--seed', String(o.seed), '--batch-size', '8',
    '--epochs', String(o.level1Epochs), '--level2-epochs', String(o.level2Epochs), '--log-interval', '1', '--checkpoint-every', String(checkpointEvery)];
}

type Kind = 'none' | 'write' | 'batch' | 'time' | 'level2';

const ENV = { LUNGPATH_KERNELS: 'heuristic', FORCE_COLOR: '0' };

/** Runs the fault script; see the file header. */
export async function runKillResume(o: KillResumeOptions): Promise<KillResumeSummary> {
  const work = mkdtempSync(join(tmpdir(), 'lungpath-kill-resume-'));
  const rng = new Rng(o.seed >>> 0);
  let child: TrainChild | null = null;
  let corruptPending = false;
  const s: KillResumeSummary = { kills: [], killsDuringWrite: 0, starts: 0, resumes: 0, corruptFound: [], corruptedOnPurpose: 0, fallbacksSeen: 0, tempFilesLeft: 0, tempFilesCleaned: 0, rounds: [], failures: [], passed: false };
  try {
    writeFileSync(join(work, 'micro.json'), JSON.stringify(MICRO));
    await generateSynthDataset({ out: join(work, 'data'), perClass: 8, size: 128, seed: o.seed + 3, layout: 'split' });
    const reference = join(work, 'uninterrupted');
    const t0 = Date.now();
    const whole = new TrainChild(trainArgs(work, reference, o, 0), ENV);
    const exit = await whole.exited;
    const referenceMs = Date.now() - t0;
    if (exit.code !== 0) throw new Error(`the uninterrupted run failed (${exit.code ?? exit.signal}):\n${whole.stderr.join('\n')}`);
    o.log(`uninterrupted run: ${(referenceMs / 1000).toFixed(1)} s`);

    for (let round = 1; s.kills.length < o.kills; round++) {
      const run = join(work, `round-${round}`);
      let deliberate: { path: string; hash: string; warned: boolean } | null = null;
      let staleTemps: string[] = [];
      let killsThisRound = 0;
      for (let start = 0; ; start++) {
        s.starts++;
        if (start > 0) s.resumes++;
        const n = s.kills.length + 1;
        const wantKill = killsThisRound < o.killsPerRound && s.kills.length < o.kills;
        // While Level 1 trains: kills by batch line, time, or in a checkpoint write; then Level 2's.
        const inLevel2 = existsSync(join(run, 'checkpoints', `level1-epoch-${String(o.level1Epochs).padStart(4, '0')}.safetensors`));
        const kinds = inLevel2 ? (['write', 'level2', 'level2', 'time'] as const) : (['write', 'batch', 'batch', 'time', 'time'] as const);
        const kind: Kind = !wantKill ? 'none' : o.writeKills.includes(n) ? 'write' : kinds[rng.below(kinds.length)]!;
        const current = new TrainChild([...trainArgs(work, run, o, 2), '--resume'], kind === 'write' ? { ...ENV, LUNGPATH_FAULT_SLOW_WRITE_MS: String(PAUSE_MS) } : ENV);
        child = current;
        if (deliberate && !deliberate.warned) {
          deliberate.warned = true;
          const line = await current.waitForLine((l) => l.includes(deliberate!.path) && l.includes('falling back to the previous checkpoint'));
          if (line) s.fallbacksSeen++;
          else s.failures.push(`round ${round}: the resume after corrupting ${deliberate.path} did not warn and fall back`);
        }
        const record = await killPlan(current, kind, inLevel2 ? '/checkpoints/level2-' : '/checkpoints/', rng, referenceMs);
        const ended = await current.exited;
        if (!record) {
          if (ended.code !== 0) {
            s.failures.push(`round ${round}: lungpath train exited with ${ended.code ?? ended.signal}:\n${current.stderr.slice(-8).join('\n')}`);
            break;
          }
          const left = scanRun(run, null);
          s.tempFilesCleaned += staleTemps.filter((t) => !left.tempFiles.includes(t)).length;
          if (left.tempFiles.length) s.failures.push(`round ${round}: temporary files left after the run finished: ${left.tempFiles.join(', ')}`);
          if (left.corrupt.length) s.failures.push(`round ${round}: corrupt files after the run finished: ${left.corrupt.join('; ')}`);
          const differing = ['level1.safetensors', 'level2.safetensors'].filter((f) => !existsSync(join(run, f)) || fileHash(join(run, f)) !== fileHash(join(reference, f)));
          s.rounds.push({ identical: differing.length === 0, differing });
          if (differing.length) s.failures.push(`round ${round}: ${differing.join(', ')} differ from the uninterrupted run`);
          o.log(`round ${round}: finished after ${killsThisRound} kills; final weights ${differing.length ? `DIFFER (${differing.join(', ')})` : 'identical to the uninterrupted run'}`);
          break;
        }
        killsThisRound++;
        const scan = scanRun(run, deliberate);
        s.tempFilesCleaned += staleTemps.filter((t) => !scan.tempFiles.includes(t)).length;
        s.tempFilesLeft += scan.tempFiles.filter((t) => !staleTemps.includes(t)).length;
        staleTemps = scan.tempFiles;
        if (record.duringWrite && !scan.tempFiles.some((t) => t.endsWith(`.${current.process.pid}.tmp`))) record.duringWrite = false;
        if (record.duringWrite) s.killsDuringWrite++;
        s.corruptFound.push(...scan.corrupt);
        const full: KillRecord = { n, round, ...record, checkpoints: scan.checkpoints.length, tempFiles: scan.tempFiles.length, corrupt: scan.corrupt, corruptedOnPurpose: null };
        deliberate = deliberate && existsSync(deliberate.path) && fileHash(deliberate.path) === deliberate.hash ? deliberate : null;
        corruptPending ||= o.corruptAfter.includes(n);
        if (corruptPending && !deliberate) {
          const target = newestCheckpoint(run);
          if (target) {
            corruptPending = false;
            const how = s.corruptedOnPurpose % 2 === 0 ? 'flip' : 'truncate';
            deliberate = { path: target, hash: corruptFile(target, how), warned: false };
            full.corruptedOnPurpose = `${target.slice(run.length + 1)} (${how === 'flip' ? 'one byte flipped' : 'cut short'})`;
            s.corruptedOnPurpose++;
          }
        }
        s.kills.push(full);
        o.log(formatKill(full));
      }
    }
    if (s.kills.length < o.kills) s.failures.push(`only ${s.kills.length} kills happened`);
    if (s.corruptFound.length) s.failures.push(`corrupt checkpoints found after kills: ${s.corruptFound.join('; ')}`);
    s.passed = s.failures.length === 0;
    return s;
  } finally {
    await child?.kill();
    if (o.keep) o.log(`work folder kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

/** Waits for the kill moment of `kind` and kills; null when the child finished first (or kind 'none'). */
async function killPlan(child: TrainChild, kind: Kind, writing: string, rng: Rng, referenceMs: number): Promise<Omit<KillRecord, 'n' | 'round' | 'checkpoints' | 'tempFiles' | 'corrupt' | 'corruptedOnPurpose'> | null> {
  if (kind === 'none') return null;
  if (kind === 'write') {
    const skip = rng.below(3);
    let line: string | null = null;
    for (let k = 0; k <= skip; k++) {
      line = await child.waitForLine((l) => l.startsWith(FAULT_WRITE_MARKER) && l.includes(writing));
      if (!line) return null;
    }
    await sleep(20 + rng.below(400));
    const path = (line as string).slice(FAULT_WRITE_MARKER.length);
    return (await child.kill()) ? { trigger: `checkpoint write ${skip + 1}`, moment: `writing ${path.split('/').pop()}`, duringWrite: true } : null;
  }
  if (kind === 'level2') {
    const epochs = 1 + rng.below(2);
    for (let k = 0; k < epochs; k++) if (!(await child.waitForLine((l) => /^level 2 epoch \d+: /.test(l)))) return null;
    await sleep(rng.below(150));
    const moment = `after: ${child.lastActivity()}`;
    return (await child.kill()) ? { trigger: `level 2 epoch line ${epochs}`, moment, duringWrite: false } : null;
  }
  if (kind === 'batch') {
    const lines = 1 + rng.below(12);
    // Batch lines of Level 1; once it is done, Level 2's epoch lines count too.
    for (let k = 0; k < lines; k++) if (!(await child.waitForLine((l) => / batch \d+: loss /.test(l) || /^level 2 epoch \d+: /.test(l)))) return null;
    await sleep(rng.below(60));
    const moment = child.lastActivity();
    return (await child.kill()) ? { trigger: `batch line ${lines}`, moment, duringWrite: false } : null;
  }
  const ms = Math.round(rng.next() * 0.8 * referenceMs);
  const finished = await Promise.race([child.exited.then(() => true), sleep(ms).then(() => false)]);
  if (finished) return null;
  const moment = child.lastActivity();
  return (await child.kill()) ? { trigger: `after ${(ms / 1000).toFixed(2)} s`, moment, duringWrite: false } : null;
}

function formatKill(k: KillRecord): string {
  const extra = [k.corrupt.length ? `CORRUPT: ${k.corrupt.join('; ')}` : '', k.corruptedOnPurpose ? `then corrupted ${k.corruptedOnPurpose} on purpose` : ''].filter(Boolean).join('; ');
  return `${String(k.n).padStart(3)} ${String(k.round).padStart(5)}  ${k.trigger.padEnd(20)} ${k.moment.slice(0, 58).padEnd(58)} ${String(k.checkpoints).padStart(5)} ${String(k.tempFiles).padStart(5)}  ${extra}`;
}

/** The summary table printed at the end. */
export function formatSummary(s: KillResumeSummary): string {
  const rows: [string, string][] = [
    ['kills (SIGKILL)', String(s.kills.length)],
    ['  during a checkpoint write', `${s.killsDuringWrite} (the interrupted write's temporary file found each time)`],
    ['starts / resumes', `${s.starts} / ${s.resumes}`],
    ['corrupt checkpoints found', String(s.corruptFound.length)],
    ['corrupted on purpose', `${s.corruptedOnPurpose} (resume warned and fell back: ${s.fallbacksSeen})`],
    ['temporary files left by kills', `${s.tempFilesLeft} (deleted by the next start: ${s.tempFilesCleaned})`],
    ['final weights vs uninterrupted', s.rounds.map((r, i) => `round ${i + 1} ${r.identical ? 'identical' : `DIFFER (${r.differing.join(', ')})`}`).join(', ')],
    ['result', s.passed ? 'PASS' : `FAIL\n${s.failures.map((f) => `  - ${f}`).join('\n')}`],
  ];
  return rows.map(([k, v]) => `${k.padEnd(32)} ${v}`).join('\n');
}

function flag(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} needs a non-negative integer`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const kills = flag(argv, 'kills', 12);
  const options: KillResumeOptions = {
    kills,
    seed: flag(argv, 'seed', 1),
    level1Epochs: 3,
    level2Epochs: 6,
    killsPerRound: 7,
    corruptAfter: [2, Math.max(3, Math.ceil(kills / 2) + 1)],
    writeKills: [1, 5, 9].filter((k) => k <= kills),
    keep: argv.includes('--keep'),
    log: (line) => console.log(line),
  };
  console.log(`kill-resume: ${kills} kills, seed ${options.seed}`);
  console.log(`  # round  trigger              moment (last log line)                                     ckpts temps`);
  const summary = await runKillResume(options);
  console.log(`\n${formatSummary(summary)}`);
  return summary.passed ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
