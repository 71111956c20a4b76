/**
 * GPU tensors: a shape over a pooled float32 buffer. Storage is reference-counted so views
 * (reshape) and the tape can hold a tensor while its creator lets go; the buffer returns to the
 * pool when the last holder releases it. Nothing is read back unless `read` is called.
 */
import type { Runtime } from '../kernels/runtime.ts';

class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer) {}
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * The values of many tensors, read with one submit and one mapping per device (`Runtime.readMany`)
 * instead of one each: a checkpoint holds ~190 tensors. In the order given.
 */
export async function readTensors(tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const out: Float32Array[] = new Array(tensors.length);
  const byRuntime = new Map<Runtime, number[]>();
  tensors.forEach((t, i) => byRuntime.set(t.rt, [...(byRuntime.get(t.rt) ?? []), i]));
  for (const [rt, indices] of byRuntime) {
    const parts = await rt.readMany(indices.map((i) => ({ buffer: (tensors[i] as Tensor).buffer, bytes: (tensors[i] as Tensor).size * 4 })));
    indices.forEach((index, k) => (out[index] = new Float32Array(parts[k] as ArrayBuffer)));
  }
  return out;
}

export class Tensor {
  private storage: Storage | null;

  /** Wraps a buffer from `rt.alloc` (or a launcher's output); the tensor now owns it. */
  constructor(
    readonly rt: Runtime,
    buffer: GPUBuffer,
    readonly shape: readonly number[],
    readonly label = '',
    storage?: Storage,
  ) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 1) throw new RangeError(`tensor '${label}': bad shape ${formatShape(shape)}`);
    }
    this.storage = storage ?? new Storage(buffer);
  }

  static fromArray(rt: Runtime, data: Float32Array, shape: readonly number[], label = ''): Tensor {
    if (data.length !== shapeSize(shape)) {
      throw new RangeError(`tensor '${label}': ${data.length} values do not fill shape ${formatShape(shape)}`);
    }
    return new Tensor(rt, rt.upload(data, label), shape, label);
  }

  /** A tensor of zeros. */
  static zeros(rt: Runtime, shape: readonly number[], label = ''): Tensor {
    return Tensor.fromArray(rt, new Float32Array(shapeSize(shape)), shape, label);
  }

  get buffer(): GPUBuffer {
    if (!this.storage) throw new Error(`tensor '${this.label}' ${formatShape(this.shape)} was used after release`);
    return this.storage.buffer;
  }

  get size(): number {
    return shapeSize(this.shape);
  }

  get bytes(): number {
    return this.size * 4;
  }

  get released(): boolean {
    return this.storage === null;
  }

  /** Another holder of the same storage (the tape keeps what backward needs this way). */
  retain(): Tensor {
    const storage = this.live();
    storage.refs++;
    return new Tensor(this.rt, storage.buffer, this.shape, this.label, storage);
  }

  /** A view with another shape of the same size, sharing storage (release it too). */
  reshape(shape: readonly number[], label = this.label): Tensor {
    if (shapeSize(shape) !== this.size) {
      throw new RangeError(`cannot reshape '${this.label}' ${formatShape(this.shape)} to ${formatShape(shape)}`);
    }
    const storage = this.live();
    storage.refs++;
    return new Tensor(this.rt, storage.buffer, shape, label, storage);
  }

  /** Lets go of this handle; the buffer goes back to the pool when no handle holds it. */
  release(): void {
    const storage = this.live();
    this.storage = null;
    if (--storage.refs === 0) this.rt.release(storage.buffer);
  }

  /** Copies the values to the CPU (submits pending work). */
  async read(): Promise<Float32Array> {
    return this.rt.readF32(this.buffer, this.size);
  }

  private live(): Storage {
    if (!this.storage) throw new Error(`tensor '${this.label}' ${formatShape(this.shape)} was used after release`);
    return this.storage;
  }
}

/** A trainable tensor with a PyTorch state_dict name and a gradient slot the tape adds into. */
export class Parameter extends Tensor {
  grad: Tensor | null = null;
  requiresGrad = true;

  constructor(rt: Runtime, buffer: GPUBuffer, shape: readonly number[], readonly name: string) {
    super(rt, buffer, shape, name);
  }

  static override fromArray(rt: Runtime, data: Float32Array, shape: readonly number[], name: string): Parameter {
    if (data.length !== shapeSize(shape)) throw new RangeError(`parameter '${name}': ${data.length} values for shape ${formatShape(shape)}`);
    return new Parameter(rt, rt.upload(data, name), shape, name);
  }

  /** Overwrites the values (same shape) in order with recorded GPU work. */
  assign(data: Float32Array): void {
    if (data.length !== this.size) throw new RangeError(`parameter '${this.name}': ${data.length} values for shape ${formatShape(this.shape)}`);
    this.rt.write(this.buffer, data);
  }

  zeroGrad(): void {
    this.grad?.release();
    this.grad = null;
  }
}
