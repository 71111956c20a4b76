/** A ByteSource over a file (Node only: the reader core stays free of node:fs). */
import { open, type FileHandle } from 'node:fs/promises';
import type { ByteSource } from './source.ts';

/** Opens `path` for random reads; close() releases the handle. */
export async function fileSource(path: string): Promise<ByteSource> {
  const handle: FileHandle = await open(path, 'r');
  const { size } = await handle.stat();
  return {
    name: path,
    size,
    async read(offset, length) {
      const buffer = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0) throw new Error(`${path}: file ended at byte ${offset + done} while reading ${length} bytes at ${offset} (was it truncated while open?)`);
        done += bytesRead;
      }
      return buffer;
    },
    close: () => handle.close(),
  };
}
