/**
 * The numerical guard of a training step: after backward, one pass of kernels/nonfinite.ts flags
 * every parameter gradient holding a NaN or Inf (one u32 per parameter, read back with the loss);
 * a non-finite loss or gradient either stops training (NonFiniteError, naming the step and the
 * parameters by state_dict name) or, with --skip-nonfinite, skips the batch: no Adam step, and the
 * BatchNorm running statistics its forward pass changed are put back. Skips are counted per epoch
 * against a limit.
 */
import { NONFINITE, nonFiniteFlags } from '../kernels/nonfinite.ts';
import type { Runtime } from '../kernels/runtime.ts';
import type { Module } from '../nn/modules.ts';
import { Parameter } from '../nn/tensor.ts';

/** What a batch does on a NaN or Inf: stop training (default) or skip the batch. */
export type NonFinitePolicy = 'stop' | 'skip';

/** A non-finite loss or gradients of one step; `parameters` nearest the loss first. */
export interface NonFiniteReport {
  loss: number;
  parameters: { name: string; kind: 'NaN' | 'Inf' | 'NaN and Inf' }[];
  /** Parameters that had a gradient to check. */
  checked: number;
}

/** One line: what was non-finite, the nearest layers by state_dict name. */
export function describeNonFinite(report: NonFiniteReport): string {
  const parts: string[] = [];
  if (!Number.isFinite(report.loss)) parts.push(`the loss is ${report.loss}`);
  const n = report.parameters.length;
  if (n > 0) {
    const shown = report.parameters.slice(0, 4).map((p) => `${p.name} (${p.kind})`);
    parts.push(`${n} of ${report.checked} parameter gradients hold NaN or Inf, nearest the loss first: ${shown.join(', ')}${n > shown.length ? ', …' : ''}`);
  }
  return parts.join('; ');
}

/** NaN or Inf in a step's loss or gradients; the step's update was not applied. */
export class NonFiniteError extends Error {
  constructor(readonly where: string, readonly report: NonFiniteReport) {
    super(`${where}: ${describeNonFinite(report)}; this step's update was not applied (learning rate too high, or bad input)`);
    this.name = 'NonFiniteError';
  }
}

/** Weights or optimizer state hold NaN or Inf (an update overflowed): not checkpointed. */
export class NonFiniteWeightsError extends Error {
  constructor(what: string, names: readonly string[]) {
    super(`${what} was not written: ${names.slice(0, 4).join(', ')}${names.length > 4 ? `, … (${names.length} tensors)` : ''} hold NaN or Inf (an update overflowed: learning rate too high?)`);
    this.name = 'NonFiniteWeightsError';
  }
}

/** Parameters with a gradient this step, in state_dict order. */
export function withGradients(net: Module): Parameter[] {
  return net.parameters().filter((p) => p.grad !== null);
}

/** Records the flag pass over the parameters' gradients; read the returned buffer (u32 × params.length). */
export function gradientFlags(rt: Runtime, params: readonly Parameter[]): GPUBuffer {
  return nonFiniteFlags(rt, params.map((p) => ({ buffer: (p.grad as NonNullable<Parameter['grad']>).buffer, n: p.size })));
}

/** The report of a step, or null when its loss and every gradient are finite. */
export function nonFiniteReport(loss: number, flags: Uint32Array, params: readonly Parameter[]): NonFiniteReport | null {
  const bad: NonFiniteReport['parameters'] = [];
  for (let k = params.length - 1; k >= 0; k--) {
    const f = flags[k] as number;
    if (f === 0) continue;
    const kind = f === (NONFINITE.NaN | NONFINITE.Inf) ? 'NaN and Inf' : f === NONFINITE.NaN ? 'NaN' : 'Inf';
    bad.push({ name: (params[k] as Parameter).name, kind });
  }
  if (Number.isFinite(loss) && bad.length === 0) return null;
  return { loss, parameters: bad, checked: params.length };
}

/**
 * A copy of a module's non-parameter state (BatchNorm running statistics and counters), taken
 * before a forward pass that may be skipped, and put back if it is.
 */
export class BufferSnapshot {
  private readonly copies: { target: GPUBuffer; copy: GPUBuffer; bytes: number }[] = [];
  private readonly counters: { set: (v: number) => void; value: number }[] = [];

  constructor(private readonly rt: Runtime, net: Module) {
    for (const entry of net.state()) {
      if (entry.tensor && !(entry.tensor instanceof Parameter)) {
        const bytes = entry.tensor.bytes;
        const copy = rt.alloc(bytes, `snapshot ${entry.name}`);
        rt.copy(entry.tensor.buffer, copy, bytes);
        this.copies.push({ target: entry.tensor.buffer, copy, bytes });
      } else if (entry.get && entry.set) {
        this.counters.push({ set: entry.set, value: entry.get() });
      }
    }
  }

  /** Puts the state back as it was when the snapshot was taken. */
  restore(): void {
    for (const { target, copy, bytes } of this.copies) this.rt.copy(copy, target, bytes);
    for (const { set, value } of this.counters) set(value);
  }

  release(): void {
    for (const { copy } of this.copies) this.rt.release(copy);
    this.copies.length = 0;
  }
}

/** Too many skipped batches in one epoch: the run is not recovering. */
export class TooManySkipsError extends Error {
  constructor(where: string, skipped: number, limit: number, last: NonFiniteReport) {
    super(`${where}: ${skipped} batches of this epoch skipped for NaN or Inf, more than the limit of ${limit} (--max-skips); the last: ${describeNonFinite(last)}`);
    this.name = 'TooManySkipsError';
  }
}

/** Skips allowed per epoch: `maxSkips` when given, else 1% of the epoch's batches (at least 1). */
export function skipLimit(batchesPerEpoch: number, maxSkips: number | null): number {
  return maxSkips ?? Math.max(1, Math.floor(batchesPerEpoch / 100));
}
