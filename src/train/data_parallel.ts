/**
 * Data parallelism over several GPU devices (separate adapters where the machine has several, else
 * several devices on one adapter): one replica of the network and of Adam per device, each batch
 * split into contiguous shards, each replica's loss scaled by its share (n_k / n) so the shards'
 * gradients add up to the gradient of the whole batch's mean loss. Gradients are summed on the CPU
 * in device order (deterministic) and written back to every replica, every replica takes the same
 * Adam step, and BatchNorm running statistics are copied from replica 0 to the others (as
 * torch.nn.DataParallel keeps replica 0's buffers) — so the replicas stay identical.
 */
import type { Runtime } from '../kernels/runtime.ts';
import type { TwoPartNetwork } from '../nn/networks.ts';
import { logSoftmaxNllLoss } from '../nn/ops.ts';
import { Adam } from '../nn/optim.ts';
import { Tape } from '../nn/tape.ts';
import { Parameter, Tensor } from '../nn/tensor.ts';
import { BufferSnapshot, gradientFlags, NonFiniteError, nonFiniteReport, withGradients, type NonFinitePolicy } from './guard.ts';
import { rows, trainStep, type StepResult } from './step.ts';
import { argmax } from './metrics.ts';

/** Row ranges [start, end) of `n` rows split over `parts` as evenly as possible. */
export function shardRows(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < parts; k++) out.push([Math.floor((k * n) / parts), Math.floor(((k + 1) * n) / parts)]);
  return out.filter(([a, b]) => b > a);
}

/** A network trained on one or more devices; replica 0 is the one saved and evaluated. */
export class Replicated {
  readonly adams: Adam[];

  constructor(
    readonly runtimes: readonly Runtime[],
    readonly replicas: readonly TwoPartNetwork[],
    lr: number,
  ) {
    this.adams = replicas.map((net) => new Adam(net.parameters(), { lr }));
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
    const source = this.net.state();
    const moments = this.adam.stateTensors();
    for (let k = 1; k < this.replicas.length; k++) {
      const target = (this.replicas[k] as TwoPartNetwork).state();
      for (const [i, entry] of source.entries()) {
        const t = target[i];
        if (entry.tensor && t?.tensor) t.tensor.rt.write(t.tensor.buffer, await entry.tensor.read());
        else if (entry.get && t?.set) t.set(entry.get());
      }
      const adam = this.adams[k] as Adam;
      const values = new Map<string, Float32Array>();
      for (const m of moments) values.set(m.label, await m.read());
      adam.loadState(values, this.adam.step);
      adam.lr = this.adam.lr;
    }
  }

  /**
   * One optimisation step on a batch held on device 0. With one device this is `trainStep`;
   * with several, the batch is read back once and uploaded to each device in shards.
   */
  async step(x: Tensor, labels: GPUBuffer, labelsCpu: Uint32Array, seed: number, where: string, onNonFinite: NonFinitePolicy = 'stop'): Promise<StepResult> {
    if (this.replicas.length === 1) return trainStep(this.net, this.adam, x, labels, labelsCpu, seed, where, onNonFinite);
    const rt = this.runtimes[0] as Runtime;
    const snapshot = onNonFinite === 'skip' ? new BufferSnapshot(rt, this.net) : null;
    const result = await this.computeGradients(x, labelsCpu, seed);
    const params = withGradients(this.net);
    const flags = gradientFlags(rt, params);
    const bad = nonFiniteReport(result.loss, await rt.readU32(flags, params.length), params);
    rt.release(flags);
    if (bad && !snapshot) throw new NonFiniteError(`${where} (optimizer step ${this.adam.step + 1})`, bad);
    if (bad) snapshot?.restore();
    else this.adams.forEach((a) => a.update());
    snapshot?.release();
    await this.syncBatchNormStats();
    return bad ? { ...result, correct: 0, skipped: bad } : result;
  }

  /**
   * Forward and backward of the batch split over the devices, gradients all-reduced: afterwards
   * every replica's `.grad` holds the gradient of the whole batch's mean loss.
   */
  async computeGradients(x: Tensor, labelsCpu: Uint32Array, seed: number): Promise<StepResult> {
    const n = labelsCpu.length;
    const rowSize = x.size / n;
    const all = await x.read();
    const shards = shardRows(n, this.replicas.length);
    const results = await Promise.all(
      shards.map(async ([start, end], k) => {
        const rt = this.runtimes[k] as Runtime;
        const net = this.replicas[k] as TwoPartNetwork;
        (this.adams[k] as Adam).zeroGrad();
        const xs = Tensor.fromArray(rt, all.slice(start * rowSize, end * rowSize), [end - start, ...x.shape.slice(1)], 'shard');
        const ts = rt.upload(labelsCpu.slice(start, end), 'shard labels');
        const tape = new Tape();
        const logits = net.forward(xs, { tape, seed });
        const { logp, loss } = logSoftmaxNllLoss(logits, ts, tape);
        logits.release();
        tape.backward(loss, (end - start) / n);
        const [lossBytes, logpBytes] = await rt.readMany([{ buffer: loss.buffer, bytes: 4 }, { buffer: logp.buffer, bytes: logp.size * 4 }]);
        const [lossValue, logpValues] = [new Float32Array(lossBytes as ArrayBuffer), new Float32Array(logpBytes as ArrayBuffer)];
        [xs, loss, logp].forEach((t) => t.release());
        rt.release(ts);
        return { loss: lossValue[0] as number, logp: logpValues, start, end };
      }),
    );
    await this.allReduceGradients();
    let loss = 0;
    let correct = 0;
    for (const r of results) {
      loss += (r.loss * (r.end - r.start)) / n;
      rows(r.logp, r.logp.length / (r.end - r.start)).forEach((row, i) => {
        if (argmax(row) === labelsCpu[r.start + i]) correct++;
      });
    }
    return { loss, correct, count: n };
  }

  /** Sums every parameter's gradient over the replicas (device order) and writes it back to each. */
  private async allReduceGradients(): Promise<void> {
    const params = this.replicas.map((r) => r.parameters());
    const first = params[0] as Parameter[];
    for (let i = 0; i < first.length; i++) {
      const grads = await Promise.all(params.map((ps) => (ps[i] as Parameter).grad?.read() ?? null));
      const sum = new Float32Array(first[i]?.size ?? 0);
      for (const g of grads) if (g) for (let j = 0; j < sum.length; j++) sum[j] = (sum[j] as number) + (g[j] as number);
      params.forEach((ps) => {
        const p = ps[i] as Parameter;
        if (!p.grad) p.grad = Tensor.zeros(p.rt, p.shape, `d${p.name}`);
        p.rt.write(p.grad.buffer, sum);
      });
    }
  }

  private async syncBatchNormStats(): Promise<void> {
    const source = this.net.state().filter((e) => !(e.tensor instanceof Parameter));
    for (let k = 1; k < this.replicas.length; k++) {
      const target = (this.replicas[k] as TwoPartNetwork).state().filter((e) => !(e.tensor instanceof Parameter));
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
