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

export class LinkBuffer {
  /** @internal */ readonly h: NativeLinkBuffer;

  constructor(handle?: NativeLinkBuffer) {
    this.h = handle ?? new native.LinkBuffer();
  }

  /** Readable bytes. */
  get length(): number { return this.h.len(); }
  /** Bytes reserved by malloc() and not yet flushed. */
  get pendingLength(): number { return this.h.pending(); }

  /** The next n bytes without consuming them: a view when contiguous, else copied once. */
  peek(n: number): Buffer {
    checkCount(n, 'peek');
    if (n === 0) return EMPTY;
    const ab = this.h.peek(n);
    if (ab === null) throw outOfRange('peek', n, this.h.len());
    return view(ab, scratch[0], n);
  }

  /** The next n bytes, consumed; valid until release(). */
  next(n: number): Buffer {
    checkCount(n, 'next');
    if (n === 0) return EMPTY;
    const ab = this.h.next(n);
    if (ab === null) throw outOfRange('next', n, this.h.len());
    return view(ab, scratch[0], n);
  }

  skip(n: number): void {
    checkCount(n, 'skip');
    if (!this.h.skip(n)) throw outOfRange('skip', n, this.h.len());
  }

  /** Bytes up to and including the first `delimiter`, consumed; null when it is not there yet. */
  until(delimiter: number | string): Buffer | null {
    const d = typeof delimiter === 'string' && delimiter.length === 1 ? delimiter.charCodeAt(0) : delimiter;
    if (!Number.isInteger(d) || (d as number) < 0 || (d as number) > 255) {
      throw invalidArg(`delimiter must be one byte (a number 0-255 or a one-character string), got ${shown(delimiter)}`);
    }
    const i = this.h.indexOf(d as number);
    return i < 0 ? null : this.next(i + 1);
  }

  /** Index of the first `byte` among the readable bytes, or -1. */
  indexOf(byte: number): number { return this.h.indexOf(byte); }

  /** A copy of the next n bytes, consumed. */
  readBinary(n: number): Buffer {
    checkCount(n, 'readBinary');
    const out = Buffer.allocUnsafe(n);
    if (!this.h.copy(out, n)) throw outOfRange('readBinary', n, this.h.len());
    this.h.skip(n);
    return out;
  }

  readString(n: number, encoding: BufferEncoding = 'utf8'): string {
    return this.next(n).toString(encoding);
  }

  readUInt8(): number { return this.next(1)[0]; }
  readUInt16BE(): number { return this.next(2).readUInt16BE(0); }
  readUInt32BE(): number { return this.next(4).readUInt32BE(0); }
  readInt32BE(): number { return this.next(4).readInt32BE(0); }
  readBigInt64BE(): bigint { return this.next(8).readBigInt64BE(0); }
  readDoubleBE(): number { return this.next(8).readDoubleBE(0); }

  /** The next n bytes as a LinkBuffer sharing the same native nodes (no copy), consumed. */
  slice(n: number): LinkBuffer {
    checkCount(n, 'slice');
    const h = this.h.slice(n);
    if (h === null) throw outOfRange('slice', n, this.h.len());
    return new LinkBuffer(h);
  }

  /** Frees what has been read; views into it may be recycled (and are then detached). */
  release(): void { this.h.release(); }

  /** n writable bytes of native memory, readable after flush(). Fill them before flush(). */
  malloc(n: number): Buffer {
    checkCount(n, 'malloc');
    if (n === 0) return EMPTY;
    const ab = this.h.malloc(n);
    return view(ab, scratch[0], n);
  }

  /** Keeps only the first n bytes reserved by malloc() since the last flush(). */
  mallocAck(n: number): void {
    checkCount(n, 'mallocAck');
    if (!this.h.mallocAck(n)) throw outOfRange('mallocAck', n, this.h.pending());
  }

  /** Copies small data; links large data (16 KiB and up) without copying - do not modify it after. */
  writeBinary(data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw invalidType('data', 'a Uint8Array (Buffer)', data);
    if (data.length) this.h.writeBinary(data);
  }

  /** Copies data in; readable at once. */
  write(data: Uint8Array | string): void {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    if (!(b instanceof Uint8Array)) throw invalidType('data', 'a string or a Uint8Array (Buffer)', data);
    if (b.length) this.h.append(b);
  }

  /** Makes what malloc() reserved readable. */
  flush(): void { this.h.flush(); }

  /** Drops every byte and node now. */
  dispose(): void { this.h.dispose(); }
}

/** Memory held by standalone LinkBuffers' pool (for tests and monitoring). */
export function linkBufferPoolStats(): { liveBytes: number; liveBlocks: number; cachedBytes: number } {
  return native.poolStats();
}
