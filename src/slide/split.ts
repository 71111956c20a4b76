/**
 * The split by slide: every tile of a slide — and of a patient, when the labels CSV names patients —
 * goes to one split, so slides and patients never leak between training and evaluation. Groups are
 * ordered by a seeded hash of their name and dealt out by largest remainder in the given fractions
 * (at least one group in val and in test once there are three); groups already assigned (a resumed
 * or extended dataset) keep their split, and new ones go where the split is furthest below its share.
 */
import { hashText, mixSeed, SEED_STREAM } from '../nn/random.ts';

export type SplitName = 'train' | 'val' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];

/** The original's proportions (1,200 / 300 / 100 of 1,600), as `lungpath synth` uses. */
export const DEFAULT_FRACTIONS: Record<SplitName, number> = { train: 0.75, val: 0.1875, test: 0.0625 };

function hash(text: string, seed: number): number {
  return mixSeed(seed, SEED_STREAM.slideSplit, hashText(text));
}

/** Split of each group (slide or patient) name. `previous`: assignments to keep. */
export function assignSplits(groups: readonly string[], fractions: Record<SplitName, number>, seed: number, previous: ReadonlyMap<string, SplitName> = new Map()): Map<string, SplitName> {
  const unique = [...new Set(groups)];
  const out = new Map<string, SplitName>();
  const fresh = unique.filter((g) => !previous.has(g));
  for (const g of unique) if (previous.has(g)) out.set(g, previous.get(g)!);
  const order = fresh.sort((a, b) => hash(a, seed) - hash(b, seed) || (a < b ? -1 : 1));
  if (out.size === 0) {
    const n = order.length;
    const exact = SPLITS.map((s) => n * fractions[s]);
    const counts = exact.map(Math.floor);
    if (n >= 3) for (const i of [1, 2]) if (fractions[SPLITS[i]!] > 0 && counts[i] === 0) counts[i] = 1;
    let left = n - counts.reduce((a, b) => a + b, 0);
    const byRemainder = [0, 1, 2].sort((a, b) => exact[b]! - counts[b]! - (exact[a]! - counts[a]!) || a - b);
    for (let i = 0; left > 0; i++, left--) counts[byRemainder[i % 3]!]!++;
    while (left < 0) {
      counts[0]!--; // the val/test minimum came out of train
      left++;
    }
    let k = 0;
    SPLITS.forEach((s, i) => {
      for (let c = 0; c < counts[i]!; c++) out.set(order[k++]!, s);
    });
    return out;
  }
  for (const g of order) {
    const total = out.size + 1;
    const have = (s: SplitName) => [...out.values()].filter((v) => v === s).length;
    const split = [...SPLITS].sort((a, b) => have(a) - total * fractions[a] - (have(b) - total * fractions[b]))[0]!;
    out.set(g, split);
  }
  return out;
}
