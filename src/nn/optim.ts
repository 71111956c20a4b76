/**
 * Adam with torch.optim.Adam semantics (L2 weight decay, bias correction, eps 1e-8), one dispatch
 * per parameter buffer, and StepLR. The moment buffers are named after their parameters, so the
 * optimizer state can be checkpointed next to the weights.
 */
import { adamStep } from '../kernels/adam.ts';
import { Parameter, Tensor } from './tensor.ts';

export interface AdamOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

export class Adam {
  step = 0;
  lr: number;
  private readonly moments: Map<Parameter, { m: Tensor; v: Tensor }>;

  constructor(readonly params: readonly Parameter[], readonly options: AdamOptions) {
    this.lr = options.lr;
    this.moments = new Map(
      params.map((p) => [p, { m: Tensor.zeros(p.rt, p.shape, `${p.name}.exp_avg`), v: Tensor.zeros(p.rt, p.shape, `${p.name}.exp_avg_sq`) }]),
    );
  }

  /** Applies one update from each parameter's `.grad` (parameters without one are skipped, as torch). */
  update(): void {
    this.step++;
    for (const [p, { m, v }] of this.moments) {
      if (!p.grad) continue;
      adamStep(p.rt, p.buffer, p.grad.buffer, m.buffer, v.buffer, p.size, {
        lr: this.lr,
        beta1: this.options.beta1 ?? 0.9,
        beta2: this.options.beta2 ?? 0.999,
        eps: this.options.eps ?? 1e-8,
        weightDecay: this.options.weightDecay ?? 0,
        step: this.step,
      });
    }
  }

  zeroGrad(): void {
    this.params.forEach((p) => p.zeroGrad());
  }

  /** Moment tensors, named `<param>.exp_avg` and `<param>.exp_avg_sq` (labels), for checkpoints. */
  stateTensors(): Tensor[] {
    return [...this.moments.values()].flatMap(({ m, v }) => [m, v]);
  }

  /** Restores moments (by label) and the step count saved from `stateTensors`. */
  loadState(values: ReadonlyMap<string, Float32Array>, step: number): void {
    for (const t of this.stateTensors()) {
      const data = values.get(t.label);
      if (!data) throw new Error(`optimizer state: '${t.label}' is missing`);
      if (data.length !== t.size) throw new Error(`optimizer state: '${t.label}' has ${data.length} values, expected ${t.size}`);
      t.rt.write(t.buffer, data);
    }
    this.step = step;
  }

  destroy(): void {
    this.stateTensors().forEach((t) => t.release());
  }
}

/** torch.optim.lr_scheduler.StepLR: lr = base · gamma^floor(epoch / stepSize). */
export function stepLr(baseLr: number, epoch: number, stepSize: number, gamma: number): number {
  return baseLr * gamma ** Math.floor(epoch / stepSize);
}
