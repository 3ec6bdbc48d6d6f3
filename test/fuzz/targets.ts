// What the mutation fuzzer runs: every TypeScript parser of bytes that come from the network.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as rpc from '../../src/rpc/internal';
import { parseRequestHead } from '../../examples/geecache/http-head';
import { unescapeSegment } from '../../examples/geecache/peers';
import type { FuzzTarget } from './mutate';

const fixtures = path.join(__dirname, '..', '..', '..', 'test', 'fixtures');
const idl = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'everything.thrift'), 'utf8'));
const gee = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'geecache.thrift'), 'utf8'));
const Everything = idl.structs.Everything!;
const Get = gee.services.GroupCache!.methods.Get!;

const isProtocolError = (e: unknown) => (e as { code?: string } | null)?.code === 'ERR_LINKPOLL_PROTOCOL';

function encode(spec: rpc.StructSpec, v: Record<string, unknown>): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  w.struct(spec, v);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

function message(name: string, type: rpc.MessageType, seqid: number, spec: rpc.StructSpec, v: Record<string, unknown>): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  w.messageBegin(name, type, seqid);
  w.struct(spec, v);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

function ttheader(ints: [number, string][], strs: [string, string][], body: Buffer, innerFramed = false, magic = rpc.TTHEADER_MAGIC): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  const start = rpc.beginTTHeader(w, 42, ints, strs, undefined, 1, magic);
  if (innerFramed) w.u32(body.length);
  w.raw(body);
  rpc.endFrame(w, start);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

const sample = {
  flag: true, small: -5, mid: -30000, int32: 2147483647, big: -9007199254740993n, ratio: 3.25,
  text: 'héllo ✓', blob: Buffer.from([0, 1, 2, 255]), inner: { s: 'in', b: Buffer.from('bytes') },
  nums: [1, -2, 3], tags: new Set(['a', 'b']), byName: new Map([['x', { s: 'X' }]]),
  color: 7, matrix: [[1n, 2n], [], [3n]], nested: new Map([[1, new Set(['p'])]]),
};
const getArgs = { req: { group: 'scores', key: 'Tom' } };
const call = message('Get', rpc.MessageType.CALL, 7, Get.args, getArgs);
const reply = message('Get', rpc.MessageType.REPLY, 7, Get.result, { success: { value: Buffer.alloc(16, 1) } });
/** The same call in Thrift's old binary format (no version word): name length, name, type, seqid. */
const oldCall = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('Get'), Buffer.from([1, 0, 0, 0, 7]), call.subarray(call.length - encode(Get.args, getArgs).length)]);
const kitexInts: [number, string][] = [[3, 'client'], [6, 'geecache'], [9, 'Get'], [12, '1000'], [22, '1']];

/** Decodes, then checks that what was decoded encodes and decodes back to itself. */
export const thriftStruct: FuzzTarget = {
  name: 'thrift-struct',
  seeds: [encode(Everything, sample), encode(Everything, { text: 'x', nums: [] }), encode(Get.args, getArgs)],
  run(input) {
    const v = new rpc.ThriftReader(input).struct(Everything);
    const again = new rpc.ThriftReader(encode(Everything, v)).struct(Everything);
    if (!isDeepStrictEqual(v, again)) throw new Error('decode(encode(decode(x))) differs from decode(x)');
  },
  expected: isProtocolError,
};

export const thriftMessage: FuzzTarget = {
  name: 'thrift-message',
  seeds: [call, oldCall, reply, message('Get', rpc.MessageType.EXCEPTION, 1, rpc.TApplicationExceptionSpec, { message: 'boom', type: 6 })],
  run(input) {
    const r = new rpc.ThriftReader(input);
    r.readMessageHeader();
    if (r.msgType === rpc.MessageType.CALL) r.struct(Get.args);
    else if (r.msgType === rpc.MessageType.EXCEPTION) r.struct(rpc.TApplicationExceptionSpec);
    else r.struct(Get.result);
  },
  expected: isProtocolError,
};

/** The server's unframed-binary stream probe: where does one message end? */
export const unframedProbe: FuzzTarget = {
  name: 'unframed-probe',
  seeds: [call, Buffer.concat([call, call]), Buffer.concat([oldCall, call])],
  run(input) {
    const r = new rpc.ThriftReader(input);
    r.messageBegin();
    r.skip(12);
    if (r.pos > input.length) throw new Error(`probe ran past its input (${r.pos} > ${input.length})`);
  },
  expected: isProtocolError,
};

/**
 * The unframed stream's resumable walk (MessageScanner): given the bytes in pieces it must find
 * the same end as given them whole, never read past what it was given, and agree with the reader's
 * own skip wherever that finds an end.
 */
export const unframedScanner: FuzzTarget = {
  name: 'unframed-scanner',
  seeds: [call, Buffer.concat([call, call]), oldCall],
  run(input) {
    let refusal: unknown;
    const whole = (() => { try { return new rpc.MessageScanner(1 << 20).scan(input, input.length); } catch (e) { if (isFramingError(e)) { refusal = e; return 'error'; } throw e; } })();
    const pieces = new rpc.MessageScanner(1 << 20);
    let got: number | 'error' = -1;
    for (let end = 0; end <= input.length && got === -1; end += 1 + (input[end] ?? 0) % 7) {
      try { got = pieces.scan(input, end); } catch (e) { if (!isFramingError(e)) throw e; got = 'error'; }
      if (typeof got === 'number' && got > end) throw new Error(`scanner ended at ${got} past the ${end} bytes given`);
      if (pieces.pos > end) throw new Error(`scanner walked to ${pieces.pos} past the ${end} bytes given`);
    }
    if (got === -1) got = (() => { try { return pieces.scan(input, input.length); } catch { return 'error' as const; } })();
    if (got !== whole) throw new Error(`in pieces ${got}, whole ${whole}`);
    if (refusal !== undefined) throw refusal; // refused both ways: an expected outcome
    if (typeof whole === 'number' && whole >= 0) {
      const r = new rpc.ThriftReader(input);
      try { r.messageBegin(); r.skip(12); } catch { return; } // the reader is stricter about some types
      if (r.pos !== whole) throw new Error(`scanner ${whole}, reader ${r.pos}`);
    }
  },
  expected: (e: unknown) => isFramingError(e),
};
const isFramingError = (e: unknown) => ['ERR_LINKPOLL_PROTOCOL', 'ERR_LINKPOLL_FRAME_TOO_LARGE'].includes((e as { code?: string } | null)?.code ?? '');

export const ttheaderFrame: FuzzTarget = {
  name: 'ttheader',
  seeds: [
    ttheader([], [], call), ttheader(kitexInts, [['biz-status', '0'], ['crrst', '1']], call),
    ttheader(kitexInts, [], call, true), ttheader([[1, 'x']], [['a', 'b']], reply),
    ttheader([], [['a', 'b'], ['k'.repeat(130), 'v']], call, false, rpc.APACHE_THEADER_MAGIC),
    // compressed (the zlib transform), in both formats
    rpc.headerFrame(rpc.TTHEADER_MAGIC, 3, 0, rpc.infoBlocks(kitexInts, [['lp-accept-transforms', 'zlib']]), zlib.deflateSync(call), true),
    rpc.headerFrame(rpc.APACHE_THEADER_MAGIC, 4, 0, rpc.apacheInfoBlocks([['a', 'b']]), zlib.deflateSync(call), true),
  ],
  run(input) {
    const h = rpc.parseTTHeader(input);
    if (h.payloadStart < 0 || h.payloadEnd > input.length || h.payloadStart > h.payloadEnd) throw new Error(`payload [${h.payloadStart}, ${h.payloadEnd}) outside the frame`);
    void h.intKV.size; void h.strKV.size; void h.aclToken;
    const body = h.transforms === 0 ? input : rpc.inflatePayload(input, h.payloadStart, h.payloadEnd, h.transforms, 1 << 16);
    const r = h.transforms === 0 ? new rpc.ThriftReader(input, h.payloadStart, h.payloadEnd) : new rpc.ThriftReader(body);
    r.readMessageHeader();
  },
  expected: isProtocolError,
};

export const transportDetection: FuzzTarget = {
  name: 'detect-transport',
  seeds: [call, ttheader(kitexInts, [], call), Buffer.from('GET / HTTP/1.1\r\n'), Buffer.from([0, 0, 0, 9, 0x80, 1, 0, 1]), oldCall, Buffer.concat([Buffer.from([0, 0, 0, oldCall.length]), oldCall])],
  run(input) {
    const t = rpc.detectTransport(input);
    if (t !== null && typeof t !== 'string' && typeof t.unsupported !== 'string') throw new Error('detectTransport gave an unknown answer');
  },
  expected: () => false, // it must never throw
};

/** The GeeCache node's HTTP side: request heads, and the path segments it unescapes. */
export const httpRequestHead: FuzzTarget = {
  name: 'http-request-head',
  seeds: [
    Buffer.from('GET /_geecache/scores/Tom HTTP/1.1\r\nHost: a\r\n\r\n'),
    Buffer.from('POST /x HTTP/1.0\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello'),
    Buffer.from('GET /_geecache/a%20b/c+d%2F HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n'),
    Buffer.from('GET /_geecache/scores/Sam HTTP/1.1\nHost: a\r\nContent-Length: 2\n\nhi'),
    Buffer.from('GET /_geecache/scores/Tom HTTP/1.1\r\nAccept-Encoding: br, gzip;q=0.8, *;q=0\r\n\r\n'),
  ],
  run(input) {
    const max = 256;
    const h = parseRequestHead(input, max);
    if (h === null) {
      if (input.includes('\n\n') || input.includes('\n\r\n') || input.length > max) throw new Error('incomplete, yet the head is there (or too large)');
      return;
    }
    if ('status' in h) throw Object.assign(new Error(`refused with ${h.status}`), { code: 'HTTP_REFUSED' });
    if (!h.method || !h.target || h.headLength > input.length || !Number.isSafeInteger(h.contentLength) || h.contentLength < 0 ||
        h.headLength + h.contentLength > max) throw new Error(`inconsistent head ${JSON.stringify(h)}`);
    try {
      unescapeSegment(h.target);
    } catch (e) {
      if (!(e instanceof URIError)) throw e; // answered 400 by the server
    }
  },
  expected: (e) => (e as { code?: string } | null)?.code === 'HTTP_REFUSED', // a 400 or 431 answer
};

export const targets = [thriftStruct, thriftMessage, unframedProbe, unframedScanner, ttheaderFrame, transportDetection, httpRequestHead];
