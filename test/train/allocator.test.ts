/**
 * The CLI's allocator (bin/allocator.js, issue 16): the long commands re-execute themselves in
 * place under jemalloc when it is installed — same pid, node flags, arguments, stdout, stderr and
 * exit code — and not for --help, with LUNGPATH_ALLOCATOR=system, or when LD_PRELOAD already names
 * jemalloc. A probe preloaded with NODE_OPTIONS (test/helpers/allocator_probe.cjs) records each
 * start of a process image and the exit. The CLI runs from source here (LUNGPATH_FROM_SOURCE=1, as
 * in the whole suite): bin/lungpath.js decides before it loads either. The spawned `lungpath train`
 * of test/fault/interrupt-resume.test.ts is checked to run on jemalloc under the pid its run lock
 * names, and the fault tests read its stdout line by line (so stdout passes through too).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findJemalloc, reasonToStay } from '../../bin/allocator.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROBE = join(REPO_ROOT, 'test/helpers/allocator_probe.cjs');
const JEMALLOC = findJemalloc();
const work = mkdtempSync(join(tmpdir(), 'lungpath-allocator-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface ProbeLine {
  event: 'start' | 'exit';
  pid: number;
  allocator: 'jemalloc' | 'system';
  execArgv: string[];
  argv: string[];
}

let runs = 0;
/** Runs `node NODE_FLAGS bin/lungpath.js ARGS` with the probe; its pid, exit code, output and the probe's lines. */
function cli(nodeFlags: string[], args: string[], env: Record<string, string> = {}): Promise<{ pid: number; code: number | null; stdout: string; stderr: string; probe: ProbeLine[] }> {
  const probeFile = join(work, `probe-${++runs}.jsonl`);
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...nodeFlags, 'bin/lungpath.js', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: `--require ${PROBE}`, LUNGPATH_ALLOCATOR_PROBE: probeFile, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => {
      const probe = existsSync(probeFile) ? readFileSync(probeFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as ProbeLine) : [];
      resolve({ pid: p.pid as number, code, stdout, stderr, probe });
    });
  });
}

describe('allocator choice', () => {
  it('re-executes only where it applies', () => {
    const lib = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
    if (process.platform === 'linux') expect(reasonToStay({}, lib)).toBeNull();
    expect(reasonToStay({ LUNGPATH_ALLOCATOR: 'jemalloc' }, lib)).toBe(process.platform === 'linux' ? null : 'not Linux');
    expect(reasonToStay({ LUNGPATH_ALLOCATOR: 'system' }, lib)).toMatch(/LUNGPATH_ALLOCATOR=system|not Linux/);
    expect(reasonToStay({ LUNGPATH_ALLOCATOR: 'tcmalloc' }, lib)).toMatch(/neither 'jemalloc' nor 'system'|not Linux/);
    expect(reasonToStay({ LD_PRELOAD: `/opt/x.so:${lib}` }, lib)).toMatch(/already names jemalloc|not Linux/);
    expect(reasonToStay({}, null)).toMatch(/no libjemalloc|not Linux/);
  });
});

describe.skipIf(process.platform !== 'linux' || JEMALLOC === null)(`the CLI under jemalloc (${JEMALLOC ?? 'not installed: scripts/setup.sh installs libjemalloc2'})`, () => {
  it('a long command: one pid, two process images, the second on jemalloc; node flags, arguments, stderr and exit code unchanged', async () => {
    const flags = ['--no-warnings', '--stack-size=900'];
    const args = ['evaluate', '--run', join(work, 'no such run'), '--data', 'x y'];
    const jem = await cli(flags, args);
    expect(jem.probe.map((l) => `${l.event} ${l.allocator}`), jem.stderr).toEqual(['start system', 'start jemalloc', 'exit jemalloc']);
    for (const l of jem.probe) {
      expect(l.pid, 'execve keeps the pid').toBe(jem.pid);
      expect(l.execArgv).toEqual(flags);
      expect(l.argv).toEqual(args);
    }
    const sys = await cli(flags, args, { LUNGPATH_ALLOCATOR: 'system' });
    expect(sys.probe.map((l) => `${l.event} ${l.allocator}`)).toEqual(['start system', 'exit system']);
    expect(jem.code).toBe(1);
    expect(jem.code).toBe(sys.code);
    expect(jem.stderr).toContain('not a lungpath run folder (no config.json)');
    expect(jem.stderr).toBe(sys.stderr);
  });

  it('no re-execution for --help, or with LD_PRELOAD naming jemalloc', async () => {
    const help = await cli([], ['train', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: lungpath train/);
    expect(help.probe.map((l) => `${l.event} ${l.allocator}`)).toEqual(['start system', 'exit system']);
    const preloaded = await cli([], ['evaluate', '--run', join(work, 'none')], { LD_PRELOAD: JEMALLOC as string });
    expect(preloaded.probe.map((l) => `${l.event} ${l.allocator}`)).toEqual(['start jemalloc', 'exit jemalloc']);
  });
});
