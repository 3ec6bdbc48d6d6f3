// LinkBuffer: the JavaScript face of the native chain of pooled nodes (native/link_buffer.h).
//
// Lifetime rule: a Buffer returned by peek/next/until/malloc views native memory and stays valid
// until release() (reads) or flush() (writes) - and a little longer, never less. Once the memory
// is recycled, the view is detached (length 0): it never shows bytes that belong to someone else.
// Copy (Buffer.from(view)) what you keep longer.
import { Buffer } from 'node:buffer';
import { native, scratch, type NativeLinkBuffer } from './native';
import { view } from './view';
import { invalidArg, invalidType, shown } from './options';

function outOfRange(what: string, n: number, len: number): RangeError {
  const e = new RangeError(`${what}(${n}) needs ${n} bytes but ${len} are readable`);
  (e as NodeJS.ErrnoException).code = 'ERR_BUFFER_OUT_OF_BOUNDS';
  return e;
}

function checkCount(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) {
    const e = new RangeError(`${what}: count must be an integer from 0 to 2147483647, got ${shown(n)}`);
    (e as NodeJS.ErrnoException).code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
}

const EMPTY = Buffer.alloc(0);

// Bumped whenever native code may have changed a connection's input (a reactor's dispatch, flush
// or close): read windows taken before are stale then (see LinkBuffer).
let ioEpoch = 0;
/** @internal */
export function bumpIoEpoch(): void { ioEpoch++; }

// Searching a window in JavaScript scans its Block from the cursor; past this it asks native code.
const MAX_JS_SCAN = 64 * 1024;

/** A linked chain of pooled native memory blocks: read through views (peek, next, until, skip; release() frees what was read), written in place (malloc, flush). See the lifetime rule in docs/guides/core.md. */
export class LinkBuffer {
  /** @internal */ readonly h: NativeLinkBuffer;
  // The read window: the bytes readable without a copy at the read cursor (one node of the native
  // chain), as native code last reported them. Reads inside it are answered here, without a call
  // into native code (one per peek/next otherwise: most of the cost of reading small frames).
  // `taken` bytes of it were consumed here and native code has not skipped them yet; it does so
  // first thing in the next call that reads or frees (window, release, or settle()).
  private w: ArrayBuffer | null = null;
  private wu8: Uint8Array | null = null;
  private wpos = 0;
  private wend = 0;
  private wlen = 0;
  private wepoch = -1;
  private taken = 0;
  // The write window: free bytes of the node malloc() fills, at [mpos, mend) of `mw`; `reserved`
  // bytes were handed out since native code last heard (it reserves them at the next
  // mallocWindow, mallocAck or flush, exactly where they are).
  private mw: ArrayBuffer | null = null;
  private mpos = 0;
  private mend = 0;
  private reserved = 0;

  constructor(handle?: NativeLinkBuffer) {
    this.h = handle ?? new native.LinkBuffer();
  }

  /** Readable bytes. */
  get length(): number {
    if (this.wepoch === ioEpoch && this.wlen < 0x7fffffff) return this.wlen;
    return this.h.len() - this.taken;
  }
  /** Bytes reserved by malloc() and not yet flushed. */
  get pendingLength(): number { return this.h.pending() + this.reserved; }

  // A fresh window (false: nothing is readable).
  private refill(): boolean {
    const ab = this.h.window(this.taken);
    this.taken = 0;
    this.wepoch = ioEpoch;
    this.wlen = scratch[2]!;
    if (ab === null) {
      this.w = this.wu8 = null;
      this.wpos = this.wend = 0;
      return false;
    }
    if (ab !== this.w) { this.w = ab; this.wu8 = null; }
    this.wpos = scratch[0]!;
    this.wend = this.wpos + scratch[1]!;
    return true;
  }

  /** @internal Tells native code what was consumed here; the window is taken again when next needed. */
  settle(): void {
    if (this.taken > 0) {
      const n = this.taken;
      this.taken = 0;
      this.h.skip(n);
    }
    this.wepoch = -1;
  }

  // Room in a fresh window (refilled if stale); 0 when nothing is readable.
  private room(): number {
    if (this.wepoch !== ioEpoch && !this.refill()) return 0;
    return this.wend - this.wpos;
  }

  /** The next n bytes without consuming them: a view when contiguous, else copied once. */
  peek(n: number): Buffer {
    if (this.wepoch === ioEpoch && (n | 0) === n && n > 0 && n <= this.wend - this.wpos) return view(this.w!, this.wpos, n);
    checkCount(n, 'peek');
    if (n === 0) return EMPTY;
    if (n <= this.room()) return view(this.w!, this.wpos, n);
    this.settle();
    const ab = this.h.peek(n);
    if (ab === null) throw outOfRange('peek', n, this.h.len());
    return view(ab, scratch[0]!, n);
  }

  /** The next n bytes, consumed; valid until release(). */
  next(n: number): Buffer {
    if (this.wepoch === ioEpoch && (n | 0) === n && n > 0 && n <= this.wend - this.wpos) return this.take(n);
    checkCount(n, 'next');
    if (n === 0) return EMPTY;
    if (n <= this.room()) return this.take(n);
    this.settle();
    const ab = this.h.next(n);
    if (ab === null) throw outOfRange('next', n, this.h.len());
    return view(ab, scratch[0]!, n);
  }

  private take(n: number): Buffer {
    const v = view(this.w!, this.wpos, n);
    this.advance(n);
    return v;
  }

  // Consumes n bytes of the window (native code hears of them later: see `taken`).
  private advance(n: number): void {
    this.wpos += n;
    this.wlen -= n;
    this.taken += n;
  }

  /** Moves the read cursor n bytes on (RangeError if fewer are readable). */
  skip(n: number): void {
    checkCount(n, 'skip');
    if (n === 0) return;
    if (n <= this.room()) { this.advance(n); return; }
    this.settle();
    if (!this.h.skip(n)) throw outOfRange('skip', n, this.h.len());
  }

  /** Bytes up to and including the first `delimiter`, consumed; null when it is not there yet. */
  until(delimiter: number | string): Buffer | null {
    const d = typeof delimiter === 'string' && delimiter.length === 1 ? delimiter.charCodeAt(0) : delimiter;
    if (!Number.isInteger(d) || (d as number) < 0 || (d as number) > 255) {
      throw invalidArg(`delimiter must be one byte (a number 0-255 or a one-character string), got ${shown(delimiter)}`);
    }
    const i = this.indexOf(d as number);
    return i < 0 ? null : this.next(i + 1);
  }

  /** Index of the first `byte` among the readable bytes, or -1. */
  indexOf(byte: number): number {
    const room = this.room();
    if (room > 0 && this.w!.byteLength - this.wpos <= MAX_JS_SCAN) {
      const u8 = this.wu8 ??= new Uint8Array(this.w!);
      const i = u8.indexOf(byte, this.wpos);
      if (i >= 0 && i < this.wend) return i - this.wpos;
      if (room === this.wlen) return -1; // the window is all there is
    }
    this.settle();
    return this.h.indexOf(byte);
  }

  /** A copy of the next n bytes, consumed. */
  readBinary(n: number): Buffer {
    checkCount(n, 'readBinary');
    if (n > 0 && n <= this.room()) return Buffer.from(this.take(n));
    this.settle();
    const out = Buffer.allocUnsafe(n);
    if (!this.h.copy(out, n)) throw outOfRange('readBinary', n, this.h.len());
    this.h.skip(n);
    return out;
  }

  /** Reads n bytes as a string (a copy: yours to keep). */
  readString(n: number, encoding: BufferEncoding = 'utf8'): string {
    return this.next(n).toString(encoding);
  }

  /** Reads an unsigned byte. */
  readUInt8(): number { return this.next(1)[0]!; }
  /** Reads a big-endian uint16. */
  readUInt16BE(): number { return this.next(2).readUInt16BE(0); }
  /** Reads a big-endian uint32. */
  readUInt32BE(): number { return this.next(4).readUInt32BE(0); }
  /** Reads a big-endian int32. */
  readInt32BE(): number { return this.next(4).readInt32BE(0); }
  /** Reads a big-endian int64. */
  readBigInt64BE(): bigint { return this.next(8).readBigInt64BE(0); }
  /** Reads a big-endian double. */
  readDoubleBE(): number { return this.next(8).readDoubleBE(0); }

  /** The next n bytes as a LinkBuffer sharing the same native nodes (no copy), consumed. */
  slice(n: number): LinkBuffer {
    checkCount(n, 'slice');
    this.settle();
    const h = this.h.slice(n);
    if (h === null) throw outOfRange('slice', n, this.h.len());
    return new LinkBuffer(h);
  }

  /** Frees what has been read; views into it may be recycled (and are then detached). */
  release(): void {
    const n = this.taken;
    this.taken = 0;
    this.wepoch = -1;
    this.h.release(n);
  }

  /** n writable bytes of native memory, readable after flush(). Fill them before flush(). */
  malloc(n: number): Buffer {
    if ((n | 0) === n && n > 0 && n <= this.mend - this.mpos) return this.reserve(n);
    checkCount(n, 'malloc');
    if (n === 0) return EMPTY;
    this.mw = this.h.mallocWindow(this.reserved, n);
    this.reserved = 0;
    this.mpos = scratch[0]!;
    this.mend = this.mpos + scratch[1]!;
    return this.reserve(n);
  }

  private reserve(n: number): Buffer {
    const v = view(this.mw!, this.mpos, n);
    this.mpos += n;
    this.reserved += n;
    return v;
  }

  // Native code reserves what was handed out; the next malloc() takes a fresh window.
  private dropWriteWindow(): number {
    const n = this.reserved;
    this.reserved = 0;
    this.mw = null;
    this.mpos = this.mend = 0;
    return n;
  }

  /** Keeps only the first n bytes reserved by malloc() since the last flush(). */
  mallocAck(n: number): void {
    checkCount(n, 'mallocAck');
    const reserved = this.dropWriteWindow();
    if (!this.h.mallocAck(n, reserved)) throw outOfRange('mallocAck', n, this.h.pending());
  }

  /** Copies small data; links large data (16 KiB and up) without copying - do not modify it after. */
  writeBinary(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw invalidType('data', 'a Uint8Array (Buffer)', data);
    if (data.length) { this.wepoch = -1; this.h.writeBinary(data); }
  }

  /** Copies data in; readable at once. */
  write(data: Uint8Array | string): void {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(b instanceof Uint8Array)) throw invalidType('data', 'a string or a Uint8Array (Buffer)', data);
    if (b.length) { this.wepoch = -1; this.h.append(b); }
  }

  /** Makes what malloc() reserved readable. */
  flush(): void { this.wepoch = -1; this.h.flush(this.dropWriteWindow()); }

  /** Drops every byte and node now. */
  dispose(): void { this.taken = 0; this.wepoch = -1; this.dropWriteWindow(); this.h.dispose(); }
}

/** Memory held by standalone LinkBuffers' pool (for tests and monitoring). */
export function linkBufferPoolStats(): { liveBytes: number; liveBlocks: number; cachedBytes: number } {
  return native.poolStats();
}
