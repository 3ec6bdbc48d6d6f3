// Apache THeader's zlib transform: requests compressed by the client are read and answered
// compressed; replies compressed by a server are read by our client; and what a compressed frame
// can make the server hold is bounded: a payload that inflates past maxFrameSize (a zip bomb),
// a corrupt stream and an unknown transform close that connection with a clear error while the
// server goes on serving everyone else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { execFile, spawn } from 'node:child_process';
import * as rpc from '../src/rpc/internal';
import { generatePython, listeningPort, pythonThrift, rawClient, readFrames, until } from './helpers';

const root = path.join(__dirname, '..', '..');
const idlPath = path.join(root, 'test', 'fixtures', 'everything.thrift');
const Kitchen = rpc.parseIdl(fs.readFileSync(idlPath, 'utf8')).services.Kitchen!;

async function kitchen(opts: rpc.RpcServerOptions = {}) {
  const srv = new rpc.RpcServer({ logger: null, ...opts });
  const errors: string[] = [];
  srv.on('protocolError', (e: Error) => errors.push(e.message));
  srv.register(Kitchen, { echo: (a) => a.e, slow: (a) => `slept ${a.ms}`, fail: () => { throw new Error('boom'); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  return { srv, port, errors };
}

/** A CALL of `method` as a Thrift message, then framed as Apache THeader with zlib. */
function zlibCall(method: rpc.MethodSpec, seqid: number, args: Record<string, unknown>, kv?: [string, string][]): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(256));
  w.messageBegin(method.name, rpc.MessageType.CALL, seqid);
  w.struct(method.args, args);
  return rpc.apacheZlibFrame(seqid, 0, kv, Buffer.from(w.buf.subarray(0, w.pos)));
}

/** A THeader frame with the given transform ids and raw payload bytes. */
function rawTransformFrame(ids: number[], payload: Buffer): Buffer {
  const head = [0, ids.length, ...ids];
  while (head.length % 4) head.push(0);
  const h = Buffer.alloc(14);
  h.writeUInt32BE(10 + head.length + payload.length, 0);
  h.writeUInt16BE(0x0fff, 4);
  h.writeInt32BE(1, 8);
  h.writeUInt16BE(head.length / 4, 12);
  return Buffer.concat([h, Buffer.from(head), payload]);
}

/** Reads a reply frame: its transforms and its message (inflated). */
function readReply(f: Buffer, spec: rpc.StructSpec): { transforms: number; type: number; seqid: number; value: Record<string, unknown> } {
  const h = rpc.parseTTHeader(f);
  const body = h.transforms ? zlib.inflateSync(f.subarray(h.payloadStart, h.payloadEnd)) : f.subarray(h.payloadStart, h.payloadEnd);
  const r = new rpc.ThriftReader(body);
  const m = r.messageBegin();
  return { transforms: h.transforms, type: m.type, seqid: m.seqid, value: r.struct(m.type === rpc.MessageType.EXCEPTION ? rpc.TApplicationExceptionSpec : spec) };
}

test('a zlib request is answered in kind: the reply lists the zlib transform, and plain requests on the same connection get plain replies', async () => {
  const { srv, port } = await kitchen();
  const s = await rawClient(port);
  const got = readFrames(s, 3);
  const big = { text: 'compress me '.repeat(2000), nums: Array.from({ length: 500 }, (_, i) => i) };
  const w = new rpc.ThriftWriter(Buffer.alloc(256));
  const start = rpc.beginTTHeader(w, 2, undefined, undefined, undefined, 0, rpc.APACHE_THEADER_MAGIC);
  w.messageBegin('slow', rpc.MessageType.CALL, 2);
  w.struct(Kitchen.methods.slow!.args, { ms: 1 });
  rpc.endFrame(w, start);
  s.write(Buffer.concat([zlibCall(Kitchen.methods.echo!, 1, { e: big }), Buffer.from(w.buf.subarray(0, w.pos)), zlibCall(Kitchen.methods.fail!, 3, { how: 1 })]));
  const [a, b, c] = await got;
  assert.ok(a!.length < 2000, `the compressed reply is ${a!.length} bytes for a ~30 KB message`);
  const ra = readReply(a!, Kitchen.methods.echo!.result);
  assert.is(ra.transforms, 1);
  assert.equal(ra.value.success, { ...big });
  const rb = readReply(b!, Kitchen.methods.slow!.result);
  assert.equal([rb.transforms, rb.value.success], [0, 'slept 1']);
  const rc = readReply(c!, Kitchen.methods.fail!.result);
  assert.equal([rc.transforms, rc.type, rc.value.message], [1, rpc.MessageType.EXCEPTION, 'boom']);
  s.destroy();
  await srv.close();
});

test('a zip bomb (a payload inflating past maxFrameSize), a corrupt zlib stream and an unknown transform: that connection is closed with a clear error, the server serves on', async () => {
  const { srv, port, errors } = await kitchen({ maxFrameSize: 64 * 1024 });
  // 16 MB of zeros compress to ~16 KB: under the frame limit on the wire, far over it inflated.
  const bomb = rawTransformFrame([1], zlib.deflateSync(Buffer.alloc(16 * 1024 * 1024)));
  assert.ok(bomb.length < 64 * 1024);
  const cases: [Buffer, RegExp][] = [
    [bomb, /zlib payload of \d+ bytes inflates past the frame size limit \(65536 bytes\): refused/],
    [rawTransformFrame([1], Buffer.from('this is not zlib at all')), /not a valid zlib stream/],
    [rawTransformFrame([3], Buffer.from('snappy?')), /THeader transform 3 is not supported \(zlib, 1, is\)/],
  ];
  for (const [bytes, why] of cases) {
    const s = await rawClient(port);
    const closed = new Promise((r) => s.once('close', r));
    s.on('error', () => {});
    s.write(bytes);
    await closed;
    await until(() => errors.some((e) => why.test(e)), 2000, `a protocol error matching ${why}`);
  }
  // Everyone else is served: a compressed call on a new connection works.
  const s = await rawClient(port);
  const got = readFrames(s, 1);
  s.write(zlibCall(Kitchen.methods.slow!, 9, { ms: 2 }));
  const [f] = await got;
  assert.equal(readReply(f!, Kitchen.methods.slow!.result).value.success, 'slept 2');
  s.destroy();
  assert.is(srv.stats().closedForProtocolErrors, 3);
  await srv.close();
});

test('our client reads replies a server compressed (Apache THeader zlib), within its maxFrameSize', async () => {
  // A THeader server that compresses every reply, as Apache's C++ and Python servers do when
  // configured with the zlib transform.
  const seen: number[] = [];
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const f = buf.subarray(0, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(f.length);
        const h = rpc.parseTTHeader(f);
        seen.push(h.transforms);
        const r = new rpc.ThriftReader(h.transforms ? zlib.inflateSync(f.subarray(h.payloadStart, h.payloadEnd)) : f.subarray(h.payloadStart, h.payloadEnd));
        const m = r.messageBegin();
        const args = r.struct(Kitchen.methods.slow!.args);
        const w = new rpc.ThriftWriter(Buffer.alloc(256));
        w.messageBegin(m.name, rpc.MessageType.REPLY, m.seqid);
        w.struct(Kitchen.methods.slow!.result, { success: `compressed ${args.ms}`.repeat(Number(args.ms)) });
        sock.write(rpc.apacheZlibFrame(h.seqid, 0, undefined, Buffer.from(w.buf.subarray(0, w.pos))));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport: 'theader', timeout: 2000, maxFrameSize: 64 * 1024 });
  try {
    assert.is(await c.call('slow', { ms: 3 }), 'compressed 3'.repeat(3));
    // A reply that would inflate past the client's maxFrameSize fails its call, naming why.
    const e = await c.call('slow', { ms: 7000 }).catch((x: Error) => x) as Error;
    assert.match(e.message, /inflates past the frame size limit \(65536 bytes\)/);
    assert.equal(seen, [0, 0]);
    // compress: 'zlib' sends the calls compressed too.
    const z = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport: 'theader', compress: 'zlib', timeout: 2000 });
    assert.is(await z.call('slow', { ms: 2 }, { headers: { caller: 'test' } }), 'compressed 2'.repeat(2));
    z.close();
    assert.equal(seen, [0, 0, 1]);
    assert.throws(() => new rpc.RpcClient({ service: Kitchen, targets: [], compress: 'gzip' as 'zlib' }), /compress must be 'zlib' or false/);
  } finally {
    c.close();
    server.close();
  }
});


test('python3-thrift over Apache THeader with the zlib transform (code from Apache\'s compiler) calls our server', async () => {
  const gen = generatePython(idlPath);
  if (!gen) return;
  const { srv, port } = await kitchen();
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(pythonThrift!, [path.join(root, 'test', 'fixtures', 'zlib_client.py'), gen, String(port)], { timeout: 20000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}${stderr}`)) : resolve(stdout)));
    });
    assert.equal(out.trim().split('\n'), ['echo same', 'slow slept 1']);
  } finally {
    await srv.close();
    fs.rmSync(gen, { recursive: true, force: true });
  }
});

test('our client with compress: \'zlib\' calls a python3-thrift THeader server (it reads the zlib transform)', async () => {
  const gen = generatePython(idlPath);
  if (!gen) return;
  const py = spawn(pythonThrift!, [path.join(root, 'test', 'fixtures', 'header_server.py'), gen], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await listeningPort(py, 'header_server.py');
    const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport: 'theader', compress: 'zlib', timeout: 5000 });
    const big = { text: 'zlib '.repeat(3000), nums: Array.from({ length: 300 }, (_, i) => i) };
    assert.equal(await c.call('echo', { e: big }), big);
    assert.is(await c.call('slow', { ms: 4 }), 'slept 4');
    c.close();
  } finally {
    py.kill();
    fs.rmSync(gen, { recursive: true, force: true });
  }
});

test.run();
