/**
 * Buffer pool: GPU buffers reused by (size, usage), with counters of bytes in use and their
 * high-water mark. Released buffers go back to a free list, never destroyed, so a training loop
 * with fixed shapes allocates nothing after its first step.
 *
 * Reuse inside one unsubmitted command encoder is safe: WebGPU orders dispatches in a queue as if
 * sequential. Uploads go through the encoder too (see Runtime.upload), so they stay in order.
 *
 * Limits: a buffer over the device's maxBufferSize, or (with a memory budget, e.g. a test's or
 * `--gpu-memory`) one that would take the bytes held over the budget after the free buffers are
 * given back, throws an OutOfMemoryError at once, naming the buffer.
 */

/** Byte counters of a pool; `highWaterBytes` is the most ever in use at once since the last reset. */
export interface PoolStats {
  inUseBytes: number;
  highWaterBytes: number;
  /** Bytes held by the pool, in use or free. */
  allocatedBytes: number;
  /** Buffers created so far (a loop that keeps creating them is leaking). */
  created: number;
  /** The largest buffer acquired since the last reset of the high-water mark. */
  largestBufferBytes: number;
}

/** What the pool refuses to create, and how it creates buffers. */
export interface PoolLimits {
  /** Largest buffer the device can create (its maxBufferSize). */
  maxBufferBytes?: number;
  /** Most bytes the pool may hold at once (in use and free). */
  memoryBytes?: number;
  /** Creates a buffer (the runtime watches for out-of-memory errors here). */
  create?: (descriptor: GPUBufferDescriptor) => GPUBuffer;
  /** Called before free buffers are destroyed to make room: submit work that may still use them. */
  beforeTrim?: () => void;
}

/** A buffer the device cannot give: over maxBufferSize, over the memory budget, or refused by the driver. */
export class OutOfMemoryError extends Error {
  constructor(
    readonly label: string,
    readonly bytes: number,
    /** Bytes the pool held when the buffer was asked for. */
    readonly heldBytes: number,
    readonly limit: 'maxBufferSize' | 'memory budget' | 'device memory',
    readonly limitBytes: number | null,
  ) {
    const over = limitBytes === null ? '' : ` (${limit} ${limitBytes} bytes)`;
    super(`out of GPU memory: buffer '${label}' of ${bytes} bytes does not fit with ${heldBytes} bytes already held${over}`);
    this.name = 'OutOfMemoryError';
  }
}

/** Everything the pool knows of one of its buffers: one WeakMap lookup finds it. */
interface PoolRecord {
  readonly buffer: GPUBuffer;
  readonly size: number;
  /** Creation order, never reused: free lists hand out the oldest first (see `release`); the runtime keys bind groups by it. */
  readonly id: number;
  /** The free list of the buffer's size and usage. */
  readonly list: PoolRecord[];
  free: boolean;
}

// WebGPU's usage flags all fit in 10 bits, so size·1024 + usage names a free list exactly.
const USAGE_KEYS = 1024;

export class BufferPool {
  /** Free lists by size and usage, each in creation order, oldest last. */
  private free = new Map<number, PoolRecord[]>();
  private records = new WeakMap<GPUBuffer, PoolRecord>();
  private stats: PoolStats = { inUseBytes: 0, highWaterBytes: 0, allocatedBytes: 0, created: 0, largestBufferBytes: 0 };
  private tracked: Set<GPUBuffer> | null = null;

  constructor(
    private readonly device: GPUDevice,
    private readonly limits: PoolLimits = {},
  ) {}

  /** A buffer of at least `bytes` (rounded up to 16) with exactly `usage`. */
  acquire(bytes: number, usage: GPUBufferUsageFlags, label?: string): GPUBuffer {
    const size = roundUp(Math.max(bytes, 16), 16);
    const key = size * USAGE_KEYS + usage;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    let record = list.pop();
    if (record) record.free = false;
    else {
      this.checkLimits(size, label ?? '');
      const buffer = this.limits.create ? this.limits.create({ size, usage, label }) : this.device.createBuffer({ size, usage, label });
      record = { buffer, size, id: this.stats.created, list, free: false };
      this.records.set(buffer, record);
      this.stats.allocatedBytes += size;
      this.stats.created++;
    }
    this.stats.inUseBytes += size;
    this.stats.highWaterBytes = Math.max(this.stats.highWaterBytes, this.stats.inUseBytes);
    this.stats.largestBufferBytes = Math.max(this.stats.largestBufferBytes, size);
    this.tracked?.add(record.buffer);
    return record.buffer;
  }

  /**
   * Returns a buffer acquired from this pool; it may be handed out again at once. Each free list is
   * kept in creation order, oldest last, and `acquire` takes the oldest: which buffer a request gets
   * then depends only on which buffers are free, not on the order they were released in, so a loop
   * that acquires and releases the same way every step gets the same buffers every step — and the
   * runtime's bind groups for them are found again instead of created.
   */
  release(buffer: GPUBuffer): void {
    const record = this.records.get(buffer);
    if (record === undefined) throw new Error(`BufferPool.release: buffer '${buffer.label}' is not from this pool`);
    if (record.free) throw new Error(`BufferPool.release: buffer '${buffer.label}' released twice`);
    const list = record.list;
    let at = list.length;
    while (at > 0 && (list[at - 1] as PoolRecord).id < record.id) at--;
    if (at === list.length) list.push(record);
    else list.splice(at, 0, record);
    record.free = true;
    this.stats.inUseBytes -= record.size;
    this.tracked?.delete(buffer);
  }

  /** The byte size of a buffer from this pool (undefined for any other buffer): no call into the GPU binding. */
  sizeOf(buffer: GPUBuffer): number | undefined {
    return this.records.get(buffer)?.size;
  }

  /** A buffer's creation number in this pool, never reused (undefined for any other buffer). */
  idOf(buffer: GPUBuffer): number | undefined {
    return this.records.get(buffer)?.id;
  }

  /**
   * Records the buffers acquired from now on until `releaseTracked`, which gives back those still
   * in use — what an aborted computation (an out-of-memory error in the middle of a step) left held.
   */
  startTracking(): void {
    this.tracked = new Set();
  }

  /** Releases the tracked buffers still in use and stops tracking; returns how many there were. */
  releaseTracked(): number {
    const left = [...(this.tracked ?? [])];
    this.tracked = null;
    left.forEach((b) => this.release(b));
    return left.length;
  }

  private checkLimits(size: number, label: string): void {
    const { maxBufferBytes, memoryBytes } = this.limits;
    if (maxBufferBytes !== undefined && size > maxBufferBytes) throw new OutOfMemoryError(label, size, this.stats.allocatedBytes, 'maxBufferSize', maxBufferBytes);
    if (memoryBytes === undefined || this.stats.allocatedBytes + size <= memoryBytes) return;
    this.limits.beforeTrim?.();
    this.trim();
    if (this.stats.allocatedBytes + size > memoryBytes) throw new OutOfMemoryError(label, size, this.stats.allocatedBytes, 'memory budget', memoryBytes);
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  /** Starts a new high-water measurement from the bytes in use now. */
  resetHighWater(): void {
    this.stats.highWaterBytes = this.stats.inUseBytes;
    this.stats.largestBufferBytes = 0;
  }

  /** Destroys every free buffer (buffers in use are untouched). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const record of list) {
        this.stats.allocatedBytes -= record.size;
        this.records.delete(record.buffer);
        record.buffer.destroy();
      }
      list.length = 0; // emptied, not dropped: the records of buffers in use point at their list
    }
  }
}

export function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
