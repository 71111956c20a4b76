/**
 * The short version of the soak script (test/soak/soak.ts) for CI: the micro config trained in
 * rounds for 2 minutes in one process, sampled every 10 s; the pool, RSS and CPU time per batch
 * must stay within the script's bounds after the first round, no pool buffer, pipeline or process
 * listener may be added after it, every checkpoint must verify and no temporary file may be left.
 * RSS may exceed the warm-up's largest by 20% + 96 MiB (192 before the fix of issue 16; the script's
 * default 64): with the fix, 2-minute runs ended 48, 56, 74 and 81 MiB above the warm-up's largest (the
 * bound allows ~180), against 159 in the CI run that failed before it.
 */
import { describe, expect, it } from 'vitest';
import { formatSoakSummary, runSoak } from './soak.ts';

describe('soak', () => {
  it('2 minutes of training rounds: pool, RSS and CPU time per batch flat; nothing lost', async () => {
    const lines: string[] = [];
    const summary = await runSoak({ minutes: 2, sampleSeconds: 10, preset: 'micro', stepRatioMax: 2, rssSlackMiB: 96, log: (l) => lines.push(l) });
    const report = `${lines.join('\n')}\n${formatSoakSummary(summary)}`;
    console.log(report); // the samples, in the CI log also when it passes
    expect(summary.rounds, report).toBeGreaterThanOrEqual(3);
    expect(summary.checks.filter((c) => !c.ok), report).toEqual([]);
    expect(summary.passed).toBe(true);
  }, 240_000);
});
