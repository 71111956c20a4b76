/**
 * The performance targets of the project (lungpath / TF.js on the same adapter, side by side in one
 * run), checked against a benchmark run's rows: 3×3 conv forward ≥ 2×, 3×3 conv backward (dx + dW)
 * ≥ 6×, 2×2 stride-2 conv forward and backward ≥ 2×, the tiny patch network's training step ≥ 3×.
 * A backward ratio is TF.js's dx + dW time over ours (the same FLOPs on both sides).
 */

/** The part of a benchmark row a target needs. */
export interface TimedRow {
  name: string;
  shape: string;
  oursMs: number | null;
  tfjsMs: number | null;
}

export interface TargetResult {
  target: string;
  shape: string;
  goal: number;
  /** ours / TF.js speed; null when a side was not measured. */
  ratio: number | null;
  met: boolean | null;
}

interface Target {
  target: string;
  goal: number;
  /** Row names whose times add up to the operation (same shape). */
  parts: string[];
}

const TARGETS: Target[] = [
  { target: '3x3 conv forward', goal: 2, parts: ['conv 3x3 forward'] },
  { target: '3x3 conv backward (dx + dW)', goal: 6, parts: ['conv 3x3 dx', 'conv 3x3 dW'] },
  { target: '2x2 s2 conv forward', goal: 2, parts: ['conv 2x2s2 forward'] },
  { target: '2x2 s2 conv backward (dx + dW)', goal: 2, parts: ['conv 2x2s2 dx', 'conv 2x2s2 dW'] },
  { target: 'tiny patch net training step', goal: 3, parts: ['train step tiny patch net'] },
];

/** Every target at every shape the run measured it at. */
export function checkTargets(rows: readonly TimedRow[]): TargetResult[] {
  const results: TargetResult[] = [];
  for (const t of TARGETS) {
    const shapes = [...new Set(rows.filter((r) => r.name === t.parts[0]).map((r) => r.shape))];
    for (const shape of shapes) {
      const parts = t.parts.map((name) => rows.find((r) => r.name === name && r.shape === shape));
      const sum = (side: 'oursMs' | 'tfjsMs') => (parts.every((p) => p && p[side] !== null) ? parts.reduce((s, p) => s + (p?.[side] as number), 0) : null);
      const ours = sum('oursMs');
      const tfjs = sum('tfjsMs');
      const ratio = ours !== null && tfjs !== null ? tfjs / ours : null;
      results.push({ target: t.target, shape, goal: t.goal, ratio, met: ratio === null ? null : ratio >= t.goal });
    }
  }
  return results;
}
