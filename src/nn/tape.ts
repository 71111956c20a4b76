/**
 * The autograd tape (after micrograd): each op run under a tape records a node with a backward
 * closure; `backward` walks the nodes once in reverse recording order (a valid reverse topological
 * order, since an op is recorded after its inputs exist) and *adds* each input's gradient into
 * either a parameter's `.grad` or a pending gradient of an intermediate. A node's saved tensors and
 * the gradient flowing into it are released as soon as that node is done.
 */
import { axpy, fill } from '../kernels/elementwise.ts';
import { Parameter, Tensor, formatShape } from './tensor.ts';

export interface TapeNode {
  /** Op name, for errors. */
  op: string;
  inputs: readonly Tensor[];
  /** Identity of the output (the tensor the op returned). */
  output: Tensor;
  /** Tensors the backward reads, retained until the node is done. */
  saved: readonly Tensor[];
  /**
   * Gradients for each input (null where none is needed); fresh tensors the tape takes over.
   * `rootScale` is the seed value when `dOutput` is the seed of backward itself, else null (a loss
   * op with a fused backward uses it instead of reading dOutput back).
   */
  backward(dOutput: Tensor, rootScale: number | null): (Tensor | null)[];
}

export class Tape {
  private nodes: TapeNode[] = [];
  private done = false;
  /** Tensors made by recorded ops (they carry gradient back to parameters). */
  readonly produced = new Set<Tensor>();
  /** True when an op with these inputs must be recorded. */
  wants(inputs: readonly (Tensor | null)[]): boolean {
    return inputs.some((t) => t !== null && needsGrad(t, this));
  }

  record(node: TapeNode): void {
    if (this.done) throw new Error(`tape: op '${node.op}' recorded after backward`);
    this.nodes.push(node);
    this.produced.add(node.output);
  }

  /**
   * Back-propagates from a scalar `loss` (seed gradient `dLoss`, default 1), adding into each
   * reachable Parameter's `.grad`. Releases everything the tape retained.
   */
  backward(loss: Tensor, dLoss = 1): void {
    if (this.done) throw new Error('tape: backward called twice');
    if (loss.size !== 1) throw new Error(`tape: backward needs a scalar loss, got ${formatShape(loss.shape)}`);
    this.done = true;
    const pending = new Map<Tensor, Tensor>();
    const seed = new Tensor(loss.rt, loss.rt.alloc(4, 'dLoss'), loss.shape, 'dLoss');
    fill(loss.rt, seed.buffer, 1, dLoss);
    pending.set(loss, seed);

    for (let k = this.nodes.length - 1; k >= 0; k--) {
      const node = this.nodes[k] as TapeNode;
      const dOutput = pending.get(node.output);
      pending.delete(node.output);
      if (dOutput) {
        const grads = node.backward(dOutput, dOutput === seed ? dLoss : null);
        dOutput.release();
        node.inputs.forEach((input, i) => {
          const grad = grads[i];
          if (grad) this.accumulate(input, grad, pending, node.op);
        });
      }
      node.saved.forEach((t) => t.release());
    }
    for (const leftover of pending.values()) leftover.release();
    this.nodes = [];
    this.produced.clear();
  }

  /** Releases what the tape holds without back-propagating (e.g. after an aborted step). */
  dispose(): void {
    for (const node of this.nodes) node.saved.forEach((t) => t.release());
    this.nodes = [];
    this.produced.clear();
    this.done = true;
  }

  private accumulate(input: Tensor, grad: Tensor, pending: Map<Tensor, Tensor>, op: string): void {
    if (grad.size !== input.size) {
      throw new Error(`tape: op '${op}' returned a gradient of shape ${formatShape(grad.shape)} for input ${formatShape(input.shape)}`);
    }
    if (input instanceof Parameter) {
      if (input.grad) {
        axpy(input.rt, input.grad.buffer, grad.buffer, grad.size);
        grad.release();
      } else {
        input.grad = grad;
      }
      return;
    }
    if (!this.produced.has(input)) {
      grad.release();
      return;
    }
    const existing = pending.get(input);
    if (existing) {
      axpy(input.rt, existing.buffer, grad.buffer, grad.size);
      grad.release();
    } else {
      pending.set(input, grad);
    }
  }
}

function needsGrad(t: Tensor, tape: Tape): boolean {
  return (t instanceof Parameter && t.requiresGrad) || tape.produced.has(t);
}
