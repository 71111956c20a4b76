/**
 * One `lungpath train` child process for the fault script: spawned from the repository root,
 * stdout and stderr collected line by line, with waits for a line that matches, a SIGKILL, and
 * the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

type Waiter = { test: (line: string) => boolean; resolve: (line: string) => void };

/** A running `node bin/lungpath.js train …`. */
export class TrainChild {
  readonly process: ChildProcess;
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<ChildExit>;
  readonly startedMs = Date.now();
  private waiters: Waiter[] = [];
  private done = false;

  constructor(args: readonly string[], env: Record<string, string>) {
    this.process = spawn(process.execPath, ['bin/lungpath.js', 'train', ...args], { cwd: REPO_ROOT, env: { ...process.env, LUNGPATH_FROM_SOURCE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const [stream, lines] of [[this.process.stdout, this.stdout], [this.process.stderr, this.stderr]] as const) {
      createInterface({ input: stream! }).on('line', (line) => {
        lines.push(line);
        for (const w of this.waiters.filter((x) => x.test(line))) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      });
    }
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code, signal) => {
        this.done = true;
        // Let readline deliver the last lines before anyone reads them.
        setTimeout(() => resolve({ code, signal }), 20);
      });
    });
  }

  /** The next stdout or stderr line matching `test`, or null if the child exits first. */
  async waitForLine(test: (line: string) => boolean): Promise<string | null> {
    if (this.done) return null;
    const line = new Promise<string>((resolve) => this.waiters.push({ test, resolve }));
    return Promise.race([line, this.exited.then(() => null)]);
  }

  /** The last line printed on stdout (what the run was doing), or '(nothing yet)'. */
  lastActivity(): string {
    return this.stdout.at(-1) ?? '(nothing printed yet)';
  }

  /** SIGKILL now; resolves when the process is gone. False if it had already exited. */
  async kill(): Promise<boolean> {
    if (this.done) return false;
    this.process.kill('SIGKILL');
    const exit = await this.exited;
    return exit.signal === 'SIGKILL';
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
