// Consistent hashing as GeeCache's consistenthash.Map: each node gets `replicas` virtual nodes
// hashed from strconv.Itoa(i) + name; a key goes to the first virtual node clockwise. The
// default hash is CRC-32 (IEEE), so the same names map keys to the same owners as the Go original.
import * as zlib from 'node:zlib';

export type Hash = (data: Buffer) => number;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 IEEE (Go's crc32.ChecksumIEEE). */
export const crc32: Hash = typeof (zlib as { crc32?: unknown }).crc32 === 'function'
  ? (d) => (zlib as unknown as { crc32(d: Buffer): number }).crc32(d) >>> 0
  : (d) => {
    let c = 0xffffffff;
    for (let i = 0; i < d.length; i++) c = TABLE[(c ^ d[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };

export class HashRing {
  private keys: number[] = [];
  private readonly owners = new Map<number, string>();

  constructor(private readonly replicas = 50, private readonly hash: Hash = crc32) {
    if (!Number.isInteger(replicas) || replicas < 1) throw new RangeError('replicas must be a positive integer');
  }

  add(...names: string[]): void {
    for (const name of names) {
      for (let i = 0; i < this.replicas; i++) {
        const h = this.hash(Buffer.from(String(i) + name));
        this.keys.push(h);
        this.owners.set(h, name);
      }
    }
    this.keys.sort((a, b) => a - b);
  }

  /** The owner of `key`, or '' when the ring is empty. */
  get(key: string): string {
    if (this.keys.length === 0) return '';
    const h = this.hash(Buffer.from(key));
    let lo = 0, hi = this.keys.length; // first index with keys[i] >= h
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid] >= h) hi = mid; else lo = mid + 1;
    }
    return this.owners.get(this.keys[lo % this.keys.length])!;
  }
}
