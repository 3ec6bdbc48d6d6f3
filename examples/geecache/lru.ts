// LRU cache with a byte budget: an entry costs its key's length plus its value's length.
// maxBytes 0 = unlimited. Not safe to share across threads (nothing in JS is).
export interface Sized { length: number }

export class LRU<V extends Sized> {
  private readonly map = new Map<string, V>(); // insertion order = recency (oldest first)
  private bytes = 0;

  constructor(readonly maxBytes: number, private readonly onEvicted?: (key: string, value: V) => void) {
    if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new RangeError('maxBytes must be a non-negative integer');
  }

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v); // most recent
    return v;
  }

  add(key: string, value: V): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.bytes += value.length - old.length;
      this.map.delete(key);
    } else {
      this.bytes += Buffer.byteLength(key) + value.length;
    }
    this.map.set(key, value);
    while (this.maxBytes !== 0 && this.bytes > this.maxBytes && this.map.size > 0) this.removeOldest();
  }

  removeOldest(): void {
    const first = this.map.entries().next();
    if (first.done) return;
    const [k, v] = first.value;
    this.map.delete(k);
    this.bytes -= Buffer.byteLength(k) + v.length;
    this.onEvicted?.(k, v);
  }

  get size(): number { return this.map.size; }
  get usedBytes(): number { return this.bytes; }
}
