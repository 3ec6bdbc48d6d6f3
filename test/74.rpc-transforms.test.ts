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
import * as crypto from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import * as rpc from '../src/rpc/internal';
import { textLike } from '../bench/payloads';
import { interfaceBytes, testNetwork } from './netns';
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

/** An Apache THeader frame around `message` compressed with zlib, as python3-thrift writes one. */
function apacheZlibFrame(seqid: number, kv: [string, string][] | undefined, message: Buffer): Buffer {
  return rpc.headerFrame(rpc.APACHE_THEADER_MAGIC, seqid, 0, kv ? rpc.apacheInfoBlocks(kv) : undefined, zlib.deflateSync(message), true);
}

/** A CALL of `method` as a Thrift message, then framed as Apache THeader with zlib. */
function zlibCall(method: rpc.MethodSpec, seqid: number, args: Record<string, unknown>, kv?: [string, string][]): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(256));
  w.messageBegin(method.name, rpc.MessageType.CALL, seqid);
  w.struct(method.args, args);
  return apacheZlibFrame(seqid, kv, Buffer.from(w.buf.subarray(0, w.pos)));
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
        sock.write(apacheZlibFrame(h.seqid, undefined, Buffer.from(w.buf.subarray(0, w.pos))));
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
    assert.throws(() => new rpc.RpcClient({ service: Kitchen, targets: [], compress: 'gzip' as 'zlib' }), /compress must be 'auto', 'zlib' or false/);
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


test('a python3-thrift THeader server that compresses its replies (add_transform(ZLIB)): our client, compression off, reads them', async () => {
  if (!pythonThrift) { console.log('  SKIPPED (visible): python3-thrift is not installed'); return; }
  const gen = generatePython(idlPath);
  if (!gen) { console.log('  SKIPPED (visible): the thrift compiler is not installed'); return; }
  const py = spawn(pythonThrift, [path.join(root, 'test', 'fixtures', 'header_server.py'), gen, 'zlib'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await listeningPort(py, 'header_server.py zlib');
    const t = await tap(port);
    const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${t.port}`], transport: 'theader', timeout: 5000 });
    try {
      const big = { text: 'zlib '.repeat(3000) };
      assert.equal(await c.call('echo', { e: big }), big);
      assert.is(await c.call('slow', { ms: 5 }), 'slept 5');
      assert.equal(t.seen.map((x) => [x.dir, x.transforms]), [['call', 0], ['reply', 1], ['call', 0], ['reply', 1]]);
    } finally {
      c.close();
      t.close();
    }
  } finally {
    py.kill();
    fs.rmSync(gen, { recursive: true, force: true });
  }
});

/** What crossed a TCP proxy between a client and `port`, frame by frame, per direction. */
interface Seen { dir: 'call' | 'reply'; transforms: number; kv: ReadonlyMap<string, string>; bytes: number }
async function tap(port: number) {
  const seen: Seen[] = [];
  const server = net.createServer((a) => {
    const b = net.connect(port, '127.0.0.1');
    const watch = (from: net.Socket, to: net.Socket, dir: Seen['dir']) => {
      let buf = Buffer.alloc(0);
      from.on('data', (d: Buffer) => {
        to.write(d);
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const f = buf.subarray(0, 4 + buf.readUInt32BE(0));
          buf = buf.subarray(f.length);
          const h = rpc.parseTTHeader(Buffer.from(f));
          seen.push({ dir, transforms: h.transforms, kv: h.strKV, bytes: f.length });
        }
      });
      from.on('close', () => to.destroy());
      from.on('error', () => to.destroy());
    };
    watch(a, b, 'call');
    watch(b, a, 'reply');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { seen, port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

const text = (n: number) => textLike(n).toString('latin1');

// Loopback is a fast path, where 'auto' leaves everything plain (see the last tests): these take
// any path as slow (linkRate: Infinity) to show the size and ratio rules.
const ANY_PATH = { linkRate: Infinity };

test('linkpoll to linkpoll over TTHeader: the first call asks, the server acknowledges, then large calls and replies go compressed and small or random ones plain', async () => {
  const { srv, port } = await kitchen({ compression: ANY_PATH });
  const t = await tap(port);
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${t.port}`], compress: 'auto', compression: ANY_PATH, timeout: 2000 });
  try {
    assert.is(await c.call('slow', { ms: 0 }), 'slept 0');
    // The first call went plain (the server was not known to read transforms) and asked.
    assert.is(t.seen[0]!.dir, 'call');
    assert.is(t.seen[0]!.transforms, 0);
    assert.is(t.seen[0]!.kv.get('lp-accept-transforms'), 'zlib');
    assert.is(t.seen[1]!.kv.get('lp-transforms'), 'zlib');
    const big = { text: text(8192), nums: [1, 2, 3] };
    const echoed = await c.call('echo', { e: big }) as Record<string, unknown>;
    assert.is(echoed.text, big.text);
    const [call, reply] = t.seen.slice(2);
    assert.is(call!.transforms, 1, 'an 8 KiB text call goes compressed');
    assert.is(reply!.transforms, 1, 'and its reply too');
    assert.ok(call!.bytes < 8192 / 2, `compressed to ${call!.bytes} bytes`);
    // Random bytes do not compress: sent plain, and the method is left plain for a while.
    const blob = crypto.randomBytes(8192);
    assert.equal((await c.call('echo', { e: { blob } }) as Record<string, unknown>).blob, blob);
    assert.is(t.seen[4]!.transforms, 0);
    assert.is(t.seen[5]!.transforms, 0);
    // Small calls stay plain.
    await c.call('slow', { ms: 1 });
    assert.is(t.seen[6]!.transforms, 0);
    assert.is(t.seen[6]!.kv.get('lp-accept-transforms'), undefined, 'asked once per connection');
  } finally {
    c.close();
    t.close();
    await srv.close({ timeout: 200 });
  }
});

test('compress \'zlib\' compresses every call to a known linkpoll target (TargetSpec.readsCompressed) from the first; a server with compress: false answers those in kind only', async () => {
  const { srv, port } = await kitchen({ compress: false });
  const t = await tap(port);
  const c = new rpc.RpcClient({ service: Kitchen, targets: [{ address: `127.0.0.1:${t.port}`, readsCompressed: true }], compress: 'zlib', timeout: 2000 });
  const plain = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${t.port}`], compress: 'auto', compression: ANY_PATH, timeout: 2000 });
  try {
    assert.is(await c.call('slow', { ms: 2 }), 'slept 2');
    assert.is(t.seen[0]!.transforms, 1);
    assert.is(t.seen[1]!.transforms, 1, 'a compressed call is answered compressed');
    // 'auto' to a server that compresses no reply: its large replies come plain.
    await plain.call('slow', { ms: 0 });
    const big = { text: text(8192) };
    assert.is((await plain.call('echo', { e: big }) as Record<string, unknown>).text, big.text);
    const last = t.seen.slice(-2);
    assert.is(last[0]!.transforms, 1, 'the call is compressed (the server reads them)');
    assert.is(last[1]!.transforms, 1, 'answered in kind');
  } finally {
    c.close();
    plain.close();
    t.close();
    await srv.close({ timeout: 200 });
  }
});

test('a linkpoll server compresses large replies for a client that reads them though its calls are small, and never for one that did not ask', async () => {
  const srv = new rpc.RpcServer({ logger: null, compression: ANY_PATH });
  const big = text(64 * 1024);
  srv.register(Kitchen, { slow: (a) => (a.ms === 1 ? big : 'small'), echo: (a) => a.e, fail: () => 0 });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const t = await tap(port);
  const on = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${t.port}`], compress: 'auto', compression: ANY_PATH, timeout: 2000 });
  const off = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${t.port}`], timeout: 2000 });
  try {
    assert.is(await on.call('slow', { ms: 0 }), 'small');
    assert.is(await on.call('slow', { ms: 1 }), big);
    const replies = t.seen.filter((s) => s.dir === 'reply');
    assert.equal(replies.map((r) => r.transforms), [0, 1]);
    assert.ok(replies[1]!.bytes < big.length / 2, `a 64 KiB text reply took ${replies[1]!.bytes} bytes`);
    const n = t.seen.length;
    assert.is(await off.call('slow', { ms: 1 }), big);
    assert.equal(t.seen.slice(n).map((s) => [s.dir, s.transforms, s.kv.size > 0 && s.kv.has('lp-accept-transforms')]), [['call', 0, false], ['reply', 0, false]]);
  } finally {
    on.close();
    off.close();
    t.close();
    await srv.close({ timeout: 200 });
  }
});

test('a TTHeader zip bomb between linkpoll peers closes that connection with a named error; the server serves on', async () => {
  const { srv, port, errors } = await kitchen({ maxFrameSize: 64 * 1024 });
  const w = new rpc.ThriftWriter(Buffer.alloc(256));
  w.messageBegin('slow', rpc.MessageType.CALL, 1);
  w.struct(Kitchen.methods.slow!.args, { ms: 1 });
  const bomb = Buffer.concat([Buffer.from(w.buf.subarray(0, w.pos)), Buffer.alloc(1024 * 1024)]);
  const s = await rawClient(port);
  s.write(rpc.headerFrame(rpc.TTHEADER_MAGIC, 1, 0, undefined, zlib.deflateSync(bomb), true));
  await new Promise((r) => s.on('close', r));
  await until(() => errors.length > 0);
  assert.match(errors[0]!, /inflates past the frame size limit \(65536 bytes\)/);
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], compress: 'zlib', timeout: 2000 });
  try {
    assert.is(await c.call('slow', { ms: 0 }), 'slept 0');
    assert.is(await c.call('slow', { ms: 1 }), 'slept 1');
  } finally {
    c.close();
    await srv.close({ timeout: 200 });
  }
});


/** Fetches `key` from `target` with `inFlight` calls at a time for `ms`; the calls answered. */
async function load(c: rpc.RpcClient, key: string, ms: number, inFlight = 16): Promise<number> {
  let n = 0;
  const end = Date.now() + ms;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (Date.now() < end) { await c.call('fetch', { key }); n++; }
  }));
  return n;
}
const Values = rpc.parseIdl('service Values { binary fetch(1: string key) }').services.Values!;

test('\'auto\' on loopback (a path far faster than zlib): large compressible replies go plain; \'zlib\' compresses them', async () => {
  const value = textLike(4096);
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Values, { fetch: () => value });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const auto = new rpc.RpcClient({ service: Values, targets: [`127.0.0.1:${port}`], compress: 'auto', timeout: 5000 });
  const zlibbed = new rpc.RpcClient({ service: Values, targets: [`127.0.0.1:${port}`], compress: 'zlib', timeout: 5000 });
  try {
    assert.ok(await load(auto, 'v', 600) > 100);
    assert.is(srv.stats().compressedReplies, 0, 'nothing compressed on loopback');
    await load(zlibbed, 'v', 200);
    assert.ok(srv.stats().compressedReplies > 0, '\'zlib\' compresses whatever the path');
  } finally {
    auto.close();
    zlibbed.close();
    await srv.close({ timeout: 200 });
  }
});

test('\'auto\' on a 100 Mbit/s link (another network namespace): a server measures the path as slow and compresses its 4 KiB text replies, not its random ones', async () => {
  const net_ = testNetwork('cz', 40, 1, { rateMbit: 100 });
  if ('skip' in net_) { console.log(`  SKIPPED (visible): ${net_.skip}`); return; }
  const host = net_.hosts[0]!;
  const [cmd, args] = host.run([process.execPath, path.join(root, 'dist', 'bench', 'compress.js'), '--serve', 'auto']);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await listeningPort(child, 'the server in its namespace');
    const c = new rpc.RpcClient({ service: Values, targets: [`${host.addr}:${port}`], compress: 'auto', timeout: 10000 });
    try {
      const perCall = async (key: string) => {
        await load(c, key, 400); // the server's gauge samples the path
        const before = interfaceBytes(host.hostSideDev);
        const n = await load(c, key, 800);
        return (interfaceBytes(host.hostSideDev) - before) / n;
      };
      const text = await perCall('text-4096');
      assert.ok(text < 2500, `4 KiB text replies took ${Math.round(text)} bytes on the wire per call: compressed`);
      const random = await perCall('random-4096');
      assert.ok(random > 4096, `4 KiB random replies took ${Math.round(random)} bytes per call: plain`);
    } finally {
      c.close();
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    net_.close();
  }
});

test.run();
