/**
 * The runtime's bind-group cache: values found by a short list of integers (the layout, the
 * uniform block's size, and each binding's buffer id, offset and size) without building a string
 * per dispatch. The list is hashed as it is written (MurmurHash3's 32-bit block step, on the low
 * 32 bits of each integer); an entry keeps its whole list and a lookup compares it, so two lists
 * with the same hash never share an entry.
 */

interface Entry<T> {
  key: Float64Array;
  value: T;
  /** The next entry whose key has the same hash. */
  next: Entry<T> | null;
}

/** MurmurHash3 (x86, 32-bit) mixing one word into `hash`: what the cache hashes a key with. */
export function mixKey(hash: number, value: number): number {
  let k = Math.imul(value | 0, 0xcc9e2d51);
  k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
  const h = hash ^ k;
  return (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) | 0;
}

/** Values by integer lists. Write a key with `begin` and `push`, then `find` it or `add` a value under it. */
export class BindGroupCache<T> {
  private buckets = new Map<number, Entry<T>>();
  private entries = 0;
  private key = new Float64Array(32);
  private length = 0;
  private hash = 0;

  /** Entries held. */
  get size(): number {
    return this.entries;
  }

  /** Starts a new key. */
  begin(): void {
    this.length = 0;
    this.hash = 0;
  }

  /** Appends an integer to the key. */
  push(value: number): void {
    if (this.length === this.key.length) {
      const longer = new Float64Array(this.key.length * 2);
      longer.set(this.key);
      this.key = longer;
    }
    this.key[this.length++] = value;
    this.hash = mixKey(this.hash, value);
  }

  /** The value stored under the key written since `begin`, if any. */
  find(): T | undefined {
    for (let e: Entry<T> | null = this.buckets.get(this.hash) ?? null; e; e = e.next) {
      if (this.matches(e.key)) return e.value;
    }
    return undefined;
  }

  /** Stores `value` under the key written since `begin` (which `find` did not find). */
  add(value: T): void {
    this.buckets.set(this.hash, { key: this.key.slice(0, this.length), value, next: this.buckets.get(this.hash) ?? null });
    this.entries++;
  }

  /** Forgets every entry (the key being written stays). */
  clear(): void {
    this.buckets.clear();
    this.entries = 0;
  }

  private matches(key: Float64Array): boolean {
    if (key.length !== this.length) return false;
    for (let i = 0; i < key.length; i++) if (key[i] !== this.key[i]) return false;
    return true;
  }
}
