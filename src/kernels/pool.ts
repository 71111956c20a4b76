/**
 * Buffer pool: GPU buffers reused by (size, usage), with counters of bytes in use and their
 * high-water mark. Released buffers go back to a free list, never destroyed, so a training loop
 * with fixed shapes allocates nothing after its first step.
 *
 * Reuse inside one unsubmitted command encoder is safe: WebGPU orders dispatches in a queue as if
 * sequential. Uploads go through the encoder too (see Runtime.upload), so they stay in order.
 */

/** Byte counters of a pool; `highWaterBytes` is the most ever in use at once since the last reset. */
export interface PoolStats {
  inUseBytes: number;
  highWaterBytes: number;
  /** Bytes held by the pool, in use or free. */
  allocatedBytes: number;
  /** Buffers created so far (a loop that keeps creating them is leaking). */
  created: number;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, number>();
  private stats: PoolStats = { inUseBytes: 0, highWaterBytes: 0, allocatedBytes: 0, created: 0 };

  constructor(private readonly device: GPUDevice) {}

  /** A buffer of at least `bytes` (rounded up to 16) with exactly `usage`. */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label?: string): GPUBuffer {
    const size = roundUp(Math.max(bytes, 16), 16);
    const key = `${size}:${usage}`;
    let buffer = this.free.get(key)?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size, usage, label });
      this.sizes.set(buffer, size);
      this.stats.allocatedBytes += size;
      this.stats.created++;
    }
    this.stats.inUseBytes += size;
    this.stats.highWaterBytes = Math.max(this.stats.highWaterBytes, this.stats.inUseBytes);
    return buffer;
  }

  /** Returns a buffer acquired from this pool; it may be handed out again at once. */
  release(buffer: GPUBuffer): void {
    const size = this.sizes.get(buffer);
    if (size === undefined) throw new Error(`BufferPool.release: buffer '${buffer.label}' is not from this pool`);
    const key = `${size}:${buffer.usage}`;
    const list = this.free.get(key) ?? [];
    if (list.includes(buffer)) throw new Error(`BufferPool.release: buffer '${buffer.label}' released twice`);
    list.push(buffer);
    this.free.set(key, list);
    this.stats.inUseBytes -= size;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  /** Starts a new high-water measurement from the bytes in use now. */
  resetHighWater(): void {
    this.stats.highWaterBytes = this.stats.inUseBytes;
  }

  /** Destroys every free buffer (buffers in use are untouched). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.stats.allocatedBytes -= this.sizes.get(buffer) ?? 0;
        buffer.destroy();
      }
    }
    this.free.clear();
  }
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
