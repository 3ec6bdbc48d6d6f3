// Thrift binary protocol (strict): type descriptors, an encoder that writes into one contiguous
// buffer (the connection's native staging memory when it fits), and a decoder that reads from a
// frame view with every length checked against the bytes present and nesting capped.
import { Buffer } from 'node:buffer';
import { LinkpollError } from '../../errors';
import { view } from '../../view';
import { invalidArg } from '../../options';

/** Thrift type ids as they are on the wire (binary protocol). */
export const enum TType { STOP = 0, BOOL = 2, BYTE = 3, DOUBLE = 4, I16 = 6, I32 = 8, I64 = 10, STRING = 11, STRUCT = 12, MAP = 13, SET = 14, LIST = 15, UUID = 16 }
/** Thrift message types. */
export const enum MessageType { CALL = 1, REPLY = 2, EXCEPTION = 3, ONEWAY = 4 }

/** A Thrift type: a base type name, a struct, or a container. Enums are 'i32'. */
export type TypeSpec =
  | 'bool' | 'byte' | 'i16' | 'i32' | 'i64' | 'double' | 'string' | 'binary'
  /** Thrift 0.19+: 16 bytes on the wire; a string in canonical form here ('6ba7b810-9dad-11d1-80b4-00c04fd430c8'). */
  | 'uuid'
  | StructSpec
  | { list: TypeSpec } | { set: TypeSpec } | { map: [TypeSpec, TypeSpec] };

/**
 * A type as the IDL writes it, for code generators (the codec runs on TypeSpec, where typedefs
 * are resolved and enums are i32): a base type, a named definition (`name` as its own file
 * defines it), or a container of those.
 */
export type IdlType =
  | 'bool' | 'byte' | 'i16' | 'i32' | 'i64' | 'double' | 'string' | 'binary' | 'uuid'
  /** `file`: the file that defines it, when that is an included one (parseIdlFiles's names). */
  | { kind: 'enum' | 'typedef' | 'struct'; name: string; file?: string }
  | { list: IdlType } | { set: IdlType } | { map: [IdlType, IdlType] };

/** A field of a struct: id, name, type, requiredness, default. */
export interface FieldSpec {
  id: number; name: string; type: TypeSpec; required?: boolean;
  /**
   * The IDL's default value (`1: i32 n = 5`): written when the value leaves the field undefined
   * (null writes nothing), and given to a decoded struct the field is absent from (a fresh copy),
   * as Apache Thrift's and Kitex's generated structs start out with it.
   */
  default?: unknown;
  /** The IDL's annotations on the field (`(go.tag = "...")`), name -> value ('' for a bare name). */
  annotations?: Record<string, string>;
  /** The type as the IDL writes it (typedef and enum names kept), for code generators. */
  declared?: IdlType;
  /** The IDL's doc comment on the field. */
  doc?: string;
}
/** A struct, union or exception: its name and fields (as parseIdl() makes them). */
export interface StructSpec {
  name: string; fields: FieldSpec[]; /** set for exception types */ exception?: boolean;
  /** Set for unions: exactly one field is set (encoding none or two is an error, as Apache's and Kitex's code insist). */
  union?: boolean;
  /**
   * For exceptions: the class generated code defines for this type (extending ThriftException).
   * A client rejects with an instance of it when a reply carries this exception.
   */
  exceptionClass?: new (fields: Record<string, unknown>) => Error;
  /** The IDL's annotations on the struct. */
  annotations?: Record<string, string>;
  /** The IDL's doc comment on the struct. */
  doc?: string;
}

export const MAX_DEPTH = 64;

// Node's Buffer has these (undocumented, stable for years) without the argument checks of
// write()/toString(): they matter on a per-field path.
interface RawBuffer extends Buffer {
  latin1Write(s: string, offset: number): number;
  utf8Write(s: string, offset: number): number;
  utf8Slice(start: number, end: number): string;
}


export function protocolError(message: string): LinkpollError {
  return new LinkpollError('ERR_LINKPOLL_PROTOCOL', message);
}

interface CompiledField { id: number; name: string; type: TypeSpec; wire: TType; required: boolean }
const compiled = new WeakMap<StructSpec, CompiledField[]>();
/** A struct's fields with their wire types worked out once (the codec's per-field work). */
function fieldsOf(s: StructSpec): CompiledField[] {
  let c = compiled.get(s);
  if (!c) {
    c = s.fields.map((f) => ({ id: f.id, name: f.name, type: f.type, wire: ttypeOf(f.type), required: !!f.required }));
    compiled.set(s, c);
  }
  return c;
}

export function ttypeOf(t: TypeSpec): TType {
  if (typeof t === 'string') {
    switch (t) {
      case 'bool': return TType.BOOL;
      case 'byte': return TType.BYTE;
      case 'i16': return TType.I16;
      case 'i32': return TType.I32;
      case 'i64': return TType.I64;
      case 'double': return TType.DOUBLE;
      case 'uuid': return TType.UUID;
      default: return TType.STRING;
    }
  }
  if ('fields' in t) return TType.STRUCT;
  if ('list' in t) return TType.LIST;
  if ('set' in t) return TType.SET;
  return TType.MAP;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Writes the Thrift binary protocol into a Buffer, growing it (into a new one) when it runs out of room. */
export class ThriftWriter {
  buf: Buffer;
  pos = 0;
  /** Where this message starts in `buf` (messages are encoded in place into shared memory). */
  base = 0;
  /** True once the output outgrew the memory it started in (then `buf` is ours, from 0). */
  grown = false;

  constructor(buf: Buffer) { this.buf = buf; }

  /** Writes into buf from offset `at` on. */
  reset(buf: Buffer, at = 0): void { this.buf = buf; this.pos = at; this.base = at; this.grown = false; }

  /** Makes room for n more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n); // the rare path apart, so this one inlines
  }

  private grow(n: number): void {
    const used = this.pos - this.base;
    let cap = Math.max(256, used * 2);
    while (cap < used + n) cap *= 2;
    const nb = Buffer.allocUnsafe(cap);
    this.buf.copy(nb, 0, this.base, this.pos);
    this.buf = nb;
    this.pos = used;
    this.base = 0;
    this.grown = true;
  }

  /** Bytes written since reset, for code that patches a length later (survives growing). */
  get offset(): number { return this.pos - this.base; }

  /** Writes a byte. */
  byte(v: number): void { this.ensure(1); this.buf[this.pos++] = v & 0xff; }
  // Integers are stored byte by byte: Buffer's writeInt*BE validate their arguments again on a
  // path that runs several times per message (their checkInt showed in profiles).
  /** Writes an i16. */
  i16(v: number): void {
    if (v !== (v << 16) >> 16) throw outOfRange('i16', v);
    this.ensure(2);
    const b = this.buf, p = this.pos;
    b[p] = v >> 8; b[p + 1] = v;
    this.pos = p + 2;
  }
  /** Writes an i32. */
  i32(v: number): void {
    if (v !== (v | 0)) throw outOfRange('i32', v);
    this.ensure(4);
    putU32(this.buf, this.pos, v);
    this.pos += 4;
  }
  /** Writes a uint32 (big-endian), as length prefixes are. */
  u32(v: number): void { this.ensure(4); putU32(this.buf, this.pos, v); this.pos += 4; }
  /** Writes an i64. */
  i64(v: bigint | number): void {
    if (typeof v === 'number' && !Number.isInteger(v)) throw outOfRange('i64', v);
    this.ensure(8);
    this.buf.writeBigInt64BE(typeof v === 'bigint' ? v : BigInt(v), this.pos);
    this.pos += 8;
  }
  /** Writes a double. */
  double(v: number): void { this.ensure(8); this.buf.writeDoubleBE(v, this.pos); this.pos += 8; }
  /** Writes a string (UTF-8, length first). */
  string(s: string): void {
    const max = s.length * 3;
    this.ensure(4 + max);
    const b = this.buf as RawBuffer;
    const at = this.pos + 4;
    let n = -1;
    if (s.length <= 16) {
      // Short ASCII: byte by byte here costs less than a call into C++.
      n = s.length;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) { n = -1; break; }
        b[at + i] = c;
      }
    }
    if (n < 0) n = s.length < 64 && isAscii(s) ? b.latin1Write(s, at) : b.utf8Write(s, at);
    putU32(b, this.pos, n);
    this.pos = at + n;
  }
  /** Writes binary (length first). */
  binary(b: Uint8Array): void {
    this.ensure(4 + b.length);
    putU32(this.buf, this.pos, b.length);
    this.buf.set(b, this.pos + 4);
    this.pos += 4 + b.length;
  }
  /** Writes bytes as they are. */
  raw(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.pos); this.pos += b.length; }

  /** Writes a strict message header. */
  messageBegin(name: string, type: MessageType, seqid: number): void {
    this.u32(0x80010000 | type);
    this.string(name);
    this.i32(seqid);
  }

  /** Writes a value of type t; `path` names it in errors (Struct.field). */
  value(t: TypeSpec, v: unknown, path: string): void {
    if (typeof t === 'string') {
      switch (t) {
        case 'bool': this.byte(v ? 1 : 0); return;
        case 'byte': this.byte(num(v, path)); return;
        case 'i16': this.i16(num(v, path)); return;
        case 'i32': this.i32(num(v, path)); return;
        case 'i64':
          if (typeof v !== 'bigint' && typeof v !== 'number') throw typeError(path, 'bigint', v);
          this.i64(v); return;
        case 'double': this.double(num(v, path)); return;
        case 'string':
          if (typeof v === 'string') this.string(v);
          else if (v instanceof Uint8Array) this.binary(v);
          else throw typeError(path, 'string', v);
          return;
        case 'binary':
          if (v instanceof Uint8Array) this.binary(v);
          else if (typeof v === 'string') this.string(v);
          else throw typeError(path, 'Buffer', v);
          return;
        case 'uuid': this.uuid(v, path); return;
      }
    }
    if ('fields' in t) { this.struct(t, v as Record<string, unknown>, path); return; }
    if ('map' in t) {
      if (!(v instanceof Map)) throw typeError(path, 'Map', v);
      const [kt, vt] = t.map;
      this.byte(ttypeOf(kt)); this.byte(ttypeOf(vt)); this.i32(v.size);
      for (const [k, x] of v) { this.value(kt, k, path); this.value(vt, x, path); }
      return;
    }
    const et = 'list' in t ? t.list : t.set;
    const items = v instanceof Set ? [...v] : v;
    if (!Array.isArray(items)) throw typeError(path, 'Array', v);
    this.byte(ttypeOf(et)); this.i32(items.length);
    for (let i = 0; i < items.length; i++) this.value(et, items[i], path);
  }

  /** Writes a struct of the given description (TypeError/RangeError naming the field when a value does not fit its type). */
  struct(s: StructSpec, v: Record<string, unknown>, path?: string): void {
    encoderOf(s)(this, v, path);
  }

  /** A uuid: 16 bytes, from its canonical string form (hex, hyphens optional, any case). */
  uuid(v: unknown, path?: string): void {
    const hex = typeof v === 'string' ? v.replace(/-/g, '') : '';
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw typeError(path ?? 'uuid', 'uuid string', v);
    this.raw(Buffer.from(hex, 'hex'));
  }

  /** A field header: wire type and id. */
  field(wire: TType, id: number): void {
    this.ensure(3);
    const b = this.buf, p = this.pos;
    b[p] = wire;
    b[p + 1] = (id >> 8) & 0xff;
    b[p + 2] = id & 0xff;
    this.pos = p + 3;
  }

  /** A string field's value: a string, or bytes as they are. */
  stringOrBytes(x: unknown, path: string, want: string): void {
    if (typeof x === 'string') this.string(x);
    else if (x instanceof Uint8Array) this.binary(x);
    else throw typeError(path, want, x);
  }
}

// Error paths live apart from the hot functions that detect them: their message building would
// otherwise count against V8's inlining budget for the request path.
function badMessageWord(w: number): LinkpollError {
  if ((w & 0xffff0000) !== (0x80010000 | 0)) {
    return protocolError(`not a binary Thrift message (first word 0x${(w >>> 0).toString(16).padStart(8, '0')})`);
  }
  return protocolError(`unknown message type ${w & 0xff}`);
}

/**
 * A message header without the version word (Thrift's original binary format, which Apache's
 * servers still accept by default and some old clients write): name length, name, type byte,
 * seqid. `w` is the word already read.
 */
function readOldMessageHeader(r: ThriftReader, w: number): void {
  if (w < 0 || w > MAX_OLD_NAME) throw badMessageWord(w);
  r.pos -= 4; // string() reads the length again
  const name = r.string();
  const type = r.byte() as MessageType;
  if (type < 1 || type > 4) throw protocolError(`unknown message type ${type}`);
  r.msgName = name;
  r.msgSeqid = r.i32();
  r.msgType = type;
}
/** Longer names in the old format are taken for a stream that is not Thrift at all. */
export const MAX_OLD_NAME = 0xffff;

/** Stores v (an i32 or u32) big-endian at p; the caller has checked the room. */
export function putU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v >>> 24; b[p + 1] = v >>> 16; b[p + 2] = v >>> 8; b[p + 3] = v;
}
/** Reads a big-endian i32 at p; the caller has checked the bytes are there. */
export function getI32(b: Uint8Array, p: number): number {
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}
function outOfRange(type: string, v: number): RangeError {
  const e = new RangeError(`value ${v} is not an ${type}`);
  (e as NodeJS.ErrnoException).code = 'ERR_OUT_OF_RANGE';
  return e;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
function num(v: unknown, path: string): number {
  if (typeof v !== 'number') throw typeError(path, 'number', v);
  return v;
}
function typeError(path: string, want: string, got: unknown): TypeError {
  const e = new TypeError(`${path}: expected ${want}, got ${got === null ? 'null' : typeof got}`);
  (e as NodeJS.ErrnoException).code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** A message's name, type and sequence id. */
export interface MessageHeader { name: string; type: MessageType; seqid: number }

const SMALL_COPY = 256, SLAB_SIZE = 16 * 1024;
let slab = new ArrayBuffer(SLAB_SIZE), slabU8 = new Uint8Array(slab), slabPos = 0;

// Short ASCII strings seen lately, by slot: their bytes as four big-endian words and a length,
// and the string (see ThriftReader.string).
const INTERN_BITS = 10, INTERN_SLOTS = 1 << INTERN_BITS;
const internW0 = new Int32Array(INTERN_SLOTS), internW1 = new Int32Array(INTERN_SLOTS);
const internW2 = new Int32Array(INTERN_SLOTS), internW3 = new Int32Array(INTERN_SLOTS);
const internLen = new Int32Array(INTERN_SLOTS).fill(-1);
const internStr: string[] = new Array<string>(INTERN_SLOTS).fill('');

function internalize(s: string): string {
  const o: Record<string, number> = { [s]: 0 };
  for (const k in o) return k;
  return s;
}

/** Reads the Thrift binary protocol from a Buffer, every length checked against its end (ERR_LINKPOLL_PROTOCOL when the bytes do not fit). */
export class ThriftReader {
  buf: Buffer;
  pos: number;
  end: number;
  private depth = 0;
  /** Where the message begins in buf: error offsets count from here (the buffer may be shared). */
  private start: number;

  constructor(buf: Buffer, pos = 0, end = buf.length) { this.buf = buf; this.pos = pos; this.end = end; this.start = pos; }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) {
      throw protocolError(`truncated message: need ${n} bytes at ${this.pos - this.start}, have ${this.end - this.pos}`);
    }
  }
  /** Reads a signed byte. */
  byte(): number { this.need(1); return this.buf[this.pos++]; }
  /** Reads an i8 (a byte). */
  i8(): number { this.need(1); return (this.buf[this.pos++]! << 24) >> 24; }
  /** Reads an i16. */
  i16(): number { this.need(2); const b = this.buf, p = this.pos; this.pos = p + 2; return ((b[p]! << 24) >> 16) | b[p + 1]!; }
  /** Reads an i32. */
  i32(): number { this.need(4); const v = getI32(this.buf, this.pos); this.pos += 4; return v; }
  /** Reads an i64 as a bigint. */
  i64(): bigint { this.need(8); const v = this.buf.readBigInt64BE(this.pos); this.pos += 8; return v; }
  /** Reads a double. */
  double(): number { this.need(8); const v = this.buf.readDoubleBE(this.pos); this.pos += 8; return v; }
  private len(): number {
    const n = this.i32();
    if (n < 0) throw protocolError(`negative length ${n}`);
    this.need(n);
    return n;
  }
  /** Reads a string (UTF-8). */
  string(): string {
    const n = this.len();
    const b = this.buf;
    const start = this.pos, end = start + n;
    this.pos = end;
    if (n <= 16) {
      // Short ASCII strings (method names, group names, keys) repeat from request to request:
      // the last one seen per slot is reused when its bytes match, so a repeat costs one pass
      // over its bytes and no allocation, and the string comes with V8's hash already computed
      // for the Map lookups that follow (a method table, a cache). The bytes are compared as
      // four words (a character loop cost twice as much).
      let w0 = 0, w1 = 0, w2 = 0, w3 = 0, i = start;
      for (let k = 0; k < 4 && i < end; k++) w0 = (w0 << 8) | b[i++]!;
      for (let k = 0; k < 4 && i < end; k++) w1 = (w1 << 8) | b[i++]!;
      for (let k = 0; k < 4 && i < end; k++) w2 = (w2 << 8) | b[i++]!;
      for (let k = 0; k < 4 && i < end; k++) w3 = (w3 << 8) | b[i++]!;
      // (The length is left out of the slot: strings that pack alike, "ab" and "\0ab", meet in one.)
      const slot = Math.imul(w0 ^ Math.imul(w1 ^ Math.imul(w2 ^ Math.imul(w3, 0x27d4eb2f), 0x165667b1), 0x85ebca6b), 0x9e3779b1) >>> (32 - INTERN_BITS);
      if (internLen[slot] === n && internW0[slot] === w0 && internW1[slot] === w1 && internW2[slot] === w2 && internW3[slot] === w3) {
        return internStr[slot]!;
      }
      if (((w0 | w1 | w2 | w3) & 0x80808080) !== 0) return (b as RawBuffer).utf8Slice(start, end);
      let s = '';
      for (let j = start; j < end; j++) s += String.fromCharCode(b[j]!);
      // Internalized (as V8 does for property names): then comparing it with a literal, or
      // finding it in a Map, is a pointer comparison instead of one over its characters.
      s = internalize(s);
      internW0[slot] = w0; internW1[slot] = w1; internW2[slot] = w2; internW3[slot] = w3;
      internLen[slot] = n; internStr[slot] = s;
      return s;
    }
    return (b as RawBuffer).utf8Slice(start, end);
  }
  /** A copy: it outlives the frame. */
  binary(): Buffer {
    const n = this.len();
    const src = this.buf, p = this.pos;
    this.pos = p + n;
    if (n > SMALL_COPY) {
      const b = Buffer.allocUnsafe(n);
      src.copy(b, 0, p, p + n);
      return b;
    }
    // Small values are copied byte by byte into a shared slab, as Buffer.allocUnsafe pools them:
    // Buffer#copy makes a Uint8Array per call (CreateTypedArray, ~3 % of a client's profile).
    if (slabPos + n > SLAB_SIZE) { slab = new ArrayBuffer(SLAB_SIZE); slabU8 = new Uint8Array(slab); slabPos = 0; }
    const at = slabPos;
    for (let i = 0; i < n; i++) slabU8[at + i] = src[p + i]!;
    slabPos = (at + n + 7) & ~7;
    return view(slab, at, n);
  }

  /** Re-points this reader at other bytes (readers are reused on hot paths). */
  reset(buf: Buffer, pos = 0, end = buf.length): this {
    this.buf = buf;
    this.pos = pos;
    this.start = pos;
    this.end = end;
    this.depth = 0;
    return this;
  }

  // Set by readMessageHeader(): the header of the message just read (no object per message).
  msgName = '';
  msgType = 0 as MessageType;
  msgSeqid = 0;

  /** Reads a message header, strict or old format. */
  messageBegin(): MessageHeader {
    this.readMessageHeader();
    return { name: this.msgName, type: this.msgType, seqid: this.msgSeqid };
  }

  /** Reads a message header into this reader's name, type and seqid (no object made). */
  readMessageHeader(): void {
    const w = this.i32();
    const type = (w & 0xff) as MessageType;
    if ((w & 0xffff0000) !== (0x80010000 | 0) || type < 1 || type > 4) { readOldMessageHeader(this, w); return; }
    this.msgName = this.string();
    this.msgSeqid = this.i32();
    this.msgType = type;
  }

  /** Reads a value of type t sent with wire type `wire` (a mismatch is skipped and read as undefined). */
  value(t: TypeSpec, wire: number): unknown {
    const want = ttypeOf(t);
    if (want !== wire) { this.skip(wire); return undefined; } // a type we do not expect: skipped
    if (typeof t === 'string') {
      switch (t) {
        case 'bool': return this.byte() !== 0;
        case 'byte': return this.i8();
        case 'i16': return this.i16();
        case 'i32': return this.i32();
        case 'i64': return this.i64();
        case 'double': return this.double();
        case 'string': return this.string();
        case 'binary': return this.binary();
        case 'uuid': return this.uuid();
      }
    }
    if (++this.depth > MAX_DEPTH) throw protocolError(`nesting deeper than ${MAX_DEPTH}`);
    try {
      if ('fields' in t) return decoderOf(t)(this);
      if ('map' in t) {
        const kw = this.byte(), vw = this.byte();
        const n = this.count(2);
        if (n > 0) this.elementTypes(t.map[0], kw, t.map[1], vw);
        const m = new Map();
        for (let i = 0; i < n; i++) {
          const k = this.value(t.map[0], kw);
          m.set(k, this.value(t.map[1], vw));
        }
        return m;
      }
      const ew = this.byte();
      const n = this.count(1);
      const et = 'list' in t ? t.list : t.set;
      if (n > 0) this.elementTypes(et, ew);
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = this.value(et, ew);
      return 'set' in t ? new Set(out) : out;
    } finally {
      this.depth--;
    }
  }

  // Elements of a type other than the declared one cannot be skipped one by one (the container
  // would hold holes): the message does not match its IDL. Empty containers may say anything.
  private elementTypes(t1: TypeSpec, w1: number, t2?: TypeSpec, w2?: number): void {
    if (ttypeOf(t1) !== w1 || (t2 !== undefined && ttypeOf(t2) !== w2)) {
      throw protocolError(`container elements of wire type ${w1}${t2 !== undefined ? `/${w2}` : ''} where the IDL declares ${t2 !== undefined ? `${ttypeOf(t1)}/${ttypeOf(t2)}` : ttypeOf(t1)}`);
    }
  }

  /** A container count, checked against the bytes left (each element takes at least `min`). */
  private count(min: number): number {
    const n = this.i32();
    if (n < 0) throw protocolError(`negative container size ${n}`);
    if (n * min > this.end - this.pos) {
      // In a frame this is an error; in a stream (unframed binary) the rest may still come.
      throw protocolError(`container of ${n} elements does not fit the ${this.end - this.pos} bytes left`);
    }
    return n;
  }

  /** Reads a struct of the given description (unknown fields skipped). */
  struct(s: StructSpec): Record<string, unknown> {
    return decoderOf(s)(this);
  }

  /** A nested struct, counted against the depth cap. */
  nested(decode: StructDecoder): Record<string, unknown> {
    if (++this.depth > MAX_DEPTH) throw protocolError(`nesting deeper than ${MAX_DEPTH}`);
    try {
      return decode(this);
    } finally {
      this.depth--;
    }
  }

  /** A uuid (16 bytes) in canonical form. */
  uuid(): string {
    this.need(16);
    const h = this.buf.toString('hex', this.pos, this.pos + 16);
    this.pos += 16;
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** Skips a value of wire type `wire`. */
  skip(wire: number): void {
    switch (wire) {
      case TType.UUID: this.need(16); this.pos += 16; return;
      case TType.BOOL: case TType.BYTE: this.need(1); this.pos += 1; return;
      case TType.I16: this.need(2); this.pos += 2; return;
      case TType.I32: this.need(4); this.pos += 4; return;
      case TType.I64: case TType.DOUBLE: this.need(8); this.pos += 8; return;
      case TType.STRING: { const n = this.len(); this.pos += n; return; } // len() moves pos first
    }
    if (++this.depth > MAX_DEPTH) throw protocolError(`nesting deeper than ${MAX_DEPTH}`);
    try {
      switch (wire) {
        case TType.STRUCT:
          for (;;) {
            const t = this.byte();
            if (t === TType.STOP) return;
            this.i16();
            this.skip(t);
          }
        case TType.MAP: {
          const kt = this.byte(), vt = this.byte();
          const n = this.count(0);
          for (let i = 0; i < n; i++) { this.skip(kt); this.skip(vt); }
          return;
        }
        case TType.SET: case TType.LIST: {
          const et = this.byte();
          const n = this.count(0);
          for (let i = 0; i < n; i++) this.skip(et);
          return;
        }
        default:
          throw protocolError(`unknown field type ${wire}`);
      }
    } finally {
      this.depth--;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per-struct codecs, compiled once from the description. The generic walk above stores and loads
// fields by computed names (`out[f.name]`), which V8 turns into megamorphic keyed accesses: on a
// request path that was a tenth of the client's time. Generated code names each field, so every
// access site sees one shape. Nested structs are compiled when first met (recursive types work).

type StructDecoder = (r: ThriftReader) => Record<string, unknown>;
type StructEncoder = (w: ThriftWriter, v: Record<string, unknown>, path?: string) => void;
// Kept on the description itself (a symbol-keyed property: one monomorphic load per struct, where
// a WeakMap lookup per struct showed in profiles); in a WeakMap when the description is frozen.
const DECODER = Symbol('linkpoll.decoder');
const ENCODER = Symbol('linkpoll.encoder');
const decoders = new WeakMap<StructSpec, StructDecoder>();
const encoders = new WeakMap<StructSpec, StructEncoder>();
type WithCodecs = StructSpec & { [DECODER]?: StructDecoder; [ENCODER]?: StructEncoder };
function remember<T>(s: StructSpec, key: typeof DECODER | typeof ENCODER, map: WeakMap<StructSpec, T>, fn: T): void {
  if (Object.isExtensible(s)) Object.defineProperty(s, key, { value: fn, enumerable: false });
  else map.set(s, fn);
}

function checkNames(s: StructSpec): void {
  for (const f of s.fields) {
    if (f.name === '__proto__') throw new TypeError(`${s.name}: a field may not be named __proto__`);
    if (!Number.isInteger(f.id) || f.id < -32768 || f.id > 32767) throw new TypeError(`${s.name}.${f.name}: field id ${f.id} is not an i16`);
  }
}

function decoderOf(s: StructSpec): StructDecoder {
  return (s as WithCodecs)[DECODER] ?? compileDecoder(s);
}

function compileDecoder(s: StructSpec): StructDecoder {
  let d = decoders.get(s);
  if (d) return d;
  checkNames(s);
  const fields = fieldsOf(s);
  const subs: StructSpec[] = [];
  const types: TypeSpec[] = [];
  const lines: string[] = ['const out = {};', 'for (;;) {', '  const wire = r.byte();', '  if (wire === 0) break;', '  switch (r.i16()) {'];
  for (const f of fields) {
    const key = JSON.stringify(f.name);
    let read: string;
    const t = f.type;
    if (typeof t === 'string') {
      read = { bool: 'r.byte() !== 0', byte: 'r.i8()', i16: 'r.i16()', i32: 'r.i32()', i64: 'r.i64()', double: 'r.double()', string: 'r.string()', binary: 'r.binary()', uuid: 'r.uuid()' }[t];
    } else if ('fields' in t) {
      const k = subs.push(t) - 1;
      read = `r.nested(D[${k}] || (D[${k}] = decoderOf(S[${k}])))`;
    } else {
      const k = types.push(t) - 1;
      read = `r.value(T[${k}], wire)`;
    }
    lines.push(`    case ${f.id}: if (wire === ${f.wire}) out[${key}] = ${read}; else r.skip(wire); break;`);
  }
  lines.push('    default: r.skip(wire);', '  }', '}');
  const defaults: unknown[] = [];
  for (const f of s.fields) {
    const key = JSON.stringify(f.name);
    if (f.required) lines.push(`if (out[${key}] === undefined) throw protocolError(${JSON.stringify(`${s.name}.${f.name} is required`)});`);
    else if (f.default !== undefined) {
      const k = defaults.push(f.default) - 1;
      const copy = f.default instanceof Uint8Array ? `Buffer.from(V[${k}])` : typeof f.default === 'object' ? `structuredClone(V[${k}])` : `V[${k}]`;
      lines.push(`if (out[${key}] === undefined) out[${key}] = ${copy};`);
    }
  }
  lines.push('return out;');
  const make = new Function('decoderOf', 'protocolError', 'S', 'D', 'T', 'V', `return function decode(r) {\n${lines.join('\n')}\n};`);
  d = make(decoderOf, protocolError, subs, [], types, defaults) as StructDecoder;
  remember(s, DECODER, decoders, d);
  return d;
}

function encoderOf(s: StructSpec): StructEncoder {
  return (s as WithCodecs)[ENCODER] ?? compileEncoder(s);
}

function compileEncoder(s: StructSpec): StructEncoder {
  let e = encoders.get(s);
  if (e) return e;
  checkNames(s);
  const fields = fieldsOf(s);
  const subs: StructSpec[] = [];
  const types: TypeSpec[] = [];
  const name = JSON.stringify(s.name);
  const lines: string[] = [`if (v === null || typeof v !== 'object') throw typeError(path === undefined ? ${name} : path, ${name}, v);`, 'let x;'];
  const defaults: unknown[] = [];
  for (const [fi, f] of fields.entries()) {
    const key = JSON.stringify(f.name);
    const dflt = s.fields[fi]!.default;
    const t = f.type;
    // Errors name the struct type and field ("Request.key"): a constant, so the path costs nothing.
    const where = JSON.stringify(`${s.name}.${f.name}`);
    const num = (call: string) => `if (typeof x !== 'number') throw typeError(${where}, 'number', x); ${call}(x);`;
    let write: string;
    if (typeof t === 'string') {
      write = {
        bool: 'w.byte(x ? 1 : 0);', byte: num('w.byte'), i16: num('w.i16'), i32: num('w.i32'), double: num('w.double'),
        i64: `if (typeof x !== 'bigint' && typeof x !== 'number') throw typeError(${where}, 'bigint', x); w.i64(x);`,
        string: `w.stringOrBytes(x, ${where}, 'string');`,
        binary: `if (x instanceof Uint8Array) w.binary(x); else w.stringOrBytes(x, ${where}, 'Buffer');`,
        uuid: `w.uuid(x, ${where});`,
      }[t];
    } else if ('fields' in t) {
      const k = subs.push(t) - 1;
      write = `(E[${k}] || (E[${k}] = encoderOf(S[${k}])))(w, x, ${where});`;
    } else {
      const k = types.push(t) - 1;
      write = `w.value(T[${k}], x, ${where});`;
    }
    const missing = f.required
      ? ` else throw missingField((path === undefined ? ${name} : path) + ${JSON.stringify(`.${f.name} is required`)});`
      : '';
    const fill = dflt === undefined ? '' : ` if (x === undefined) x = V[${defaults.push(dflt) - 1}];`;
    lines.push(`x = v[${key}];${fill}`, `if (x !== undefined && x !== null) { ${s.union ? 'set++; ' : ''}w.field(${f.wire}, ${f.id}); ${write} }${missing}`);
  }
  // A union is one of its fields, as Apache's and Kitex's code insist when writing one.
  if (s.union) {
    lines.splice(2, 0, 'let set = 0;');
    lines.push(`if (set !== 1) throw missingField((path === undefined ? ${name} : path) + ': a union takes exactly one field, got ' + set + ' (' + ${JSON.stringify(fields.map((f) => f.name))}.filter((k) => v[k] !== undefined && v[k] !== null).join(', ') + ')');`);
  }
  lines.push('w.byte(0);');
  // A value lacking a required field is the caller's mistake (invalidArg), not the wire's.
  const make = new Function('encoderOf', 'missingField', 'typeError', 'S', 'E', 'T', 'V', `return function encode(w, v, path) {\n${lines.join('\n')}\n};`);
  e = make(encoderOf, invalidArg, typeError, subs, [], types, defaults) as StructEncoder;
  remember(s, ENCODER, encoders, e);
  return e;
}

// ---------------------------------------------------------------------------------------------
// Declared exceptions as classes

const SPEC = Symbol('linkpoll.exceptionSpec');

/**
 * The base of the exception classes linkpoll-thrift generates (`exception NotFound { 1: string
 * message }` becomes `class NotFound extends ThriftException`): a handler throws one (`throw new
 * NotFound({ message: 'no such key' })`) and the caller's call rejects with an instance of the same
 * class (`err instanceof NotFound`), its IDL fields as properties. The method must declare it
 * (`throws (1: NotFound nf)`); an undeclared one reaches the caller as a TApplicationException.
 */
export class ThriftException extends Error {
  /** The result field it travels in (`nf`), once a client has received it. */
  declare readonly thriftField?: string;
  constructor(spec: StructSpec, fields: object = {}) {
    const text = (fields as { message?: unknown }).message;
    super(typeof text === 'string' ? text : spec.name);
    Object.defineProperty(this, SPEC, { value: spec });
    this.name = spec.name;
    Object.assign(this, fields);
  }
}

/** The exception type of a ThriftException (what generated code passed to its constructor). */
export function exceptionSpecOf(e: ThriftException): StructSpec {
  return (e as unknown as { [SPEC]: StructSpec })[SPEC];
}

// ---------------------------------------------------------------------------------------------
// TApplicationException

/** TApplicationException type codes (Apache Thrift's). */
export const enum AppExceptionType {
  UNKNOWN = 0, UNKNOWN_METHOD = 1, INVALID_MESSAGE_TYPE = 2, WRONG_METHOD_NAME = 3, BAD_SEQUENCE_ID = 4,
  MISSING_RESULT = 5, INTERNAL_ERROR = 6, PROTOCOL_ERROR = 7, INVALID_TRANSFORM = 8, INVALID_PROTOCOL = 9,
  UNSUPPORTED_CLIENT_TYPE = 10,
}

/** The struct of TApplicationException (message, type). */
export const TApplicationExceptionSpec: StructSpec = {
  name: 'TApplicationException',
  fields: [{ id: 1, name: 'message', type: 'string' }, { id: 2, name: 'type', type: 'i32' }],
};

/**
 * A server's refusal for load, as Kitex words it (kerrors.ErrOverlimit: "request over limit", with
 * "request too frequent" for its QPS limit) or linkpoll's RpcServer ("over the server's rate limit").
 */
const OVER_LIMIT = /^(request over limit|over the server's rate limit)/;

/**
 * An exception the remote side reported as a Thrift TApplicationException: code
 * ERR_LINKPOLL_REMOTE, or ERR_LINKPOLL_OVER_LIMIT when the server refused the call for load
 * (a QPS or rate limit: retrying elsewhere or later may succeed; nothing was executed).
 */
export class TApplicationException extends LinkpollError {
  type: number;
  constructor(type: number, message: string) {
    super(OVER_LIMIT.test(message) ? 'ERR_LINKPOLL_OVER_LIMIT' : 'ERR_LINKPOLL_REMOTE', message);
    this.name = 'TApplicationException';
    this.type = type;
  }
}
