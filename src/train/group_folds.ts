/**
 * Cross-validation folds by group: every image of a group (a source tile, slide or patient) lands in
 * the same split of a fold, so no tissue is both trained on and scored. Each class's groups are
 * shuffled from the seed and dealt round-robin into `folds` folds (stratified: a class's groups
 * per fold differ by at most one, and the deal continues across classes, so fold sizes do too);
 * fold k's test split is the groups dealt to k, its validation split a `valFraction` of each
 * class's other groups (at least one), its training split the rest. Every group is tested in
 * exactly one fold.
 *
 * `heldOut: 'first'` scores one image per held-out group (the first by code unit): the LC25000
 * groups are rotations and flips of one source tile, which would count one tissue several times;
 * `'all'` keeps every image (patients or slides with distinct tiles).
 */
import { hashText, mixSeed, Rng, SEED_STREAM } from '../nn/random.ts';

export interface GroupedImage {
  /** The image's path or any key unique to it. */
  key: string;
  group: string;
  label: number;
}

export interface GroupFold {
  train: GroupedImage[];
  val: GroupedImage[];
  test: GroupedImage[];
}

export interface GroupFoldOptions {
  folds: number;
  /** Share of each class's non-test groups held out for validation (at least one group). */
  valFraction: number;
  seed: number;
  heldOut: 'first' | 'all';
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Folds of `images` by group; throws naming the group when one group mixes classes, or the class with fewer groups than folds. */
export function groupKFold(images: readonly GroupedImage[], o: GroupFoldOptions): GroupFold[] {
  if (!Number.isInteger(o.folds) || o.folds < 2) throw new Error(`folds must be an integer ≥ 2 (got ${o.folds})`);
  if (!(o.valFraction > 0 && o.valFraction < 1)) throw new Error(`valFraction must be in (0, 1) (got ${o.valFraction})`);
  const members = new Map<string, GroupedImage[]>();
  for (const image of images) {
    const list = members.get(image.group) ?? [];
    if (list.length && list[0]!.label !== image.label) throw new Error(`group ${image.group} mixes classes: ${list[0]!.key} (class ${list[0]!.label}) and ${image.key} (class ${image.label})`);
    list.push(image);
    members.set(image.group, list);
  }
  for (const list of members.values()) list.sort((a, b) => byCodeUnit(a.key, b.key));
  const labels = [...new Set(images.map((i) => i.label))].sort((a, b) => a - b);
  const groupsOf = new Map(labels.map((label) => [label, [...members.keys()].filter((g) => members.get(g)![0]!.label === label).sort(byCodeUnit)]));

  const foldOf = new Map<string, number>();
  let next = 0;
  for (const label of labels) {
    const groups = new Rng(mixSeed(o.seed, SEED_STREAM.groupFolds, label)).shuffle([...groupsOf.get(label)!]);
    if (groups.length < o.folds) throw new Error(`class ${label} has ${groups.length} groups, fewer than ${o.folds} folds: every fold needs each class in its test split`);
    for (const g of groups) foldOf.set(g, next++ % o.folds);
  }

  const heldOut = (g: string) => (o.heldOut === 'first' ? [members.get(g)![0]!] : members.get(g)!);
  return Array.from({ length: o.folds }, (_, k) => {
    const fold: GroupFold = { train: [], val: [], test: [] };
    for (const label of labels) {
      const groups = groupsOf.get(label)!;
      for (const g of groups) if (foldOf.get(g) === k) fold.test.push(...heldOut(g));
      const rest = new Rng(mixSeed(o.seed, SEED_STREAM.groupFolds, hashText(`val ${k}`), label)).shuffle(groups.filter((g) => foldOf.get(g) !== k));
      const nVal = Math.max(1, Math.round(rest.length * o.valFraction));
      rest.forEach((g, i) => (i < nVal ? fold.val.push(...heldOut(g)) : fold.train.push(...members.get(g)!)));
    }
    return fold;
  });
}
