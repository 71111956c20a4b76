/**
 * The short version of the fault script (test/fault/kill-resume.ts) for CI: three SIGKILLs of
 * `lungpath train` — the first in the middle of a checkpoint write — each followed by --resume,
 * the newest checkpoint corrupted on purpose once; no checkpoint may ever be found corrupt, the
 * resume must fall back past the damaged one, and the final weights must equal an uninterrupted
 * run's byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { formatSummary, runKillResume } from './kill-resume.ts';

describe('kill and resume', () => {
  it('three kills (one during a checkpoint write), one corrupted checkpoint: nothing lost', async () => {
    const lines: string[] = [];
    const summary = await runKillResume({ kills: 3, seed: 7, level1Epochs: 2, level2Epochs: 2, killsPerRound: 3, corruptAfter: [2], writeKills: [1], keep: false, log: (l) => lines.push(l) });
    const report = `${lines.join('\n')}\n${formatSummary(summary)}`;
    expect(summary.failures, report).toEqual([]);
    expect(summary.kills.length, report).toBe(3);
    expect(summary.killsDuringWrite, report).toBeGreaterThanOrEqual(1);
    expect(summary.tempFilesCleaned, report).toBe(summary.tempFilesLeft);
    expect(summary.corruptFound, report).toEqual([]);
    expect([summary.corruptedOnPurpose, summary.fallbacksSeen], report).toEqual([1, 1]);
    expect(summary.rounds.length, report).toBeGreaterThanOrEqual(1);
    expect(summary.rounds.every((r) => r.identical), report).toBe(true);
    expect(summary.passed).toBe(true);
  }, 240_000);
});
