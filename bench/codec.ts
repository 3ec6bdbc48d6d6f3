// Thrift binary encode/decode: linkpoll's codec against npm thrift's TBinaryProtocol, on the
// GroupCache Request/Response pair and on a larger struct (everything.thrift's Everything), where
// the npm side is the code Apache's compiler generates (`thrift --gen js:node`, when the compiler
// is installed: Debian's thrift-compiler). linkpoll's generated code runs the codec compiled from
// the IDL at load, so these rows are its generated code's too.
//   node dist/bench/codec.js
import { Bench } from 'tinybench';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { rpc } from '../src';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const thrift = require('thrift');
const { Type } = thrift.Thrift;
const root = path.join(__dirname, '..', '..');
const gee = rpc.parseIdl(fs.readFileSync(path.join(root, 'examples/geecache/geecache.thrift'), 'utf8'));
const big = rpc.parseIdl(fs.readFileSync(path.join(root, 'test/fixtures/everything.thrift'), 'utf8'));

const req = { group: 'scores', key: 'Tom' };
const resp = { value: Buffer.alloc(64, 0x2e) };
const everything = {
  flag: true, small: 1, mid: 300, int32: 123456, big: 1234567890123n, ratio: 0.5, text: 'a medium-sized string value',
  blob: Buffer.alloc(256, 1), inner: { s: 'inner', b: Buffer.alloc(16) }, nums: Array.from({ length: 20 }, (_, i) => i),
  tags: new Set(['x', 'y', 'z']), byName: new Map([['a', { s: 'A' }], ['b', { s: 'B' }]]), color: 2,
  matrix: [[1n, 2n], [3n]], nested: new Map([[1, new Set(['p', 'q'])]]),
};

const w = new rpc.ThriftWriter(Buffer.alloc(4096));
const enc = (spec: rpc.StructSpec, v: Record<string, unknown>) => { w.reset(w.buf); w.struct(spec, v); return w.pos; };
const reqBytes = Buffer.from(w.buf.subarray(0, enc(gee.structs.Request, req)));
const respBytes = Buffer.from(w.buf.subarray(0, enc(gee.structs.Response, resp)));
const bigBytes = Buffer.from(w.buf.subarray(0, enc(big.structs.Everything, everything)));

// npm thrift: the protocol writes into a TFramedTransport buffer; reading from a TFramedTransport over bytes.
function npmWriter(): { proto: any; reset(): void } {
  let out: Buffer[] = [];
  const trans = new thrift.TFramedTransport(undefined, (b: Buffer) => { out.push(b); });
  const proto = new thrift.TBinaryProtocol(trans);
  return { proto, reset: () => { out = []; trans.outBuffers = []; trans.outCount = 0; } };
}
const npm = npmWriter();
function npmWriteRequest(p: any): void {
  p.writeStructBegin('Request');
  p.writeFieldBegin('group', Type.STRING, 1); p.writeString(req.group); p.writeFieldEnd();
  p.writeFieldBegin('key', Type.STRING, 2); p.writeString(req.key); p.writeFieldEnd();
  p.writeFieldStop(); p.writeStructEnd();
}
function npmWriteResponse(p: any): void {
  p.writeStructBegin('Response');
  p.writeFieldBegin('value', Type.STRING, 1); p.writeBinary(resp.value); p.writeFieldEnd();
  p.writeFieldStop(); p.writeStructEnd();
}
function npmReadStruct(p: any, onField: (fid: number, ftype: number) => boolean): void {
  p.readStructBegin();
  for (;;) {
    const f = p.readFieldBegin();
    if (f.ftype === Type.STOP) break;
    if (!onField(f.fid, f.ftype)) p.skip(f.ftype);
    p.readFieldEnd();
  }
  p.readStructEnd();
}
function npmReader(bytes: Buffer): any {
  const t = new thrift.TFramedTransport(bytes);
  return new thrift.TBinaryProtocol(t);
}

/** Everything as Apache's generated JavaScript (thrift --gen js:node), or undefined without the compiler. */
function apacheEverything(): { Everything: any } | undefined {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-js-'));
  const r = spawnSync('thrift', ['--gen', 'js:node', '-out', out, path.join(root, 'test/fixtures/everything.thrift')], { encoding: 'utf8' });
  if (r.status !== 0) { console.log(`(no Apache-generated rows: thrift --gen js:node failed or is missing: ${r.error?.message ?? r.stderr.trim()})`); return undefined; }
  // Its modules require('thrift'): resolved from this project's node_modules.
  const Module = require('node:module') as { _initPaths(): void };
  process.env.NODE_PATH = path.join(root, 'node_modules');
  Module._initPaths();
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(path.join(out, 'everything_types.js'));
}

async function main(): Promise<void> {
  const bench = new Bench({ time: 800 });
  const apache = apacheEverything();
  if (apache) {
    // The value as Apache's code holds it (Int64 objects, arrays for sets, objects for maps): read from our bytes.
    const value = new apache.Everything();
    value.read(npmReader(bigBytes));
    const out = npmWriter();
    bench
      .add('encode larger struct: Apache generated JS', () => { out.reset(); value.write(out.proto); })
      .add('decode larger struct: Apache generated JS', () => { const e = new apache.Everything(); e.read(npmReader(bigBytes)); });
  }
  bench
    .add('encode Request+Response: linkpoll', () => { enc(gee.structs.Request, req); enc(gee.structs.Response, resp); })
    .add('encode Request+Response: npm thrift', () => { npm.reset(); npmWriteRequest(npm.proto); npmWriteResponse(npm.proto); })
    .add('decode Request+Response: linkpoll', () => {
      new rpc.ThriftReader(reqBytes).struct(gee.structs.Request);
      new rpc.ThriftReader(respBytes).struct(gee.structs.Response);
    })
    .add('decode Request+Response: npm thrift', () => {
      const r: Record<string, unknown> = {};
      const a = npmReader(reqBytes);
      npmReadStruct(a, (id, t) => { if (t !== Type.STRING) return false; r[id === 1 ? 'group' : 'key'] = a.readString(); return true; });
      const b = npmReader(respBytes);
      npmReadStruct(b, (id, t) => { if (id !== 1 || t !== Type.STRING) return false; r.value = b.readBinary(); return true; });
    })
    .add('encode larger struct: linkpoll', () => { enc(big.structs.Everything, everything); })
    .add('decode larger struct: linkpoll', () => { new rpc.ThriftReader(bigBytes).struct(big.structs.Everything); })
    .add('skip larger struct: npm thrift', () => { const p = npmReader(bigBytes); p.skip(Type.STRUCT); })
    .add('skip larger struct: linkpoll', () => { new rpc.ThriftReader(bigBytes).skip(12); });
  await bench.run();
  console.table(bench.table());
}

main().catch((e) => { console.error(e); process.exit(1); });
