/**
 * Where the pure-JavaScript reader gets its bytes: a small random-access interface, so the reader
 * core needs no file system (Node: node_source.ts over a file handle; a browser: a Blob or fetch
 * ranges; tests: bytes in memory).
 */

/** Random access to the bytes of one file. */
export interface ByteSource {
  /** The file's name, used in every error message. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** `length` bytes from `offset`; the caller never asks past `size`. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void> | void;
}

/** A ByteSource over bytes in memory. */
export function bytesSource(name: string, bytes: Uint8Array): ByteSource {
  return { name, size: bytes.length, read: async (offset, length) => bytes.subarray(offset, offset + length) };
}

/** A ByteSource over a browser Blob or File. */
export function blobSource(name: string, blob: Blob): ByteSource {
  return { name, size: blob.size, read: async (offset, length) => new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer()) };
}
