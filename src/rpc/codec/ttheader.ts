// Kitex TTHeader framing (magic 0x1000):
//   LENGTH u32 | MAGIC 0x1000 | FLAGS u16 | SEQID u32 | HEADER SIZE u16 (4-byte words, from
//   offset 14) | PROTOCOL ID u8 (0 = binary) | NUM TRANSFORMS u8 | TRANSFORM IDs | INFO blocks
//   (0x01 string KV, 0x10 int KV, 0x11 ACL token, 0x00 padding) | payload (Thrift message,
//   unframed or u32-framed).
// Apache THeader (magic 0x0FFF, doc/specs/HeaderFormat.md of Apache Thrift) has the same fixed
// part; after it every number is a varint: PROTOCOL ID, NUM TRANSFORMS, then info blocks of which
// only 0x01 (string KV: count, then varint-length keys and values) is defined. Readers of that
// format stop at an info id they do not know (Apache's C++, Java, Python and Node all do), so
// this one does too.
import { Buffer } from 'node:buffer';
import { TRANSFORM_ZLIB } from './transforms';
import { getI32, protocolError, putU32, ThriftWriter } from './thrift';

/** @internal What a peer speaking Thrift's compact protocol is told (here, and by transport detection). */
export const COMPACT_PROTOCOL = 'Thrift compact protocol is not supported (binary only)';

export const TTHEADER_MAGIC = 0x1000;
/** FLAGS bit a Kitex client sets when it accepts replies in any order (matched by seqid). */
export const FLAG_SUPPORT_OUT_OF_ORDER = 0x01;
/** Apache THeader's magic (a different header encoding; see above). */
export const APACHE_THEADER_MAGIC = 0x0fff;
const INFO_PADDING = 0x00, INFO_KV = 0x01, INFO_INT_KV = 0x10, INFO_ACL = 0x11;

/** Kitex's integer header keys. */
export const IntKey = {
  TransportType: 1, LogID: 2, FromService: 3, FromCluster: 4, FromIDC: 5, ToService: 6,
  ToCluster: 7, ToIDC: 8, ToMethod: 9, Env: 10, DestAddress: 11, RPCTimeout: 12, ReadTimeout: 13,
  RingHashKey: 14, DDPTag: 15, WithMeshHeader: 16, ConnectTimeout: 17, SpanContext: 18,
  ShortConnection: 19, FromMethod: 20, StressTag: 21, MsgType: 22, HTTPContentType: 23,
} as const;

const NO_INT: ReadonlyMap<number, string> = new Map();
const NO_STR: ReadonlyMap<string, string> = new Map();

/**
 * A parsed TTHeader. The info blocks are checked when the frame is parsed but decoded into maps
 * only when read: most servers never look at most headers.
 */
export class HeaderInfo {
  private ints: ReadonlyMap<number, string> | undefined;
  private strs: ReadonlyMap<string, string> | undefined;
  private acl: string | undefined;
  constructor(
    readonly flags: number,
    readonly seqid: number,
    /** Where the Thrift message is in the frame. */
    readonly payloadStart: number,
    readonly payloadEnd: number,
    private frame: Buffer | undefined,
    private readonly infoStart: number,
    private readonly infoEnd: number,
    /** Apache THeader (0x0FFF) rather than Kitex TTHeader. */
    readonly apache = false,
  ) {}
  /** How many times the payload is zlib-compressed (Apache THeader transforms): 0 for none. */
  transforms = 0;
  /** @internal Re-points a parser's scratch header at another frame (no object per frame). */
  _set(flags: number, seqid: number, payloadStart: number, payloadEnd: number, frame: Buffer, infoStart: number, infoEnd: number, apache: boolean): this {
    const w = this as unknown as Mutable<HeaderInfo> & { frame: Buffer | undefined; infoStart: number; infoEnd: number };
    w.flags = flags; w.seqid = seqid; w.payloadStart = payloadStart; w.payloadEnd = payloadEnd;
    w.frame = frame; w.infoStart = infoStart; w.infoEnd = infoEnd; w.apache = apache;
    this.transforms = 0;
    this.ints = undefined; this.strs = undefined; this.acl = undefined;
    return this;
  }
  /**
   * The headers decoded into a HeaderInfo of their own. The frame is a view of read memory that
   * is recycled after the batch it came in (and a parser's scratch header is reused for the next
   * frame): whatever keeps the header longer (a handler's context) keeps this copy.
   */
  keep(): HeaderInfo {
    if (!this.ints) this.decode();
    const h = new HeaderInfo(this.flags, this.seqid, this.payloadStart, this.payloadEnd, undefined, 0, 0, this.apache);
    h.ints = this.ints; h.strs = this.strs; h.acl = this.acl;
    h.transforms = this.transforms;
    return h;
  }
  get intKV(): ReadonlyMap<number, string> { if (!this.ints) this.decode(); return this.ints!; }
  get strKV(): ReadonlyMap<string, string> { if (!this.strs) this.decode(); return this.strs!; }
  get aclToken(): string | undefined { if (!this.ints) this.decode(); return this.acl; }
  private decode(): void {
    const f = this.frame!;
    if (this.infoStart >= this.infoEnd || f[this.infoStart] === INFO_PADDING) {
      this.ints = NO_INT; // no info blocks (a reply, usually): nothing to walk
      this.strs = NO_STR;
      return;
    }
    let ints = NO_INT as Map<number, string>;
    let strs = NO_STR as Map<string, string>;
    (this.apache ? walkApacheInfo : walkInfo)(f, this.infoStart, this.infoEnd, {
      int: (k, v) => { if (ints === NO_INT) ints = new Map(); ints.set(k, v); },
      str: (k, v) => { if (strs === NO_STR) strs = new Map(); strs.set(k, v); },
      acl: (t) => { this.acl = t; },
    });
    this.ints = ints;
    this.strs = strs;
  }
}
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface InfoSink { int(k: number, v: string): void; str(k: string, v: string): void; acl(t: string): void }

// Walks the info blocks of [p, end); with no sink it only checks them (throws on anything wrong).
// Every request runs the check, so it reads the bytes inline (no closure per call: 190 -> ~50 ns
// for the headers a Kitex client sends).
function walkInfo(f: Buffer, p: number, end: number, sink?: InfoSink): void {
  while (p < end) {
    const id = f[p++]!;
    if (id === INFO_PADDING) break;
    if (id !== INFO_KV && id !== INFO_INT_KV && id !== INFO_ACL) throw protocolError(`unknown TTHeader info id 0x${id.toString(16)}`);
    let n = 1;
    if (id !== INFO_ACL) {
      if (p + 2 > end) throw protocolError('TTHeader info block runs past the header');
      n = (f[p]! << 8) | f[p + 1]!;
      p += 2;
    }
    for (; n > 0; n--) {
      // A key (a string, or a u16 for int KV) then a value string; ACL is one string.
      let key: string | number | undefined;
      if (id === INFO_INT_KV) {
        if (p + 2 > end) throw protocolError('TTHeader info block runs past the header');
        key = (f[p]! << 8) | f[p + 1]!;
        p += 2;
      } else if (id === INFO_KV) {
        if (p + 2 > end) throw protocolError('TTHeader info block runs past the header');
        const kn = (f[p]! << 8) | f[p + 1]!;
        p += 2;
        if (p + kn > end) throw protocolError('TTHeader string runs past the header');
        if (sink) key = f.toString('utf8', p, p + kn);
        p += kn;
      }
      if (p + 2 > end) throw protocolError('TTHeader info block runs past the header');
      const vn = (f[p]! << 8) | f[p + 1]!;
      p += 2;
      if (p + vn > end) throw protocolError('TTHeader string runs past the header');
      if (sink) {
        const v = f.toString('utf8', p, p + vn);
        if (id === INFO_INT_KV) sink.int(key as number, v);
        else if (id === INFO_KV) sink.str(key as string, v);
        else sink.acl(v);
      }
      p += vn;
    }
  }
}

// A varint of the Apache header (unsigned LEB128, at most 5 bytes for 32 bits).
function varint(f: Buffer, at: { p: number }, end: number): number {
  let v = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at.p >= end) throw protocolError('THeader varint runs past the header');
    const b = f[at.p++]!;
    v += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) {
      if (v > 0xffffffff) break;
      return v;
    }
  }
  throw protocolError('THeader varint is longer than 32 bits');
}

// Apache THeader's info blocks (varint-encoded string KVs); the same contract as walkInfo.
function walkApacheInfo(f: Buffer, p: number, end: number, sink?: InfoSink): void {
  const at = { p };
  while (at.p < end) {
    const id = varint(f, at, end);
    if (id !== INFO_KV) break; // padding, or an id this format's readers skip
    for (let n = varint(f, at, end); n > 0; n--) {
      const kn = varint(f, at, end);
      if (at.p + kn > end) throw protocolError('THeader string runs past the header');
      const key = sink ? f.toString('utf8', at.p, at.p + kn) : '';
      at.p += kn;
      const vn = varint(f, at, end);
      if (at.p + vn > end) throw protocolError('THeader string runs past the header');
      if (sink) sink.str(key, f.toString('utf8', at.p, at.p + vn));
      at.p += vn;
    }
  }
}

/**
 * Parses a whole TTHeader or Apache THeader frame (starting at its LENGTH): all of `f`, or bytes
 * [start, end) of it; the offsets in the result are positions in `f`. Throws ERR_LINKPOLL_PROTOCOL.
 * With `into`, that header is filled in and returned (a parser's scratch header: valid until the
 * next frame; keep() copies it). `checked`: the frame passed native/framer.h's TTHeaderWellFormed,
 * which makes every check below (Kitex TTHeader only): they are skipped.
 */
export function parseTTHeader(f: Buffer, start = 0, end = f.length, into?: HeaderInfo, checked = false): HeaderInfo {
  if (checked) {
    const hend = start + 14 + ((f[start + 12]! << 8) | f[start + 13]!) * 4;
    let ps = hend, pe = end;
    if (f[ps] !== 0x80) { pe = ps + 4 + (getI32(f, ps) >>> 0); ps += 4; } // u32-framed payload
    const flags = (f[start + 6]! << 8) | f[start + 7]!;
    if (into !== undefined) return into._set(flags, getI32(f, start + 8), ps, pe, f, start + 16, hend, false);
    return new HeaderInfo(flags, getI32(f, start + 8), ps, pe, f, start + 16, hend, false);
  }
  const len = end - start;
  if (len < 16) throw protocolError(`TTHeader frame of ${len} bytes is too short`);
  const magic = (f[start + 4]! << 8) | f[start + 5]!;
  const apache = magic === APACHE_THEADER_MAGIC;
  if (magic !== TTHEADER_MAGIC && !apache) throw protocolError(`TTHeader magic 0x${magic.toString(16)}, want 0x1000 (or Apache's 0x0fff)`);
  const flags = (f[start + 6]! << 8) | f[start + 7]!;
  const seqid = getI32(f, start + 8);
  const hend = start + 14 + ((f[start + 12]! << 8) | f[start + 13]!) * 4;
  if (hend > end || hend < start + 16) throw protocolError(`TTHeader header of ${hend - start - 14} bytes does not fit its ${len}-byte frame`);
  // Protocol id and transform count: one byte each in TTHeader; varints in Apache's, where the
  // only accepted values (0 and 0) are the same single byte.
  const proto = f[start + 14];
  if (proto !== 0) throw protocolError(proto === 2 ? COMPACT_PROTOCOL : `unknown TTHeader protocol id ${proto}`);
  const ntrans = f[start + 15];
  let infoStart = start + 16;
  let transforms = 0;
  if (ntrans !== 0) {
    // The transform ids follow the count, varints in Apache's format and bytes in TTHeader: for
    // the one id read (zlib, 1) and counts below 128 the bytes are the same.
    const at = { p: start + 15 };
    const n = apache ? varint(f, at, hend) : f[at.p++]!;
    if (n > MAX_TRANSFORMS) throw protocolError(`THeader lists ${n} transforms (at most ${MAX_TRANSFORMS} are taken)`);
    for (let k = 0; k < n; k++) {
      if (at.p >= hend) throw protocolError('THeader transform list runs past its header');
      const id = apache ? varint(f, at, hend) : f[at.p++]!;
      if (id !== TRANSFORM_ZLIB) throw protocolError(`THeader transform ${id} is not supported (zlib, 1, is)`);
      transforms++;
    }
    infoStart = at.p;
  }
  if (apache) walkApacheInfo(f, infoStart, hend);
  else walkInfo(f, infoStart, hend); // checked now, decoded into maps only when read
  let payloadStart = hend;
  let payloadEnd = end;
  if (transforms !== 0) {
    // compressed: inflated by whoever reads the message (inflatePayload), with its size limit
  } else if (payloadEnd - payloadStart >= 2 && f[payloadStart] === 0x80 && f[payloadStart + 1] === 0x01) {
    // unframed payload
  } else if (payloadEnd - payloadStart >= 8 && f[payloadStart + 4] === 0x80 && f[payloadStart + 5] === 0x01) {
    const inner = getI32(f, payloadStart) >>> 0;
    if (inner > payloadEnd - payloadStart - 4) throw protocolError('TTHeader inner frame is longer than its payload');
    payloadStart += 4;
    payloadEnd = payloadStart + inner;
  } else {
    throw protocolError('TTHeader payload is not a strict binary Thrift message');
  }
  const h = into !== undefined ? into._set(flags, seqid, payloadStart, payloadEnd, f, infoStart, hend, apache)
    : new HeaderInfo(flags, seqid, payloadStart, payloadEnd, f, infoStart, hend, apache);
  h.transforms = transforms;
  return h;
}

/** More transforms than this in one header is not a real peer's. */
const MAX_TRANSFORMS = 4;

/**
 * A whole TTHeader (or, with APACHE_THEADER_MAGIC, Apache THeader) frame around `payload`, the
 * Thrift message, zlib-compressed when `zlib`; `info` is the encoded header (infoBlocks or
 * apacheInfoBlocks), none for an empty one.
 */
export function headerFrame(magic: number, seqid: number, flags: number, info: Buffer | undefined, payload: Buffer, zlib: boolean): Buffer {
  let head = info ?? EMPTY_INFO;
  if (zlib) {
    // One transform, zlib: the count and the id are the byte 1 in both formats. The blocks after
    // them move by two bytes; the header is padded to 4 again (0 is padding in both).
    const len = head.length + 2;
    const padded = Buffer.alloc(len + ((4 - (len % 4)) % 4));
    padded[0] = head[0]!;
    padded[1] = 1;
    padded[2] = TRANSFORM_ZLIB;
    head.copy(padded, 3, 2);
    head = padded;
  }
  const hlen = head.length;
  if (hlen > 0xffff * 4) throw new RangeError(`TTHeader headers of ${hlen} bytes exceed the format's 256 KiB`);
  const out = Buffer.allocUnsafe(14 + hlen + payload.length);
  out.writeUInt32BE(10 + hlen + payload.length, 0);
  out.writeUInt16BE(magic, 4);
  out.writeUInt16BE(flags, 6);
  out.writeInt32BE(seqid, 8);
  out.writeUInt16BE(hlen / 4, 12);
  head.copy(out, 14);
  payload.copy(out, 14 + hlen);
  return out;
}
const EMPTY_INFO = Buffer.alloc(4);

/**
 * Writes LENGTH (patched by endFrame), the fixed header and the info blocks; the Thrift message
 * follows. Returns the frame's offset (see ThriftWriter.offset).
 */
export function beginTTHeader(w: ThriftWriter, seqid: number, intKV?: Map<number, string> | [number, string][],
  strKV?: Map<string, string> | [string, string][], encodedInfo?: Buffer, flags = 0, magic = TTHEADER_MAGIC): number {
  const start = w.offset;
  const apache = magic === APACHE_THEADER_MAGIC;
  const info = encodedInfo ?? (apache
    ? (strKV && (strKV instanceof Map ? strKV.size : strKV.length) ? apacheInfoBlocks(strKV) : undefined)
    : (intKV && (intKV instanceof Map ? intKV.size : intKV.length)) || (strKV && (strKV instanceof Map ? strKV.size : strKV.length))
      ? infoBlocks(intKV, strKV) : undefined);
  const hlen = info ? info.length : 4; // protocol, transforms, padding
  if (hlen > 0xffff * 4) throw new RangeError(`TTHeader headers of ${hlen} bytes exceed the format's 256 KiB`);
  w.ensure(14 + hlen);
  const b = w.buf;
  const p = w.pos;
  putU32(b, p, 0);
  b[p + 4] = magic >> 8; b[p + 5] = magic & 0xff;
  b[p + 6] = flags >> 8; b[p + 7] = flags;
  putU32(b, p + 8, seqid);
  b[p + 12] = hlen >> 10; b[p + 13] = hlen >> 2; // header size in 4-byte words
  if (info) {
    info.copy(b, p + 14);
  } else {
    putU32(b, p + 14, 0); // binary, no transforms, two bytes of padding
  }
  w.pos = p + 14 + hlen;
  return start;
}

/**
 * The header bytes after the fixed part: protocol id, transform count, then the KV blocks,
 * padded to 4 bytes. Callers that send the same headers often encode them once.
 */
export function infoBlocks(intKV?: Map<number, string> | [number, string][], strKV?: Map<string, string> | [string, string][]): Buffer {
  const parts: Buffer[] = [Buffer.from([0, 0])];
  const u16 = (v: number) => { const x = Buffer.allocUnsafe(2); x.writeUInt16BE(v); return x; };
  const s16 = (s: string) => { const x = Buffer.from(s); return Buffer.concat([u16(x.length), x]); };
  const ints = intKV ? [...intKV] : [];
  const strs = strKV ? [...strKV] : [];
  if (ints.length) {
    parts.push(Buffer.from([INFO_INT_KV]), u16(ints.length));
    for (const [k, v] of ints) parts.push(u16(k), s16(v));
  }
  if (strs.length) {
    parts.push(Buffer.from([INFO_KV]), u16(strs.length));
    for (const [k, v] of strs) parts.push(s16(k), s16(v));
  }
  const raw = Buffer.concat(parts);
  return Buffer.concat([raw, Buffer.alloc((4 - (raw.length % 4)) % 4)]);
}

/**
 * Apache THeader's header bytes after the fixed part: protocol id 0, no transforms, one string
 * KV block (varint lengths), padded to 4 bytes. The format has no integer keys.
 */
export function apacheInfoBlocks(strKV?: Map<string, string> | [string, string][]): Buffer {
  const out: number[] = [0, 0];
  const vint = (v: number) => { while (v >= 0x80) { out.push((v & 0x7f) | 0x80); v = Math.floor(v / 128); } out.push(v); };
  const strs = strKV ? [...strKV] : [];
  if (strs.length) {
    out.push(INFO_KV);
    vint(strs.length);
    for (const [k, v] of strs) {
      for (const s of [k, v]) { const x = Buffer.from(s); vint(x.length); for (const c of x) out.push(c); }
    }
  }
  while (out.length % 4 !== 0) out.push(0);
  return Buffer.from(out);
}

/** Patches the u32 LENGTH of the frame that began at offset `start` (TTHeader and framed alike). */
export function endFrame(w: ThriftWriter, start: number): void {
  const at = w.base + start;
  putU32(w.buf, at, w.pos - at - 4);
}
