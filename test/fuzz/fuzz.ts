/**
 * Shared pieces of the fuzz tests (test/fuzz/*.fuzz.test.ts): run counts and seeds, time budgets,
 * byte edits of valid files, and a tally of how each property's cases ended.
 *
 * CI runs every property a fixed number of times from a fixed seed. For a long run by hand:
 *
 *   LUNGPATH_FUZZ_RUNS=20 npx vitest run test/fuzz     # every property 20× its CI runs
 *   LUNGPATH_FUZZ_SEED=7 LUNGPATH_FUZZ_RUNS=20 …       # other inputs than CI's (seeds shifted by 7)
 *
 * With either variable set, each property prints its tally (cases, how many were accepted and
 * refused, the slowest case).
 */
import fc from 'fast-check';

function envInteger(name: string, fallback: number, min: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got '${text}'`);
  return value;
}

/** How many times the CI run count each property runs (LUNGPATH_FUZZ_RUNS, default 1). */
export const FUZZ_FACTOR = envInteger('LUNGPATH_FUZZ_RUNS', 1, 1);
const SEED_SHIFT = envInteger('LUNGPATH_FUZZ_SEED', 0, 0);
const VERBOSE = process.env.LUNGPATH_FUZZ_RUNS !== undefined || process.env.LUNGPATH_FUZZ_SEED !== undefined;

/** fast-check parameters: the CI seed and run count, scaled by the environment. */
export function fuzzParameters(seed: number, ciRuns: number): { seed: number; numRuns: number } {
  return { seed: seed + SEED_SHIFT, numRuns: ciRuns * FUZZ_FACTOR };
}

/** A vitest timeout for a test whose CI run takes about `ciMs`, scaled with the runs. */
export function fuzzTimeout(ciMs: number): number {
  return ciMs * FUZZ_FACTOR;
}

/** Counts how a property's cases ended; `report` prints it in a long run. */
export class Tally {
  cases = 0;
  accepted = 0;
  refused = 0;
  slowestMs = 0;
  private readonly started = performance.now();

  constructor(readonly name: string) {}

  add(accepted: boolean, ms: number): void {
    this.cases++;
    if (accepted) this.accepted++;
    else this.refused++;
    this.slowestMs = Math.max(this.slowestMs, ms);
  }

  report(): void {
    if (!VERBOSE) return;
    const s = ((performance.now() - this.started) / 1000).toFixed(1);
    console.log(`fuzz ${this.name}: ${this.cases} cases (${this.accepted} accepted, ${this.refused} refused) in ${s} s, slowest ${this.slowestMs.toFixed(1)} ms`);
  }
}

/** Prints a line in a long run (either variable set), for the README's table. */
export function note(message: string): void {
  if (VERBOSE) console.log(`fuzz ${message}`);
}

/** Resolves as `run` does, or rejects once it has run `ms` milliseconds (a hang). */
export async function withinMs<T>(ms: number, what: string, run: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still running after ${ms} ms (a hang)`)), ms);
  });
  try {
    return await Promise.race([run(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One edit of a file: replace a byte, flip some of its bits, insert a byte, or delete one. */
export interface ByteEdit {
  at: number;
  op: 'set' | 'xor' | 'insert' | 'delete';
  value: number;
}

/**
 * 1..maxEdits edits; half of them land in the first `focusBytes` bytes (the header, where a
 * parser makes its decisions), the rest anywhere.
 */
export function byteEdits(focusBytes: number, maxEdits = 8): fc.Arbitrary<ByteEdit[]> {
  const edit = fc.record({
    at: fc.oneof(fc.nat(Math.max(0, focusBytes - 1)), fc.nat()),
    op: fc.constantFrom<ByteEdit['op']>('set', 'xor', 'xor', 'insert', 'delete'),
    value: fc.integer({ min: 1, max: 255 }),
  });
  return fc.array(edit, { minLength: 1, maxLength: maxEdits });
}

/** `bytes` with the edits applied in order (positions wrap around the current length). */
export function applyEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const { at, op, value } of edits) {
    const i = out.length === 0 ? 0 : at % out.length;
    if (op === 'insert') {
      const next = new Uint8Array(out.length + 1);
      next.set(out.subarray(0, i));
      next[i] = value;
      next.set(out.subarray(i), i + 1);
      out = next;
    } else if (out.length === 0) {
      continue;
    } else if (op === 'delete') {
      const next = new Uint8Array(out.length - 1);
      next.set(out.subarray(0, i));
      next.set(out.subarray(i + 1), i);
      out = next;
    } else {
      out[i] = op === 'set' ? value : (out[i] as number) ^ value;
    }
  }
  return out;
}
