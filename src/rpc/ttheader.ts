// Kitex TTHeader framing (magic 0x1000):
//   LENGTH u32 | MAGIC 0x1000 | FLAGS u16 | SEQID u32 | HEADER SIZE u16 (4-byte words, from
//   offset 14) | PROTOCOL ID u8 (0 = binary) | NUM TRANSFORMS u8 | TRANSFORM IDs | INFO blocks
//   (0x01 string KV, 0x10 int KV, 0x11 ACL token, 0x00 padding) | payload (Thrift message,
//   unframed or u32-framed).
import { protocolError, ThriftWriter } from './thrift';

export const TTHEADER_MAGIC = 0x1000;
export const APACHE_THEADER_MAGIC = 0x0fff;
const INFO_PADDING = 0x00, INFO_KV = 0x01, INFO_INT_KV = 0x10, INFO_ACL = 0x11;

/** Kitex's integer header keys. */
export const IntKey = {
  TransportType: 1, LogID: 2, FromService: 3, FromCluster: 4, FromIDC: 5, ToService: 6,
  ToCluster: 7, ToIDC: 8, ToMethod: 9, Env: 10, DestAddress: 11, RPCTimeout: 12, ReadTimeout: 13,
  RingHashKey: 14, DDPTag: 15, WithMeshHeader: 16, ConnectTimeout: 17, SpanContext: 18,
  ShortConnection: 19, FromMethod: 20, StressTag: 21, MsgType: 22, HTTPContentType: 23,
} as const;

const NO_INT: Map<number, string> = new Map();
const NO_STR: Map<string, string> = new Map();

export interface HeaderInfo {
  flags: number;
  seqid: number;
  intKV: Map<number, string>;
  strKV: Map<string, string>;
  aclToken?: string;
  /** Where the Thrift message is in the frame. */
  payloadStart: number;
  payloadEnd: number;
}

/** Parses a whole TTHeader frame (starting at its LENGTH). Throws ERR_LINKPOLL_PROTOCOL. */
export function parseTTHeader(f: Buffer): HeaderInfo {
  if (f.length < 16) throw protocolError(`TTHeader frame of ${f.length} bytes is too short`);
  const magic = f.readUInt16BE(4);
  if (magic !== TTHEADER_MAGIC) throw protocolError(`TTHeader magic 0x${magic.toString(16)}, want 0x1000`);
  const flags = f.readUInt16BE(6);
  const seqid = f.readInt32BE(8);
  const hend = 14 + f.readUInt16BE(12) * 4;
  if (hend > f.length || hend < 16) throw protocolError(`TTHeader header of ${hend - 14} bytes does not fit its ${f.length}-byte frame`);
  let p = 14;
  const proto = f[p++];
  if (proto !== 0) throw protocolError(proto === 2 ? 'Thrift compact protocol is not supported (binary only)' : `unknown TTHeader protocol id ${proto}`);
  const ntrans = f[p++];
  if (ntrans !== 0) throw protocolError(`TTHeader transforms (${ntrans}) are not supported`);
  // Most frames carry no headers: share empty maps rather than make two per frame.
  let intKV = NO_INT;
  let strKV = NO_STR;
  let aclToken: string | undefined;
  const u16 = () => {
    if (p + 2 > hend) throw protocolError('TTHeader info block runs past the header');
    const v = f.readUInt16BE(p);
    p += 2;
    return v;
  };
  const str = () => {
    const n = u16();
    if (p + n > hend) throw protocolError('TTHeader string runs past the header');
    const s = f.toString('utf8', p, p + n);
    p += n;
    return s;
  };
  while (p < hend) {
    const id = f[p++];
    if (id === INFO_PADDING) break;
    if (id === INFO_KV) {
      if (strKV === NO_STR) strKV = new Map();
      for (let n = u16(); n > 0; n--) { const k = str(); strKV.set(k, str()); }
    } else if (id === INFO_INT_KV) {
      if (intKV === NO_INT) intKV = new Map();
      for (let n = u16(); n > 0; n--) { const k = u16(); intKV.set(k, str()); }
    } else if (id === INFO_ACL) {
      aclToken = str();
    } else {
      throw protocolError(`unknown TTHeader info id 0x${id.toString(16)}`);
    }
  }
  let payloadStart = hend;
  let payloadEnd = f.length;
  if (payloadEnd - payloadStart >= 2 && f[payloadStart] === 0x80 && f[payloadStart + 1] === 0x01) {
    // unframed payload
  } else if (payloadEnd - payloadStart >= 8 && f[payloadStart + 4] === 0x80 && f[payloadStart + 5] === 0x01) {
    const inner = f.readUInt32BE(payloadStart);
    if (inner > payloadEnd - payloadStart - 4) throw protocolError('TTHeader inner frame is longer than its payload');
    payloadStart += 4;
    payloadEnd = payloadStart + inner;
  } else {
    throw protocolError('TTHeader payload is not a strict binary Thrift message');
  }
  return { flags, seqid, intKV, strKV, aclToken, payloadStart, payloadEnd };
}

/**
 * Writes LENGTH (to be patched by endFrame), the fixed header and the info blocks; the Thrift
 * message follows at w.pos. Returns the frame start.
 */
export function beginTTHeader(w: ThriftWriter, seqid: number, intKV?: Map<number, string> | [number, string][],
  strKV?: Map<string, string> | [string, string][]): number {
  const start = w.pos;
  w.u32(0);
  w.ensure(12);
  w.buf.writeUInt16BE(TTHEADER_MAGIC, w.pos);
  w.buf.writeUInt16BE(0, w.pos + 2);
  w.buf.writeInt32BE(seqid, w.pos + 4);
  const sizeAt = w.pos + 8;
  w.pos += 10;
  const hstart = w.pos;
  w.byte(0); // binary
  w.byte(0); // no transforms
  const ints = intKV ? [...intKV] : [];
  const strs = strKV ? [...strKV] : [];
  const s16 = (s: string) => {
    const b = Buffer.from(s);
    w.ensure(2 + b.length);
    w.buf.writeUInt16BE(b.length, w.pos);
    w.buf.set(b, w.pos + 2);
    w.pos += 2 + b.length;
  };
  const u16 = (v: number) => { w.ensure(2); w.buf.writeUInt16BE(v, w.pos); w.pos += 2; };
  if (ints.length) {
    w.byte(INFO_INT_KV);
    u16(ints.length);
    for (const [k, v] of ints) { u16(k); s16(v); }
  }
  if (strs.length) {
    w.byte(INFO_KV);
    u16(strs.length);
    for (const [k, v] of strs) { s16(k); s16(v); }
  }
  while ((w.pos - hstart) % 4) w.byte(INFO_PADDING);
  w.buf.writeUInt16BE((w.pos - hstart) / 4, sizeAt);
  return start;
}

/** Patches the u32 LENGTH at `start` (TTHeader and framed alike). */
export function endFrame(w: ThriftWriter, start: number): void {
  w.buf.writeUInt32BE(w.pos - start - 4, start);
}
