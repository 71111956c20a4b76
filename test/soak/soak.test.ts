/**
 * The short version of the soak script (test/soak/soak.ts) for CI: the micro config trained in
 * rounds for 2 minutes in one process, sampled every 10 s; the pool, RSS and CPU time per batch
 * must stay within the script's bounds after the first round, no pool buffer, pipeline or process
 * listener may be added after it, every checkpoint must verify and no temporary file may be left.
 * The script runs as a child process, so that it re-executes itself under jemalloc as the CLI does
 * (bin/allocator.js; the vitest worker itself runs on glibc's malloc), and the summary must name
 * jemalloc where it is installed. RSS may exceed the warm-up's largest by RSS_ARGS' bound (see there).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findJemalloc } from '../../bin/allocator.js';
import { formatSoakSummary, type SoakSummary } from './soak.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const JEMALLOC = findJemalloc() !== null && process.env.LUNGPATH_ALLOCATOR !== 'system';
/**
 * RSS bound: under jemalloc the script's default (RSS_BOUNDS in soak.ts; the runs that set it in
 * README "Reliability"). Without it, 20% + 96 MiB over the warm-up's largest: under glibc's malloc
 * 2-minute micro runs ended 48–81 MiB above it (192 before malloc_trim).
 */
const RSS_ARGS = JEMALLOC ? [] : ['--rss-slack-mib', '96'];

describe('soak', () => {
  it('2 minutes of training rounds: pool, RSS and CPU time per batch flat; nothing lost', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lungpath-soak-test-'));
    try {
      const outFile = join(dir, 'soak.json');
      const args = ['--import', 'tsx', 'test/soak/soak.ts', '--minutes', '2', '--sample-seconds', '10', '--preset', 'micro', '--step-ratio-max', '2', ...RSS_ARGS, '--out', outFile];
      const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const p = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (out += d));
        p.on('close', (c) => resolve({ code: c, output: out }));
      });
      console.log(output); // the samples, in the CI log also when it passes
      expect(existsSync(outFile), `the soak wrote no summary (exit ${code}):\n${output}`).toBe(true);
      const summary = JSON.parse(readFileSync(outFile, 'utf8')) as SoakSummary;
      const report = `${output}\n${formatSoakSummary(summary)}`;
      expect(summary.allocator, report).toBe(JEMALLOC ? 'jemalloc' : 'system');
      expect(summary.rounds, report).toBeGreaterThanOrEqual(3);
      expect(summary.checks.filter((c) => !c.ok), report).toEqual([]);
      expect(summary.passed).toBe(true);
      expect(code, report).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
