// An immutable view of a cached value: callers get copies, so nobody can change the cache.
export class ByteView {
  private readonly b: Buffer;
  /** Takes a private copy of `data`. */
  constructor(data: Uint8Array | string) {
    this.b = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
  }
  /** Wraps a Buffer nobody else holds (no copy). */
  static adopt(b: Buffer): ByteView {
    const v = Object.create(ByteView.prototype) as ByteView;
    (v as unknown as { b: Buffer }).b = b;
    return v;
  }
  get length(): number { return this.b.length; }
  /** A copy of the bytes. */
  byteSlice(): Buffer { return Buffer.from(this.b); }
  toString(): string { return this.b.toString(); }
  /** @internal The bytes themselves, for writing to a socket (never to be modified). */
  unsafeBytes(): Buffer { return this.b; }
}
