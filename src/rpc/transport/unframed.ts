// Unframed binary (Apache TBufferedTransport): a message ends where its struct does, so finding
// the end means walking the struct. UnframedCutter does it in time linear in the message's size
// however it arrives: a message that is complete in the reader is walked once, in place; one that
// is not is copied out once as it arrives and walked on from where the last piece ended
// (MessageScanner keeps its place), never from the start again.
import { Buffer } from 'node:buffer';
import { LinkpollError } from '../../errors';
import type { LinkBuffer } from '../../link-buffer';
import { MAX_DEPTH, MAX_OLD_NAME, protocolError, TType } from '../codec/thrift';

/** Wire size of a fixed-size Thrift type, 0 for the others. */
function fixedSize(t: number): number {
  switch (t) {
    case TType.BOOL: case TType.BYTE: return 1;
    case TType.I16: return 2;
    case TType.I32: return 4;
    case TType.DOUBLE: case TType.I64: return 8;
    case TType.UUID: return 16;
    default: return 0;
  }
}
/** The fewest bytes a value of a variable-size type takes: a container's declared size is checked against it. */
function minSize(t: number): number {
  switch (t) {
    case TType.STRING: return 4;
    case TType.STRUCT: return 1;
    case TType.LIST: case TType.SET: return 5;
    case TType.MAP: return 6;
    default: return fixedSize(t) || 1;
  }
}
const K_STRUCT = 0, K_LIST = 1, K_MAP = 2;

/**
 * Where a binary Thrift message ends, found by a walk that stops when the bytes run out and goes
 * on from there when more are given (the same buffer, longer). Each step reads a whole header or
 * skips a whole known length, so stopping never leaves it half-way through one.
 */
export class MessageScanner {
  /** Bytes of the message walked so far. */
  pos = 0;
  private headerDone = false;
  private want = -1; // the type of the value at pos, or -1: the top frame says what comes next
  private depth = 0;
  private readonly kind = new Int8Array(MAX_DEPTH + 1);
  private readonly t1 = new Int16Array(MAX_DEPTH + 1); // list: element type; map: key | value << 8
  private readonly left = new Float64Array(MAX_DEPTH + 1); // elements (map: keys and values) to go

  constructor(private readonly max: number) {}

  reset(): void { this.pos = 0; this.headerDone = false; this.want = -1; this.depth = 0; }

  private tooLarge(need: number): LinkpollError {
    return new LinkpollError('ERR_LINKPOLL_FRAME_TOO_LARGE', `unframed message of at least ${need} bytes exceeds the ${this.max}-byte limit`);
  }

  /** The message's length once `b[0, end)` holds all of it, else -1 (call again with more). */
  scan(b: Buffer, end: number): number {
    let p = this.pos;
    try {
      if (!this.headerDone) {
        if (end < 4) return -1;
        const w = b.readInt32BE(0);
        let need: number;
        if ((w & 0xffff0000) === (0x80010000 | 0)) {
          if (end < 8) return -1;
          const n = b.readInt32BE(4);
          if (n < 0) throw protocolError(`negative method name length ${n}`);
          need = 8 + n + 4;
        } else {
          if (w < 0 || w > MAX_OLD_NAME) throw protocolError(`not a binary Thrift message (first word 0x${(w >>> 0).toString(16).padStart(8, '0')})`);
          need = 4 + w + 1 + 4;
        }
        if (need > this.max) throw this.tooLarge(need);
        if (end < need) return -1;
        p = need;
        this.headerDone = true;
        this.want = TType.STRUCT;
      }
      for (;;) {
        let t = this.want;
        if (t < 0) {
          const d = this.depth - 1;
          const k = this.kind[d]!;
          if (k === K_STRUCT) {
            if (p + 1 > end) return -1;
            t = b[p]!;
            if (t === TType.STOP) {
              p += 1;
              if (--this.depth === 0) return p;
              continue;
            }
            if (p + 3 > end) return -1;
            p += 3;
          } else {
            if (this.left[d] === 0) {
              if (--this.depth === 0) return p; // (a container is never the outermost value)
              continue;
            }
            const types = this.t1[d]!;
            t = k === K_LIST ? types : (this.left[d]! % 2 === 0 ? types & 0xff : types >> 8);
            this.left[d]!--;
          }
          this.want = t;
        }
        // A value of type t at p.
        const fixed = fixedSize(t);
        if (fixed > 0) {
          if (p + fixed > end) return -1;
          p += fixed;
        } else if (t === TType.STRING) {
          if (p + 4 > end) return -1;
          const n = b.readInt32BE(p);
          if (n < 0) throw protocolError(`negative length ${n}`);
          if (p + 4 + n > this.max) throw this.tooLarge(p + 4 + n);
          if (p + 4 + n > end) return -1;
          p += 4 + n;
        } else if (t === TType.STRUCT) {
          this.push(K_STRUCT, 0, 0);
          this.want = -1;
          continue;
        } else if (t === TType.LIST || t === TType.SET) {
          if (p + 5 > end) return -1;
          const et = b[p]!, n = b.readInt32BE(p + 1);
          if (n < 0) throw protocolError(`negative container size ${n}`);
          const size = fixedSize(et);
          if (p + 5 + n * (size || minSize(et)) > this.max) throw this.tooLarge(p + 5 + n * (size || minSize(et)));
          if (size > 0) {
            if (p + 5 + n * size > end) return -1; // the whole run of fixed-size elements, skipped at once
            p += 5 + n * size;
          } else {
            if (!validType(et)) throw protocolError(`unknown element type ${et}`);
            p += 5;
            this.push(K_LIST, et, n);
            this.want = -1;
            continue;
          }
        } else if (t === TType.MAP) {
          if (p + 6 > end) return -1;
          const kt = b[p]!, vt = b[p + 1]!, n = b.readInt32BE(p + 2);
          if (n < 0) throw protocolError(`negative container size ${n}`);
          const ks = fixedSize(kt), vs = fixedSize(vt);
          if (n > 0 && (!validType(kt) || !validType(vt))) throw protocolError(`unknown map types ${kt}/${vt}`);
          if (p + 6 + n * ((ks || minSize(kt)) + (vs || minSize(vt))) > this.max) throw this.tooLarge(p + 6 + n * ((ks || minSize(kt)) + (vs || minSize(vt))));
          if (ks > 0 && vs > 0) {
            if (p + 6 + n * (ks + vs) > end) return -1;
            p += 6 + n * (ks + vs);
          } else {
            p += 6;
            this.push(K_MAP, kt | (vt << 8), 2 * n);
            this.want = -1;
            continue;
          }
        } else {
          throw protocolError(`unknown field type ${t}`);
        }
        this.want = -1;
        if (this.depth === 0) return p;
      }
    } finally {
      this.pos = p;
    }
  }

  private push(kind: number, types: number, n: number): void {
    if (this.depth >= MAX_DEPTH) throw protocolError(`nesting deeper than ${MAX_DEPTH}`);
    this.kind[this.depth] = kind;
    this.t1[this.depth] = types;
    this.left[this.depth] = n;
    this.depth++;
  }
}

function validType(t: number): boolean {
  return t === TType.BOOL || t === TType.BYTE || t === TType.DOUBLE || t === TType.I16 || t === TType.I32 ||
    t === TType.I64 || t === TType.STRING || t === TType.STRUCT || t === TType.MAP || t === TType.SET ||
    t === TType.LIST || t === TType.UUID;
}

/** A message that fits in this much of the reader is walked in place (a view, no copy). */
const IN_PLACE = 64 * 1024;

/**
 * Cuts whole messages out of an unframed binary stream. A message declaring more than `max` bytes
 * is refused (ERR_LINKPOLL_FRAME_TOO_LARGE) as soon as its declared sizes say so.
 */
export class UnframedCutter {
  private readonly scanner: MessageScanner;
  // A message that did not arrive whole: its bytes so far, copied out of the reader.
  private acc: Buffer | undefined;
  private accLen = 0;
  private handedOut = 0; // bytes of acc given out by the last next(): dropped on the next call
  /** Since when (Date.now()) the message being cut has been incomplete; 0 when none is. */
  pendingSince = 0;

  constructor(private readonly max: number) { this.scanner = new MessageScanner(max); }

  /**
   * The next whole message, consumed from `r`: a view, valid until `r.release()` or the next
   * call; or null until more bytes arrive. Throws ERR_LINKPOLL_PROTOCOL or ERR_LINKPOLL_FRAME_TOO_LARGE.
   */
  next(r: LinkBuffer): Buffer | null {
    if (this.acc === undefined) {
      if (r.length === 0) return null;
      // A small window first: peek() copies when the bytes span two reads, and most messages
      // are small. A message that does not end in it is looked for in a larger one.
      for (let n = Math.min(r.length, 1024); ; n = Math.min(r.length, n * 8)) {
        this.scanner.reset();
        const end = this.scanner.scan(r.peek(n), n);
        if (end >= 0) return r.next(end);
        if (n === r.length || n >= IN_PLACE) break;
      }
      if (this.pendingSince === 0) this.pendingSince = Date.now();
      this.acc = Buffer.allocUnsafe(Math.max(2 * r.length, IN_PLACE * 2));
      this.accLen = 0; // the scanner keeps its place: the bytes are copied, not moved
    } else if (this.handedOut > 0) {
      // The message handed out last time is done with: what followed it starts the next one.
      this.acc.copyWithin(0, this.handedOut, this.accLen);
      this.accLen -= this.handedOut;
      this.handedOut = 0;
      this.scanner.reset();
    }
    this.take(r);
    const end = this.scanner.scan(this.acc, this.accLen);
    if (end < 0) {
      if (this.pendingSince === 0) this.pendingSince = Date.now();
      return null;
    }
    this.pendingSince = 0;
    const msg = this.acc.subarray(0, end);
    if (end === this.accLen) {
      this.acc = undefined; // nothing after it: back to walking in place
      this.accLen = 0;
    } else {
      this.handedOut = end;
    }
    return msg;
  }

  // Copies what the reader holds onto the end of acc (which grows by doubling) and consumes it.
  private take(r: LinkBuffer): void {
    const n = r.length;
    if (n === 0) return;
    if (this.accLen + n > this.acc!.length) {
      if (this.accLen + n > this.max + IN_PLACE) throw new LinkpollError('ERR_LINKPOLL_FRAME_TOO_LARGE', `unframed message exceeds the ${this.max}-byte limit`);
      const grown = Buffer.allocUnsafe(Math.min(Math.max(2 * this.acc!.length, this.accLen + n), this.max + IN_PLACE));
      this.acc!.copy(grown, 0, 0, this.accLen);
      this.acc = grown;
    }
    const chunk = r.peek(n);
    chunk.copy(this.acc!, this.accLen);
    this.accLen += n;
    r.skip(n);
  }
}
