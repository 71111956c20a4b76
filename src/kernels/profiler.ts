/**
 * GPU time of every dispatch, by timestamp queries: while a profile runs (`Runtime.startProfile`),
 * each dispatch gets its own compute pass whose beginning and end write a timestamp. The bench's
 * per-op split of a training step reads them (bench/step_split.ts). Profiling changes what it
 * measures a little (a pass per dispatch, no overlap between dispatches), so it is for finding where
 * time goes, never for the headline rows. Needs the adapter's `timestamp-query` feature; Dawn may
 * round timestamps (to 100 µs unless its `timestamp_quantization` toggle is off), so dispatches
 * shorter than that read as 0 or one step.
 */

/** One profiled dispatch. */
export interface DispatchTiming {
  kernel: string;
  /** Byte size of each binding, in order (lets a reader tell layers apart). */
  bindingBytes: number[];
  workgroups: [number, number, number];
  ms: number;
}

const QUERIES_PER_SET = 4096;
const QUERY_RESOLVE = 0x0200;
const COPY_SRC = 0x0004;

interface QueryChunk {
  set: GPUQuerySet;
  resolve: GPUBuffer;
  used: number;
  resolved: number;
}

export class DispatchProfiler {
  private chunks: QueryChunk[] = [];
  private records: Omit<DispatchTiming, 'ms'>[] = [];

  constructor(private readonly device: GPUDevice) {
    if (!device.features.has('timestamp-query')) throw new Error("profiling needs the adapter's 'timestamp-query' feature, which this device lacks");
  }

  /** The timestamp writes for the next dispatch's pass. */
  next(kernel: string, bindingBytes: number[], workgroups: [number, number, number]): GPUComputePassTimestampWrites {
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || chunk.used === QUERIES_PER_SET) {
      chunk = {
        set: this.device.createQuerySet({ type: 'timestamp', count: QUERIES_PER_SET }),
        resolve: this.device.createBuffer({ size: QUERIES_PER_SET * 8, usage: QUERY_RESOLVE | COPY_SRC }),
        used: 0,
        resolved: 0,
      };
      this.chunks.push(chunk);
    }
    this.records.push({ kernel, bindingBytes, workgroups });
    const at = chunk.used;
    chunk.used += 2;
    return { querySet: chunk.set, beginningOfPassWriteIndex: at, endOfPassWriteIndex: at + 1 };
  }

  /** Resolves the queries written since the last call into their buffers (before a submit). */
  resolve(encoder: GPUCommandEncoder): void {
    for (const c of this.chunks) {
      if (c.used > c.resolved) encoder.resolveQuerySet(c.set, c.resolved, c.used - c.resolved, c.resolve, c.resolved * 8);
      c.resolved = c.used;
    }
  }

  /** The resolve buffers with how many bytes of each hold timestamps. */
  buffers(): { buffer: GPUBuffer; bytes: number }[] {
    return this.chunks.map((c) => ({ buffer: c.resolve, bytes: Math.max(c.used, 1) * 8 }));
  }

  /** Timings from the resolved timestamps (in `buffers` order). */
  timings(data: readonly ArrayBuffer[]): DispatchTiming[] {
    const stamps = data.flatMap((d, i) => [...new BigUint64Array(d, 0, (this.chunks[i] as QueryChunk).used)]);
    return this.records.map((r, i) => ({ ...r, ms: Number((stamps[2 * i + 1] as bigint) - (stamps[2 * i] as bigint)) / 1e6 }));
  }

  destroy(): void {
    for (const c of this.chunks) {
      c.set.destroy();
      c.resolve.destroy();
    }
    this.chunks = [];
  }
}
