/**
 * Which kernel version each op runs, per shape: the table every launcher asks (`rt.kernels`).
 *
 * A launcher with several versions of an op (conv2d forward / data gradient / weight gradient,
 * the three linear GEMMs) calls `rt.kernels.choose(op, shape, heuristic)`: the table's entry for
 * that exact shape when there is one, else the launcher's heuristic (today's per-adapter rule) —
 * deterministic either way. The table starts empty (heuristic everywhere: unit tests, the browser
 * demo); it is filled before training by autotune.ts (measured, cached on disk by src/train), from a
 * file (`--kernels FILE.json`) or from a run's recorded RUN/kernels.json. Filling it never happens
 * inside a training loop: timing needs to await the GPU, launches are synchronous recordings.
 *
 * The shape key is every field of the shape as the launcher receives it (the batch `n` included:
 * per device with --devices; a launcher's own chunking over the binding limit is a function of it).
 * Every choice made is also logged (`used`), so a run can check that its table covered every launch.
 */
import type { Conv2dShape } from './conv2d_shape.ts';
import type { LinearShape } from './linear_shape.ts';

/** The ops that have versions to choose between, and the shape each is keyed by. */
export interface KernelShapes {
  'conv2d.forward': Conv2dShape;
  'conv2d.dx': Conv2dShape;
  'conv2d.dw': Conv2dShape;
  'linear.forward': LinearShape;
  'linear.dx': LinearShape;
  'linear.dw': LinearShape;
}
export type KernelOp = keyof KernelShapes;

const CONV_FIELDS = ['n', 'cIn', 'h', 'w', 'cOut', 'kh', 'kw', 'stride', 'pad'] as const;
const LINEAR_FIELDS = ['n', 'inFeatures', 'outFeatures'] as const;

/** The fields of each op's shape key, in key order. */
export const KERNEL_SHAPE_FIELDS: { readonly [K in KernelOp]: readonly (keyof KernelShapes[K])[] } = {
  'conv2d.forward': CONV_FIELDS,
  'conv2d.dx': CONV_FIELDS,
  'conv2d.dw': CONV_FIELDS,
  'linear.forward': LINEAR_FIELDS,
  'linear.dx': LINEAR_FIELDS,
  'linear.dw': LINEAR_FIELDS,
};

export const KERNEL_OPS = Object.keys(KERNEL_SHAPE_FIELDS) as KernelOp[];

/** One entry of a table: an op, the exact shape, the version's name. */
export interface KernelChoice<K extends KernelOp = KernelOp> {
  op: K;
  shape: KernelShapes[K];
  variant: string;
}

/** A launch's choice as logged: where it came from. */
export interface UsedChoice extends KernelChoice {
  from: 'table' | 'heuristic';
}

/** `conv2d.forward n=16 cIn=3 h=64 w=64 cOut=8 kh=3 kw=3 stride=1 pad=1`: stable, readable. */
export function kernelKey<K extends KernelOp>(op: K, shape: KernelShapes[K]): string {
  const fields = KERNEL_SHAPE_FIELDS[op] as readonly string[];
  return `${op} ${fields.map((f) => `${f}=${(shape as unknown as Record<string, number>)[f]}`).join(' ')}`;
}

/** Only the key fields of `shape`, in key order (what files store). */
export function keyShape<K extends KernelOp>(op: K, shape: KernelShapes[K]): KernelShapes[K] {
  const fields = KERNEL_SHAPE_FIELDS[op] as readonly string[];
  return Object.fromEntries(fields.map((f) => [f, (shape as unknown as Record<string, number>)[f]])) as unknown as KernelShapes[K];
}

export class KernelChoices {
  private table = new Map<string, KernelChoice>();
  private log = new Map<string, UsedChoice>();

  /**
   * The version for one launch: the table's entry for exactly this shape, else `heuristic()`.
   * Entries are checked when they are installed (autotune.ts `installKernelChoices`).
   */
  choose<K extends KernelOp, V extends string>(op: K, shape: KernelShapes[K], heuristic: () => V): V {
    const key = kernelKey(op, shape);
    const entry = this.table.get(key);
    const variant = (entry ? entry.variant : heuristic()) as V;
    if (!this.log.has(key)) this.log.set(key, { op, shape: keyShape(op, shape), variant, from: entry ? 'table' : 'heuristic' } as UsedChoice);
    return variant;
  }

  /** The table's entry for a shape, if any (no heuristic, nothing logged). */
  lookup<K extends KernelOp>(op: K, shape: KernelShapes[K]): string | undefined {
    return this.table.get(kernelKey(op, shape))?.variant;
  }

  /** Replaces the whole table (unchecked: use autotune.ts `installKernelChoices`) and clears the log. */
  replace(choices: readonly KernelChoice[]): void {
    this.table = new Map(choices.map((c) => [kernelKey(c.op, c.shape), { op: c.op, shape: keyShape(c.op, c.shape), variant: c.variant } as KernelChoice]));
    this.log.clear();
  }

  /** The table's entries, in insertion order. */
  entries(): KernelChoice[] {
    return [...this.table.values()];
  }

  /** Every (op, shape) launched since the table was last replaced, with the version it got. */
  used(): UsedChoice[] {
    return [...this.log.values()];
  }

  /** Launches whose shape was not in the table (they ran the heuristic). */
  misses(): UsedChoice[] {
    return this.used().filter((u) => u.from === 'heuristic');
  }
}
