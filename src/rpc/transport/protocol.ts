// What server and client share: service descriptions, transports, and writing one message
// into a connection's native output.
import { Buffer } from 'node:buffer';
import type { Connection } from '../../connection';
import { APACHE_THEADER_MAGIC, COMPACT_PROTOCOL, beginTTHeader, endFrame, parseTTHeader, TTHEADER_MAGIC, type HeaderInfo } from '../codec/ttheader';
import { MessageType, putU32, ThriftReader, ThriftWriter, type StructSpec } from '../codec/thrift';

/** A method of a service: its arguments and result structs (as parseIdl() makes them). */
export interface MethodSpec {
  name: string;
  /** Arguments struct (fields = the method's parameters). */
  args: StructSpec;
  /** Result struct: field 0 `success` (absent for void), then declared exceptions. */
  result: StructSpec;
  oneway?: boolean;
  /** The IDL's annotations on the method (Kitex's `api.get`, say). */
  annotations?: Record<string, string>;
  /** The IDL's doc comment on the method. */
  doc?: string;
}

/** A service: its name and methods (as parseIdl() makes them; extended services include their parents' methods). */
export interface ServiceSpec {
  name: string; methods: Record<string, MethodSpec>;
  /** The IDL's annotations on the service. */
  annotations?: Record<string, string>;
  /** The IDL's doc comment on the service. */
  doc?: string;
}

/**
 * `ttheader`: Kitex TTHeader; `theader`: Apache THeader (binary protocol, no transforms);
 * `framed`: Apache TFramedTransport; `binary`: unframed. Messages are written strict (with the
 * version word) and read in either binary format, as Apache's servers do.
 */
export type Transport = 'ttheader' | 'theader' | 'framed' | 'binary';

/** Whether frames of this transport start with a TTHeader / THeader (parsed by parseTTHeader). */
export const hasHeader = (t: Transport): boolean => t === 'ttheader' || t === 'theader';

const writer = new ThriftWriter(Buffer.alloc(0));
const MIN_ROOM = 512;

/**
 * Encodes one message in place into the connection's native staging memory (no view, no copy;
 * into a JS buffer only when it outgrows the room left) and queues it.
 */
export function writeMessage(conn: Connection, transport: Transport, seqid: number, name: string,
  type: MessageType, spec: StructSpec, value: Record<string, unknown>,
  intKV?: [number, string][], strKV?: [string, string][], encodedInfo?: Buffer, flags = 0): void {
  const w = writer;
  const staging = conn._r.stage(MIN_ROOM);
  w.reset(staging.buf, staging.pos);
  let start = -1;
  if (transport === 'ttheader') start = beginTTHeader(w, seqid, intKV, strKV, encodedInfo, flags);
  else if (transport === 'theader') start = beginTTHeader(w, seqid, undefined, strKV, encodedInfo, flags, APACHE_THEADER_MAGIC);
  else if (transport === 'framed') { start = w.offset; w.u32(0); }
  w.messageBegin(name, type, seqid);
  w.struct(spec, value); // throws before anything is queued
  if (start >= 0) endFrame(w, start);
  if (w.grown) conn.write(w.buf.subarray(0, w.pos));
  else conn._commitStaged(w.pos - w.base);
}

/**
 * The bytes of a message before its struct (the transport's header, then the Thrift message
 * header) that only the seqids vary in between messages of one method on one transport: made
 * once and copied, where writeMessage encodes them field by field.
 */
export interface MessagePrefix {
  bytes: Uint8Array;
  /** Where the seqids go: the TTHeader's (-1: none) and the message's. */
  headerSeqAt: number;
  seqAt: number;
  /** Starts with a u32 LENGTH patched once the struct is written (all but unframed binary). */
  framed: boolean;
}

/** `encodedInfo`: the header's info blocks (infoBlocks / apacheInfoBlocks), if it has any. */
export function messagePrefix(transport: Transport, name: string, type: MessageType, encodedInfo?: Buffer, flags = 0): MessagePrefix {
  const w = new ThriftWriter(Buffer.alloc(64));
  let headerSeqAt = -1;
  if (transport === 'ttheader') { beginTTHeader(w, 0, undefined, undefined, encodedInfo, flags); headerSeqAt = 8; }
  else if (transport === 'theader') { beginTTHeader(w, 0, undefined, undefined, encodedInfo, flags, APACHE_THEADER_MAGIC); headerSeqAt = 8; }
  else if (transport === 'framed') w.u32(0);
  w.messageBegin(name, type, 0);
  return { bytes: Uint8Array.prototype.slice.call(w.buf, 0, w.pos), headerSeqAt, seqAt: w.pos - 4, framed: transport !== 'binary' };
}

/** writeMessage for a message whose bytes before the struct are `p` (see messagePrefix). */
export function writePrefixed(conn: Connection, p: MessagePrefix, seqid: number, spec: StructSpec, value: Record<string, unknown>): void {
  const w = writer;
  const staging = conn._r.stage(MIN_ROOM);
  w.reset(staging.buf, staging.pos);
  const src = p.bytes, n = src.length;
  w.ensure(n);
  const b = w.buf, at = w.pos;
  b.set(src, at); // (faster on the rig than a byte loop or words through a DataView: bench/RESULTS.md)
  if (p.headerSeqAt >= 0) putU32(b, at + p.headerSeqAt, seqid);
  putU32(b, at + p.seqAt, seqid);
  w.pos = at + n;
  w.struct(spec, value); // throws before anything is queued
  if (p.framed) endFrame(w, 0);
  if (w.grown) conn.write(w.buf.subarray(0, w.pos));
  else conn._commitStaged(w.pos - w.base);
}

export interface Incoming {
  reader: ThriftReader;
  header?: HeaderInfo;
}

/** The Thrift message inside one frame of `transport`. */
export function openFrame(frame: Buffer, transport: Transport): Incoming {
  if (hasHeader(transport)) {
    const header = parseTTHeader(frame);
    return { reader: new ThriftReader(frame, header.payloadStart, header.payloadEnd), header };
  }
  return { reader: new ThriftReader(frame, transport === 'framed' ? 4 : 0, frame.length) };
}

/** Which transport a stream speaks, from its first bytes; null = need more bytes. */
export function detectTransport(head: Buffer, maxFrameSize = 0x7fffffff): Transport | 'http' | { unsupported: string } | null {
  if (head.length >= 2 && head[0] === 0x80 && head[1] === 0x01) return 'binary';
  if (head.length >= 1 && head[0] === 0x82) return { unsupported: COMPACT_PROTOCOL };
  // A TLS record: handshake (0x16), version 3.x.
  if (head.length >= 2 && head[0] === 0x16 && head[1] === 0x03) return { unsupported: 'a TLS handshake: the client uses TLS, this port speaks plain Thrift RPC' };
  if (head.length >= 4 && /^(GET |POST|PUT |HEAD|DELE|OPTI|PATC|PRI |CONN|TRAC)$/.test(head.toString('latin1', 0, 4))) return 'http';
  // TJSONProtocol's messages begin with '[1,' (version 1), unframed or after a frame's length.
  if (head.length >= 2 && head[0] === 0x5b && head[1] === 0x31) return { unsupported: JSON_PROTOCOL };
  // From here on the first word is a frame's length (or old-style binary's name length): what no
  // request can be is refused now, not left to wait for bytes that will not make it one.
  if (head.length >= 4) {
    const len = head.readUInt32BE(0);
    if (len === 0) return { unsupported: 'an empty frame (length 0)' };
    if (len + 4 > maxFrameSize) return { unsupported: `a frame of ${len + 4} bytes exceeded maxFrameSize (${maxFrameSize} bytes): it began ${head.subarray(0, Math.min(head.length, 6)).toString('hex')}` };
  }
  if (head.length < 6) return null;
  if (head[4] === 0x5b && head[5] === 0x31) return { unsupported: JSON_PROTOCOL };
  const magic = head.readUInt16BE(4);
  if (magic === TTHEADER_MAGIC) return 'ttheader';
  if (magic === 0x8001) return 'framed';
  if (magic === APACHE_THEADER_MAGIC) return 'theader';
  if (head[4] === 0x82) return { unsupported: COMPACT_PROTOCOL };
  // Thrift's original binary format (no version word; see readOldMessageHeader) starts with the
  // method name's length, which is under 64 KiB: unframed, its name follows; framed, the frame's
  // length comes first and the name's length (two zero bytes first) after it. A frame whose body
  // is neither (compressed bytes, say) must not pass for a name: every name byte seen must be one.
  if (head[0] === 0 && head[1] === 0) {
    if (head.length < 8) return null;
    if (head[4] === 0 && head[5] === 0) return 'framed';
    const nameLen = head.readUInt32BE(0);
    let name = isNameByte(head[4]!);
    for (let i = 5; name && i < Math.min(head.length, 4 + nameLen); i++) name = isNameByte(head[i]!) || isNameTail(head[i]!);
    if (name) return 'binary';
  }
  return { unsupported: `unknown protocol (first bytes ${head.subarray(0, 6).toString('hex')})` };
}

const JSON_PROTOCOL = 'Thrift JSON protocol is not supported (binary only)';

/** A byte that may begin a method name (an IDL identifier). */
const isNameByte = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
/** Bytes that may follow in a name: digits, '.' and TMultiplexedProtocol's ':' besides. */
const isNameTail = (c: number): boolean => (c >= 0x30 && c <= 0x3a) || c === 0x2e;

export { UnframedCutter, MessageScanner } from './unframed';
