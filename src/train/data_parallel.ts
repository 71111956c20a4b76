/**
 * Data parallelism over several GPU devices (separate adapters where the machine has several, else
 * several devices on one adapter): one replica of the network and of Adam per device, each batch
 * split into contiguous shards, and every replica runs the one training step of step.ts on its
 * shard, its loss scaled by its share (n_k / n) so the shards' gradients add up to the gradient of
 * the whole batch's mean loss. Its GradientReduce hook sums the gradients on the CPU in device
 * order (deterministic, no atomics) and writes them back to every replica, so every replica takes
 * the same Adam step and the same decision on NaN/Inf. BatchNorm running statistics are copied
 * from replica 0 to the others (as torch.nn.DataParallel keeps replica 0's buffers) — so the
 * replicas stay identical.
 */
import type { Runtime } from '../kernels/runtime.ts';
import type { StateEntry } from '../nn/modules.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import { Adam } from '../nn/optim.ts';
import { Parameter, Tensor } from '../nn/tensor.ts';
import type { NonFinitePolicy } from './guard.ts';
import { trainStep, type GradientReduce, type StepResult } from './step.ts';

/** Row ranges [start, end) of `n` rows split over `parts` as evenly as possible. */
export function shardRows(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < parts; k++) out.push([Math.floor((k * n) / parts), Math.floor(((k + 1) * n) / parts)]);
  return out.filter(([a, b]) => b > a);
}

/**
 * Where the replicas of one step meet: each `arrive`s with its value; when all have, `combine`
 * runs once on the values in device order (not arrival order: deterministic) and every arrival
 * resolves to its result. `fail` rejects the waiting and later arrivals (a replica that threw).
 */
class Rendezvous<T, R> {
  private readonly values: T[] = [];
  private arrived = 0;
  private settle!: { resolve: (r: Promise<R>) => void; reject: (e: unknown) => void };
  private readonly result = new Promise<R>((resolve, reject) => (this.settle = { resolve, reject }));

  constructor(
    private readonly parts: number,
    private readonly combine: (values: T[]) => R | Promise<R>,
  ) {
    this.result.catch(() => {}); // a failure is reported by the replica that threw
  }

  arrive(k: number, value: T): Promise<R> {
    this.values[k] = value;
    if (++this.arrived === this.parts) this.settle.resolve(Promise.resolve().then(() => this.combine(this.values)));
    return this.result;
  }

  fail(error: unknown): void {
    this.settle.reject(error);
  }
}

/** A network trained on one or more devices; replica 0 is the one saved and evaluated. */
export class Replicated {
  readonly adams: Adam[];

  constructor(
    readonly runtimes: readonly Runtime[],
    readonly replicas: readonly TwoPartNetwork[],
    lr: number,
    weightDecay = 0,
    /** Label smoothing ε of the training loss (torch's cross-entropy `label_smoothing`; default 0). */
    readonly labelSmoothing = 0,
  ) {
    this.adams = replicas.map((net) => new Adam(net.parameters(), { lr, weightDecay }));
  }

  get net(): TwoPartNetwork {
    return this.replicas[0] as TwoPartNetwork;
  }

  get adam(): Adam {
    return this.adams[0] as Adam;
  }

  set lr(value: number) {
    this.adams.forEach((a) => (a.lr = value));
  }

  train(): void {
    this.replicas.forEach((r) => r.train());
  }

  /** Copies replica 0's weights, buffers and Adam state to the others (after loading a checkpoint). */
  async broadcast(): Promise<void> {
    await this.copyState(() => true);
    const moments = this.adam.stateTensors();
    for (let k = 1; k < this.replicas.length; k++) {
      const adam = this.adams[k] as Adam;
      const values = new Map<string, Float32Array>();
      for (const m of moments) values.set(m.label, await m.read());
      adam.loadState(values, this.adam.step);
      adam.lr = this.adam.lr;
    }
  }

  /**
   * One optimisation step on a batch held on device 0: `trainStep` (step.ts). With several devices
   * the batch is read back once, uploaded to each device in shards, and every replica runs
   * `trainStep` on its shard with a GradientReduce that joins them.
   */
  async step(x: Tensor, labels: GPUBuffer, labelsCpu: Uint32Array, seed: number, where: string, onNonFinite: NonFinitePolicy = 'stop'): Promise<StepResult> {
    if (this.replicas.length === 1) return trainStep(this.net, this.adam, x, labels, labelsCpu, seed, where, { onNonFinite, labelSmoothing: this.labelSmoothing });
    const n = labelsCpu.length;
    const rowSize = x.size / n;
    const all = await x.read();
    const shards = shardRows(n, this.replicas.length);
    const gradients = new Rendezvous<null, void>(shards.length, () => this.allReduceGradients(shards.length));
    // The whole batch's mean loss: the shards' means weighted by their rows, summed in device order.
    const shardRowCounts = shards.map(([start, end]) => end - start);
    const losses = new Rendezvous<number, number>(shards.length, (values) => values.reduce((sum, v, k) => sum + (v * (shardRowCounts[k] as number)) / n, 0));
    const results = await Promise.all(
      shards.map(async ([start, end], k) => {
        const rt = this.runtimes[k] as Runtime;
        const xs = Tensor.fromArray(rt, all.slice(start * rowSize, end * rowSize), [end - start, ...x.shape.slice(1)], 'shard');
        const ts = rt.upload(labelsCpu.slice(start, end), 'shard labels');
        const reduce: GradientReduce = { share: (end - start) / n, gradients: () => gradients.arrive(k, null), loss: (value) => losses.arrive(k, value) };
        try {
          return await trainStep(this.replicas[k] as TwoPartNetwork, this.adams[k] as Adam, xs, ts, labelsCpu.slice(start, end), seed, where, { onNonFinite, reduce, labelSmoothing: this.labelSmoothing });
        } catch (e) {
          [gradients, losses].forEach((r) => r.fail(e)); // the other replicas stop waiting for this one
          throw e;
        } finally {
          xs.release();
          rt.release(ts);
        }
      }),
    );
    const first = results[0] as StepResult;
    // Replicas without a shard (a batch of fewer rows than devices) received the gradients: same step.
    if (!first.skipped) this.adams.slice(shards.length).forEach((a) => a.update());
    await this.copyState((e) => !(e.tensor instanceof Parameter)); // BatchNorm running statistics
    return { loss: first.loss, correct: results.reduce((c, r) => c + r.correct, 0), count: n, ...(first.skipped ? { skipped: first.skipped } : {}) };
  }

  /** Sums every parameter's gradient over the first `parts` replicas (device order) and writes it to every replica. */
  private async allReduceGradients(parts: number): Promise<void> {
    const params = this.replicas.map((r) => r.parameters());
    const first = params[0] as Parameter[];
    const grads = await Promise.all(
      params.slice(0, parts).map(async (ps, k) => {
        const held = ps.filter((p) => p.grad);
        const bytes = await (this.runtimes[k] as Runtime).readMany(held.map((p) => ({ buffer: (p.grad as Tensor).buffer, bytes: p.size * 4 })));
        return new Map(held.map((p, i) => [p, new Float32Array(bytes[i] as ArrayBuffer)]));
      }),
    );
    for (let i = 0; i < first.length; i++) {
      const sum = new Float32Array(first[i]?.size ?? 0);
      grads.forEach((g, k) => {
        const values = g.get((params[k] as Parameter[])[i] as Parameter);
        if (values) for (let j = 0; j < sum.length; j++) sum[j] = (sum[j] as number) + (values[j] as number);
      });
      params.forEach((ps) => {
        const p = ps[i] as Parameter;
        if (!p.grad) p.grad = Tensor.zeros(p.rt, p.shape, `d${p.name}`);
        p.rt.write(p.grad.buffer, sum);
      });
    }
  }

  /** Copies replica 0's state entries that pass `keep` (weights, buffers, counters) to the others. */
  private async copyState(keep: (e: StateEntry) => boolean): Promise<void> {
    const source = this.net.state().filter(keep);
    for (let k = 1; k < this.replicas.length; k++) {
      const target = (this.replicas[k] as TwoPartNetwork).state().filter(keep);
      for (const [i, entry] of source.entries()) {
        const t = target[i];
        if (entry.tensor && t?.tensor) t.tensor.rt.write(t.tensor.buffer, await entry.tensor.read());
        else if (entry.get && t?.set) t.set(entry.get());
      }
    }
  }

  destroy(): void {
    this.adams.forEach((a) => a.destroy());
    this.replicas.slice(1).forEach((r) => r.destroy());
  }
}
