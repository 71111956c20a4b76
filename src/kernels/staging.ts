/**
 * Staging buffers for uploads (MAP_WRITE | COPY_SRC) and readbacks (MAP_READ | COPY_DST), reused
 * instead of created for every `write` and `read`: creating, mapping and destroying a buffer per
 * transfer costs more CPU than the small transfers themselves (a training step uploads labels and
 * reads its loss every batch).
 *
 * Sizes are rounded up to a power of two (at least 256 bytes; above 64 MiB, to 4 KiB) so a loop whose sizes vary a little
 * still finds one. An upload buffer is handed out mapped; after the submit that copies from it has
 * completed, it is mapped again (asynchronously) and only then goes back to the free list. A
 * readback buffer goes back unmapped once its contents have been copied out. Free buffers above
 * `maxFreeBytes` per kind are destroyed rather than kept.
 */
const MAP_READ = 0x0001;
const MAP_WRITE = 0x0002;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;

/** The size class of a transfer of `bytes`: the next power of two, at least 256. */
export function stagingSize(bytes: number): number {
  if (bytes > 64 << 20) return Math.ceil(bytes / 4096) * 4096; // large transfers: no doubling past the device's limits
  let size = 256;
  while (size < bytes) size *= 2;
  return size;
}

class FreeLists {
  private lists = new Map<number, GPUBuffer[]>();
  bytes = 0;

  constructor(private readonly maxBytes: number) {}

  take(size: number): GPUBuffer | undefined {
    const buffer = this.lists.get(size)?.pop();
    if (buffer) this.bytes -= size;
    return buffer;
  }

  give(buffer: GPUBuffer): void {
    if (this.bytes + buffer.size > this.maxBytes) {
      buffer.destroy();
      return;
    }
    const list = this.lists.get(buffer.size) ?? [];
    list.push(buffer);
    this.lists.set(buffer.size, list);
    this.bytes += buffer.size;
  }

  clear(): void {
    for (const list of this.lists.values()) list.forEach((b) => b.destroy());
    this.lists.clear();
    this.bytes = 0;
  }
}

export class StagingPool {
  private uploads: FreeLists;
  private readbacks: FreeLists;
  /** Buffers created so far, per kind (a steady loop stops creating them). */
  readonly created = { upload: 0, readback: 0 };
  private closed = false;

  constructor(
    private readonly device: GPUDevice,
    maxFreeBytes = 64 << 20,
  ) {
    this.uploads = new FreeLists(maxFreeBytes);
    this.readbacks = new FreeLists(maxFreeBytes);
  }

  /** A mapped upload buffer of at least `bytes`; give it back with `recycleUploads` after its submit. */
  acquireUpload(bytes: number): GPUBuffer {
    const size = stagingSize(bytes);
    const free = this.uploads.take(size);
    if (free) return free;
    this.created.upload++;
    return this.device.createBuffer({ size, usage: MAP_WRITE | COPY_SRC, mappedAtCreation: true, label: 'staging upload' });
  }

  /** After the submit that read `buffers` has completed: maps them again and puts them back. */
  recycleUploads(buffers: readonly GPUBuffer[]): void {
    for (const buffer of buffers) {
      buffer
        .mapAsync(MAP_WRITE)
        .then(() => (this.closed ? buffer.destroy() : this.uploads.give(buffer)))
        .catch(() => buffer.destroy());
    }
  }

  /** An unmapped readback buffer of at least `bytes`. */
  acquireReadback(bytes: number): GPUBuffer {
    const size = stagingSize(bytes);
    const free = this.readbacks.take(size);
    if (free) return free;
    this.created.readback++;
    return this.device.createBuffer({ size, usage: MAP_READ | COPY_DST, label: 'staging readback' });
  }

  /** Unmaps a readback buffer (its contents already copied out) and puts it back; destroys it after a failure. */
  releaseReadback(buffer: GPUBuffer, ok: boolean): void {
    if (!ok || this.closed) {
      buffer.destroy();
      return;
    }
    if (buffer.mapState === 'mapped') buffer.unmap();
    if (buffer.mapState !== 'unmapped') {
      buffer.destroy();
      return;
    }
    this.readbacks.give(buffer);
  }

  /** Bytes held in free buffers. */
  freeBytes(): number {
    return this.uploads.bytes + this.readbacks.bytes;
  }

  destroy(): void {
    this.closed = true;
    this.uploads.clear();
    this.readbacks.clear();
  }
}
