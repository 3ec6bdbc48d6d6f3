import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { EventEmitter } from 'node:events';
import * as dns from 'node:dns/promises';
import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { connect, createServer, Reactor, rpc, type Connection } from '../src';
import { frame, rawClient, readFrames, until, once, openFds, rejectsWith, seededRandom } from './helpers';

const reactor = new Reactor({ loops: 3 });

function echoServer(extra: Parameters<typeof createServer>[0] = {}) {
  return createServer({ reactor, framing: 'u32be', onFrame: (f, c) => { c.write(f); }, ...extra });
}

test('data mode, random reads and writes: every byte comes back once, in order (model check over real sockets)', async () => {
  // The server consumes its input with a random mix of reader operations and sends each consumed
  // byte back with a random mix of write paths; node:net peers send random chunks. Whatever the
  // interleaving of network reads with reader calls, the echo must equal what was sent.
  const rnd = seededRandom(99);
  const send = (conn: Connection, b: Buffer) => {
    switch (rnd(4)) {
      case 0: conn.write(b); break;
      case 1: conn.writer.writeBinary(Buffer.from(b)); break; // large ones are linked, not copied
      case 2: { const m = conn.writer.malloc(b.length + rnd(64)); b.copy(m); conn.writer.mallocAck(b.length); break; }
      default: for (let i = 0; i < b.length; i += 1000) conn.write(b.subarray(i, i + 1000));
    }
  };
  const server = createServer({ reactor, framing: 'none', maxInput: 256 * 1024 }, (conn) => {
    conn.on('readable', () => {
      const r = conn.reader;
      while (r.length > 0) {
        const n = 1 + rnd(Math.min(r.length, 70000));
        switch (rnd(6)) {
          case 0: send(conn, Buffer.from(r.next(n))); break;
          case 1: { const v = r.peek(n); const copy = Buffer.from(v); r.skip(n); send(conn, copy); break; }
          case 2: send(conn, r.readBinary(n)); break;
          case 3: { const sl = r.slice(n); send(conn, sl.readBinary(n)); sl.release(); break; }
          case 4: { const line = r.until(r.peek(n)[n - 1]!); if (line) send(conn, Buffer.from(line)); break; }
          default: if (n >= 4) { const x = r.readUInt32BE(); const b = Buffer.alloc(4); b.writeUInt32BE(x); send(conn, b); } else send(conn, Buffer.from(r.next(n)));
        }
        if (rnd(3) === 0) r.release();
      }
      r.release();
    });
  });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  await Promise.all(Array.from({ length: 6 }, async (_, k) => {
    const total = 300000 + k * 50000;
    const sent = Buffer.alloc(total);
    for (let i = 0; i < total; i++) sent[i] = (i * 7 + k + (i >> 9)) & 0xff;
    const s = await rawClient(port);
    let got = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => s.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); if (got.length >= total) resolve(); }));
    for (let off = 0; off < total;) {
      const n = 1 + rnd(20000);
      s.write(sent.subarray(off, off + n));
      off += n;
      if (rnd(4) === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await done;
    assert.is(got.length, total);
    assert.ok(got.equals(sent), `connection ${k}: the echo differs at byte ${got.findIndex((b, i) => b !== sent[i])}`);
    s.destroy();
  }));
  await server.close();
});

test('many connections over several sub loops all get their echoes', async () => {
  const srv = echoServer();
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const clients = await Promise.all(Array.from({ length: 60 }, () => connect({ reactor, port, framing: 'u32be' })));
  const results = await Promise.all(clients.map((c, i) => new Promise<string>((resolve) => {
    c.onFrame = (f) => resolve(f.subarray(4).toString());
    c.write(frame(`hello ${i}`));
  })));
  results.forEach((r, i) => assert.is(r, `hello ${i}`));
  for (const c of clients) c.end();
  await Promise.all(clients.map((c) => c.closed()));
  await srv.close();
});

test('10,000 pipelined messages arrive whole and in order (node:net peer)', async () => {
  const srv = echoServer();
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  const N = 10000;
  const pending = readFrames(s, N);
  const parts: Buffer[] = [];
  for (let i = 0; i < N; i++) {
    const body = Buffer.alloc(4 + (i % 97));
    body.writeUInt32BE(i, 0);
    parts.push(frame(body));
  }
  // Written in odd-sized chunks so frames straddle reads.
  const all = Buffer.concat(parts);
  for (let off = 0; off < all.length; off += 7919) s.write(all.subarray(off, off + 7919));
  const got = await pending;
  for (let i = 0; i < N; i++) {
    assert.is(got[i].readUInt32BE(4), i);
    assert.is(got[i].length, 8 + (i % 97));
  }
  s.destroy();
  await srv.close();
});

test('16 MiB messages go through whole, both ways', async () => {
  const srv = echoServer();
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = await connect({ reactor, port, framing: 'u32be' });
  const body = Buffer.allocUnsafe(16 * 1024 * 1024);
  for (let i = 0; i < body.length; i += 4096) body[i] = (i >> 12) & 0xff;
  const got = new Promise<Buffer>((resolve) => { c.onFrame = (f) => resolve(Buffer.from(f)); });
  c.write(frame(body));
  const back = await got;
  assert.is(back.length, body.length + 4);
  assert.ok(back.subarray(4).equals(body));
  c.end();
  await c.closed();
  await srv.close();
});

test('a frame over maxFrameSize closes that connection with a clear error; the server keeps serving', async () => {
  const srv = echoServer({ maxFrameSize: 1024 });
  const closed: (Error | undefined)[] = [];
  srv.on('connection', (c: Connection) => c.on('close', (e) => closed.push(e)));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const bad = await rawClient(port);
  const badClosed = once(bad, 'close');
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32BE(5000, 0);
  bad.write(hdr);
  await badClosed;
  await until(() => closed.length === 1);
  assert.is((closed[0] as NodeJS.ErrnoException).code, 'ERR_LINKPOLL_FRAME_TOO_LARGE');
  assert.match(closed[0]!.message, /^a frame of 5004 bytes exceeded maxFrameSize \(1024 bytes\): it began 00 00 13 88/, 'the error says the size and what the header began with');
  // A TLS client (its ClientHello read as a length) is named.
  const tlsClient = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  tlsClient.on('error', () => {});
  await until(() => closed.length === 2);
  assert.match(closed[1]!.message, /^a frame exceeded .*it began 16 03 0\d .*: the peer speaks TLS/, 'no size: the header is not a length');
  const good = await rawClient(port);
  const r = readFrames(good, 1);
  good.write(frame('still here'));
  assert.is((await r)[0].subarray(4).toString(), 'still here');
  good.destroy();
  await srv.close();
});

test('data mode: the reader sees a byte stream; until() splits lines', async () => {
  const lines: string[] = [];
  const srv = createServer({ reactor }, (c) => {
    c.on('readable', () => {
      const r = c.reader;
      let line: Buffer | null;
      while ((line = r.until('\n')) !== null) {
        lines.push(line.toString().trimEnd());
        c.write(line);
      }
      r.release();
    });
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  let echoed = '';
  s.on('data', (d) => { echoed += d; });
  s.write('one\ntw');
  await until(() => lines.length === 1);
  s.write('o\nthree\n');
  await until(() => lines.length === 3);
  assert.equal(lines, ['one', 'two', 'three']);
  await until(() => echoed === 'one\ntwo\nthree\n');
  s.destroy();
  await srv.close();
});

test('IPv6 loopback and Unix domain sockets', async () => {
  const srv = echoServer();
  const a = await srv.listen({ port: 0, host: '::1' });
  assert.is(a.family, 'IPv6');
  const c6 = await connect({ reactor, host: '::1', port: a.port, framing: 'u32be' });
  const r6 = new Promise<string>((res) => { c6.onFrame = (f) => res(f.subarray(4).toString()); });
  c6.write(frame('v6'));
  assert.is(await r6, 'v6');
  c6.end();
  await srv.close();

  const sock = path.join(os.tmpdir(), `linkpoll-${process.pid}.sock`);
  const usrv = echoServer();
  const ua = await usrv.listen({ path: sock });
  assert.is(ua.family, 'unix');
  const cu = await connect({ reactor, path: sock, framing: 'u32be' });
  const ru = new Promise<string>((res) => { cu.onFrame = (f) => res(f.subarray(4).toString()); });
  cu.write(frame('unix'));
  assert.is(await ru, 'unix');
  cu.end();
  await cu.closed();
  await usrv.close();
  assert.not.ok(fs.existsSync(sock), 'socket path removed on close');
});

test('maxConnections refuses politely and keeps serving', async () => {
  const srv = echoServer({ maxConnections: 2 });
  let drops = 0;
  srv.on('drop', () => drops++);
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const a = await rawClient(port);
  const b = await rawClient(port);
  await until(() => srv.connections.size === 2);
  const c = await rawClient(port);
  await once(c, 'close');
  assert.is(drops, 1);
  const r = readFrames(a, 1);
  a.write(frame('ok'));
  assert.is((await r)[0].subarray(4).toString(), 'ok');
  b.destroy();
  await until(() => srv.connections.size === 1);
  const d = await rawClient(port); // a slot is free again
  const rd = readFrames(d, 1);
  d.write(frame('again'));
  assert.is((await rd)[0].subarray(4).toString(), 'again');
  a.destroy();
  d.destroy();
  await srv.close();
});

test('listening on a busy port fails with EADDRINUSE', async () => {
  const srv = echoServer();
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const other = echoServer();
  try {
    await other.listen({ port, host: '127.0.0.1' });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'EADDRINUSE');
  }
  await srv.close();
});

test('connect to a closed port rejects with ECONNREFUSED and says where, as node:net does', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  try {
    await connect({ reactor, port });
    assert.unreachable('should have thrown');
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { address: string; port: number };
    assert.is(err.code, 'ECONNREFUSED');
    assert.is(err.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
    assert.is(err.address, '127.0.0.1');
    assert.is(err.port, port);
  }
  const missing = path.join(os.tmpdir(), `linkpoll-missing-${process.pid}.sock`);
  const err = await connect({ reactor, path: missing }).then(() => undefined, (e: NodeJS.ErrnoException & { address: string }) => e);
  assert.is(err?.code, 'ENOENT');
  assert.ok(err?.message.endsWith(missing), err?.message);
  assert.is(err?.address, missing);
});

test('connect to a name tries each of its addresses (localhost as ::1 or 127.0.0.1)', async () => {
  const local = (await dns.lookup('localhost', { all: true })).map((a) => a.address);
  if (local.length < 2) console.log(`  (localhost is only ${local.join()} here: the fall-through to a second address is not exercised)`);
  for (const host of local) {
    const srv = echoServer();
    const { port } = await srv.listen({ port: 0, host, ipv6Only: true });
    const c = await connect({ reactor, host: 'localhost', port, framing: 'u32be' });
    assert.is(c.remoteAddress, host);
    c.end();
    await c.closed();
    await srv.close();
  }
});

test('connect honours an AbortSignal', async () => {
  const ac = new AbortController();
  ac.abort();
  try {
    await connect({ reactor, port: 1, signal: ac.signal });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ABORT_ERR');
  }
});

test('bad options are rejected with clear errors before any socket is made', () => {
  assert.throws(() => createServer({ reactor, framing: 'bogus' as never }), /framing must be/);
  assert.throws(() => createServer({ reactor, readTimeout: -1 }), /readTimeout/);
  assert.throws(() => createServer({ reactor, maxFrameSize: 1.5 }), /maxFrameSize/);
  assert.throws(() => createServer({ reactor, readTimeout: '100' as never }), /got '100' \(a string\)/);
});

test('ports as strings of digits are taken as node:net takes them; write() refuses what is not bytes or a string', async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const free = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const srv = echoServer();
  try {
    const a = await srv.listen(String(free) as never);
    assert.is(a.port, free, 'listen("PORT") binds that port, not any free one');
    const c = await connect({ reactor, port: String(free) as never, host: '127.0.0.1', framing: 'u32be' });
    for (const bad of [5, null, {}, [1, 2]]) {
      assert.throws(() => c.write(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE', String(bad));
    }
    const got = once(c, 'frame');
    c.write(frame('still fine'));
    assert.is((await got as Buffer).subarray(4).toString(), 'still fine');
    c.destroy();
    await rejectsWith(() => connect({ reactor, port: 'http' as never }), 'ERR_INVALID_ARG_VALUE');
  } finally {
    await srv.close();
  }
});

test("node:net's call forms: createServer(listener), listen(port, host, cb), listen(path), connect(port, host), connect(path, cb)", async () => {
  const accepted: string[] = [];
  const srv = createServer((c) => {
    accepted.push(c.remoteAddress ?? '?');
    c.on('data', (d: Buffer) => c.write(d));
  });
  const sock = path.join(os.tmpdir(), `linkpoll-forms-${process.pid}.sock`);
  const unixSrv = createServer((c) => c.on('data', (d: Buffer) => c.write(d)));
  try {
    let called = 0;
    const a = await srv.listen(0, '127.0.0.1', () => { called++; });
    assert.is(a.address, '127.0.0.1', 'listen(port, host) binds that host');
    assert.is(called, 1, 'the callback ran once listening');
    const echo = async (c: Connection, text: string) => {
      const got = new Promise<string>((resolve) => c.once('data', (d: Buffer) => resolve(d.toString())));
      c.write(text);
      return got;
    };
    const c1 = await connect(a.port, '127.0.0.1');
    assert.is(await echo(c1, 'port+host'), 'port+host');
    const c2 = await connect(String(a.port));
    assert.is(await echo(c2, 'port string'), 'port string');
    assert.is(accepted.length, 2, 'the listener given to createServer() saw both connections');
    c1.destroy(); c2.destroy();

    fs.rmSync(sock, { force: true });
    await unixSrv.listen(sock);
    const viaCb = await new Promise<Connection>((resolve) => { connect(sock, resolve); });
    assert.is(await echo(viaCb, 'unix'), 'unix', 'listen(path) / connect(path, cb): a Unix socket');
    viaCb.destroy();

    for (const bad of ['x', 5, [1]]) {
      assert.throws(() => createServer(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE', String(bad));
    }
    // A failed connect with a callback: the awaited promise reports it, nothing else does.
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    await rejectsWith(() => connect(1, '127.0.0.1', () => assert.unreachable('connected to port 1')), 'ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 20));
    process.off('unhandledRejection', onUnhandled);
    assert.equal(unhandled, []);
    await rejectsWith(() => connect(undefined as never), 'ERR_INVALID_ARG_VALUE');
    await rejectsWith(() => connect(true as never), 'ERR_INVALID_ARG_TYPE');
    await rejectsWith(() => connect(1, 2 as never), 'ERR_INVALID_ARG_TYPE');
    await rejectsWith(() => srv.listen({ port: 0 }, 5 as never), 'ERR_INVALID_ARG_VALUE');
  } finally {
    await srv.close();
    await unixSrv.close();
    fs.rmSync(sock, { force: true });
  }
});

test('setEncoding(): \'data\' chunks are strings, a character split between reads arrives whole; setEncoding() goes back to Buffers', async () => {
  const got: unknown[] = [];
  const conns: Connection[] = [];
  const srv = createServer((c) => { conns.push(c); c.setEncoding('utf8'); c.on('data', (d) => got.push(d)); });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = net.connect(port, '127.0.0.1');
  await once(s, 'connect');
  const text = Buffer.from('h\u00e9\u2713'); // 1 + 2 + 3 bytes
  const pieces = [text.subarray(0, 2), text.subarray(2, 4), text.subarray(4)]; // each cuts a character
  for (const p of pieces) {
    const before = got.length;
    s.write(p);
    await until(() => got.length > before || (got.join('') === 'h\u00e9\u2713'));
  }
  assert.is(got.join(''), 'h\u00e9\u2713');
  assert.ok(got.every((d) => typeof d === 'string'));
  conns[0]!.setEncoding();
  s.write('z');
  await until(() => got.length > 0 && Buffer.isBuffer(got[got.length - 1]));
  assert.equal(got[got.length - 1], Buffer.from('z'));
  assert.throws(() => conns[0]!.setEncoding('klingon' as BufferEncoding), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE');
  s.destroy();
  await srv.close();
});

test("'data' chunks are the listener's to keep, as node:net's: pushed and concatenated after the close, every byte is there", async () => {
  const srv = createServer({ reactor }, (c) => {
    // Many small reads (one write per turn of the event loop), so that blocks are recycled.
    let i = 0;
    const next = () => { c.write(`chunk${i++};`.padEnd(200, '.')); if (i === 3000) c.end(); else setImmediate(next); };
    next();
  });
  const { port } = await srv.listen(0, '127.0.0.1');
  try {
    const c = await connect({ reactor, port });
    const chunks: Buffer[] = [];
    c.on('data', (d) => chunks.push(d));
    await c.closed();
    assert.ok(chunks.length > 1);
    assert.is(Buffer.concat(chunks).toString(), Array.from({ length: 3000 }, (_, i) => `chunk${i};`.padEnd(200, '.')).join(''));
  } finally {
    await srv.close();
  }
});

test('a handler that throws does not lose the other connections\' frames', async () => {
  let served = 0;
  const srv = createServer({ reactor, framing: 'u32be', onFrame: (f, c) => {
    if (f.subarray(4).toString() === 'boom') throw new Error('handler bug');
    served++;
    c.write(f);
  } });
  const errors: unknown[] = [];
  const onUncaught = (e: unknown) => errors.push(e);
  process.on('uncaughtException', onUncaught);
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  const r = readFrames(s, 1);
  s.write(Buffer.concat([frame('boom'), frame('fine')]));
  assert.is((await r)[0].subarray(4).toString(), 'fine');
  await until(() => errors.length === 1);
  assert.is((errors[0] as Error).message, 'handler bug');
  process.off('uncaughtException', onUncaught);
  assert.is(served, 1);
  s.destroy();
  await srv.close();
});

test('replies written in the batch and from microtasks all arrive, once each (regression)', async () => {
  // Before the fix, a microtask that flushed reused the command buffer before native code had
  // taken the batch's own writes: some replies went out twice, others never.
  const srv = createServer({ reactor, framing: 'u32be', onFrame: (f, c) => {
    if (f[4] % 2 === 0) c.write(f);
    else queueMicrotask(() => { c.write(f); });
  } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const clients = await Promise.all([0, 1, 2, 3].map(() => rawClient(port)));
  const N = 2000;
  const got = clients.map((s) => readFrames(s, N));
  for (let i = 0; i < N; i++) {
    clients.forEach((s, k) => { const b = Buffer.alloc(5); b[0] = (i + k) & 0xff; b.writeUInt32BE(i, 1); s.write(frame(b)); });
  }
  const all = await Promise.all(got);
  for (const frames of all) {
    const seen = frames.map((f) => f.readUInt32BE(5)).sort((a, b) => a - b);
    assert.equal(seen, Array.from({ length: N }, (_, i) => i));
  }
  for (const s of clients) s.destroy();
  await srv.close();
});

test('threaded sub loops (epoll waited on in native threads) serve the same, and shut down cleanly', async () => {
  const before = openFds();
  const rt = new Reactor({ loops: 2, threaded: true });
  const srv = createServer({ reactor: rt, framing: 'u32be', onFrame: (f, c) => { c.write(f); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect({ reactor: rt, port, framing: 'u32be' })));
  const got = await Promise.all(clients.map((c, i) => new Promise<string>((res) => {
    c.onFrame = (f) => res(f.subarray(4).toString());
    c.write(frame(`t${i}`));
  })));
  got.forEach((g, i) => assert.is(g, `t${i}`));
  for (const c of clients) c.end();
  await Promise.all(clients.map((c) => c.closed()));
  await srv.close();
  rt.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.is(openFds(), before);
});

test('works in worker threads: each has its own reactor and memory', async () => {
  const src = path.join(__dirname, '..', 'src');
  const code = `
    const { parentPort } = require('node:worker_threads');
    const lp = require(${JSON.stringify(src)});
    (async () => {
      const srv = lp.createServer({ framing: 'u32be', onFrame: (f, c) => c.write(f) });
      const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
      const c = await lp.connect({ port, framing: 'u32be' });
      const got = new Promise((r) => { c.onFrame = (f) => r(f.subarray(4).toString()); });
      const b = Buffer.alloc(9); b.writeUInt32BE(5); b.write('hello', 4); c.write(b);
      const v = await got; c.end(); await c.closed(); await srv.close();
      parentPort.postMessage(v);
    })();`;
  const results = await Promise.all([0, 1].map(() => new Promise<string>((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.once('message', (m) => { resolve(m); void w.terminate(); });
    w.once('error', reject);
  })));
  assert.equal(results, ['hello', 'hello']);
});

test.after(() => reactor.close());
test('connections are ordinary EventEmitters: any event name, once, removal, unhandled error throws', async () => {
  let accepted: Connection | undefined;
  const server = createServer({ framing: 'u32be' }, (c) => { accepted = c; });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const conn = await connect({ port, host: '127.0.0.1', framing: 'u32be' });
  await until(() => accepted !== undefined);
  for (const c of [conn, accepted!]) {
    assert.ok(c instanceof EventEmitter);
    const got: string[] = [];
    assert.is(c.emit('constructor'), false);
    assert.is(c.listenerCount('toString'), 0);
    c.on('toString', (v: string) => got.push(`t${v}`));
    c.once('__proto__', (v: string) => got.push(`p${v}`));
    c.emit('toString', 1); c.emit('__proto__', 2); c.emit('__proto__', 3);
    assert.equal(got, ['t1', 'p2']);
    assert.equal(c.eventNames().filter((n) => n === 'toString' || n === '__proto__'), ['toString']);
    c.removeAllListeners('toString');
    assert.is(c.listenerCount('toString'), 0);
    assert.throws(() => c.emit('error', new Error('nobody listens')), /nobody listens/);
  }
  conn.destroy();
  await server.close();
});

test('out of descriptors (EMFILE): open connections are served, the rest wait and are accepted when descriptors free up', async () => {
  const child = spawn('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${path.join(__dirname, '..', '..', 'test', 'fixtures', 'fd-limited-echo.js')}"`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => { const l = (partial + d.toString()).split('\n'); partial = l.pop()!; lines.push(...l); });
  const socks: net.Socket[] = [];
  try {
    await until(() => lines.some((l) => l.startsWith('ready ')), 5000, 'the server to start');
    const [, port, free] = lines.find((l) => l.startsWith('ready '))!.split(' ').map(Number);
    const accepted = () => lines.filter((l) => l.startsWith('connections ')).length;
    const errors = () => lines.filter((l) => l.startsWith('errors ')).length;
    // More connections than descriptors left: some wait in the kernel's queue.
    for (let i = 0; i < free! + 8; i++) { const s = net.connect(port!, '127.0.0.1'); s.on('error', () => {}); socks.push(s); }
    await until(() => errors() >= 1, 3000, 'an EMFILE error event');
    assert.ok(lines.some((l) => /^errors 1 EMFILE$/.test(l)), lines.filter((l) => l.startsWith('errors')).join());
    const waiting = socks.length - accepted();
    assert.ok(waiting >= 4, `${waiting} connections wait`);
    const echo = async (s: net.Socket, text: string) => {
      const got = new Promise<string>((r) => s.once('data', (d: Buffer) => r(d.subarray(4).toString())));
      s.write(frame(text));
      return Promise.race([got, new Promise<string>((r) => setTimeout(() => r('no answer'), 3000))]);
    };
    assert.is(await echo(socks[0]!, 'first'), 'first', 'an accepted connection is served meanwhile');
    const before = errors();
    await new Promise((r) => setTimeout(r, 1100));
    assert.ok(errors() - before <= 2, `told at most once a second while it lasts (${errors() - before} in 1.1 s)`);
    // Free descriptors: the waiting connections are accepted and served.
    for (const s of socks.slice(0, 12)) s.destroy();
    assert.is(await echo(socks[socks.length - 1]!, 'last'), 'last', 'the last connection is served once descriptors free up');
    assert.is(child.exitCode, null);
  } finally {
    for (const s of socks) s.destroy();
    child.kill();
  }
});

test('unref() lets the process exit while a server listens or a connection is open; ref() undoes it', async () => {
  const server = createServer({ framing: 'u32be' });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const lib = JSON.stringify(path.join(__dirname, '..', 'src'));
  // Each script prints "done" and should then exit by itself, or still run a second after it
  // said so (counted from "done", not from the start: under ASan a child starts slowly).
  const run = (body: string) => new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, ['-e', `const lp = require(${lib}); (async () => { ${body}; console.log('done'); })()`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let timer = setTimeout(() => child.kill(), 20000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('done')) { clearTimeout(timer); timer = setTimeout(() => child.kill(), 1000); }
    });
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, out: out.trim() }); });
  });
  const exits = async (body: string) => { const r = await run(body); assert.is(r.out, 'done', body); assert.is(r.code, 0, `exits by itself: ${body}`); };
  const stays = async (body: string) => { const r = await run(body); assert.is(r.out, 'done', body); assert.is(r.code, null, `kept alive (killed a second after done): ${body}`); };
  await Promise.all([
    stays(`const c = await lp.connect({ port: ${port} })`),
    exits(`const c = await lp.connect({ port: ${port} }); c.unref()`),
    stays(`const c = await lp.connect({ port: ${port} }); c.unref(); c.ref()`),
    stays(`await lp.createServer({}).listen({ port: 0, host: '127.0.0.1' })`),
    exits(`const s = lp.createServer({}); s.unref(); await s.listen({ port: 0, host: '127.0.0.1' })`),
    exits(`const s = lp.createServer({}); await s.listen({ port: 0, host: '127.0.0.1' }); s.unref()`),
    stays(`const s = lp.createServer({}); await s.listen({ port: 0, host: '127.0.0.1' }); s.unref(); s.ref()`),
  ]);
  await server.close();
});

test('the listen backlog defaults to the system limit (somaxconn), or what listen() is given', async () => {
  const ss = ['/usr/bin/ss', '/bin/ss', '/usr/sbin/ss', '/sbin/ss'].find((p) => fs.existsSync(p));
  if (!ss) { console.log('  SKIPPED (visible): ss (iproute2) is not installed'); return; }
  const backlogOf = (port: number) => {
    const out = execFileSync(ss, ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split(/\s+/);
    return Number(out[2]); // State Recv-Q Send-Q: a listener's Send-Q is its backlog
  };
  const somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
  const a = createServer({ framing: 'u32be' });
  const b = createServer({ framing: 'u32be' });
  const pa = (await a.listen({ port: 0, host: '127.0.0.1' })).port;
  const pb = (await b.listen({ port: 0, host: '127.0.0.1', backlog: 7 })).port;
  assert.is(backlogOf(pa), Math.min(somaxconn, 65535));
  assert.is(backlogOf(pb), 7);
  await a.close();
  await b.close();
});

test('keepAlive turns on TCP keepalive with its idle time (server and dialer), and setOptions changes it and noDelay', async () => {
  const ss = ['/usr/bin/ss', '/bin/ss', '/usr/sbin/ss', '/sbin/ss'].find((p) => fs.existsSync(p));
  if (!ss) { console.log('  SKIPPED (visible): ss (iproute2) is not installed'); return; }
  // ss -o shows a socket's keepalive timer, "timer:(keepalive,2.9sec,0)", when SO_KEEPALIVE is on.
  const keepalive = (local: number) => {
    const line = execFileSync(ss, ['-Htno', 'state', 'established', `sport = :${local}`], { encoding: 'utf8' });
    const m = /timer:\(keepalive,([\d.]+)(m?s|sec|min)/.exec(line);
    return m ? Number(m[1]) * (m[2] === 'min' ? 60 : m[2] === 'ms' ? 0.001 : 1) : 0;
  };
  const server = createServer({ framing: 'u32be', keepAlive: 3000 });
  const accepted: Connection[] = [];
  server.on('connection', (c) => accepted.push(c));
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const plain = await connect({ port, framing: 'u32be' });
  const kept = await connect({ port, framing: 'u32be', keepAlive: 20000 });
  await until(() => accepted.length === 2);
  const s = keepalive(port);
  assert.ok(s > 0 && s <= 3, `accepted side: keepalive timer ${s} s`);
  const k = keepalive(kept.address()!.port);
  assert.ok(k > 3 && k <= 20, `dialer with keepAlive 20000: timer ${k} s`);
  assert.is(keepalive(plain.address()!.port), 0, 'off by default');
  plain.setOptions({ keepAlive: 60000, noDelay: false });
  assert.ok(keepalive(plain.address()!.port) > 20, 'setOptions turns it on');
  kept.setOptions({ keepAlive: 0 });
  assert.is(keepalive(kept.address()!.port), 0, 'and off');
  assert.throws(() => createServer({ keepAlive: -1 }), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE');
  plain.destroy(); kept.destroy();
  await server.close();
});

test('node:cluster workers listening on one port share it, as with node:net (reusePort by default there)', async () => {
  const script = path.join(__dirname, '..', '..', 'test', 'fixtures', 'cluster-echo.js');
  const run = async (args: string[], want: RegExp) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await until(() => want.test(out), 10000, `cluster-echo to print ${want}`);
    } catch (e) {
      child.kill();
      throw e;
    }
    return { child, m: want.exec(out)! };
  };
  const { child, m } = await run([], /ready (\d+)/);
  try {
    const pids = new Set<string>();
    for (let i = 0; i < 40 && pids.size < 2; i++) {
      const s = net.connect(Number(m[1]), '127.0.0.1');
      let got = '';
      s.on('data', (d) => { got += d.toString(); });
      await once(s, 'close');
      pids.add(got);
    }
    assert.is(pids.size, 2, `answers came from ${[...pids].join(', ')}`);
  } finally {
    child.kill();
  }
  // reusePort: false in a worker: node:net's error, saying where.
  const failed = await run(['--no-reuse-port'], /error (\S+) (\S+) (\d+) (.*)/);
  failed.child.kill();
  assert.is(failed.m[1], 'EADDRINUSE');
  assert.is(failed.m[2], '127.0.0.1');
  assert.ok(failed.m[4]!.startsWith('listen EADDRINUSE') && failed.m[4]!.endsWith(`127.0.0.1:${failed.m[3]}`), failed.m[4]);
});

test('listen(port, cb) failing is an \'error\' event, as node:net\'s (no unhandled rejection); the promise form rejects', async () => {
  const taken = createServer();
  const { port } = await taken.listen({ port: 0, host: '127.0.0.1' });
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    for (const make of [() => createServer(), () => new rpc.RpcServer({ logger: null })]) {
      const srv = make();
      const errors: NodeJS.ErrnoException[] = [];
      srv.on('error', (e: Error) => errors.push(e));
      srv.listen(port, '127.0.0.1', () => assert.unreachable('listening'));
      await until(() => errors.length === 1);
      assert.is(errors[0]!.code, 'EADDRINUSE');
      assert.ok(errors[0]!.message.endsWith(`127.0.0.1:${port}`), errors[0]!.message);
      await rejectsWith(() => srv.listen({ port, host: '127.0.0.1' }), 'EADDRINUSE');
      assert.is(errors.length, 1); // the promise form reports through its promise only
    }
    await new Promise((r) => setImmediate(r));
    assert.equal(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await taken.close();
  }
});

test("node:net's life cycle: 'listening' on the next tick, close(cb), readyState, pending, bytesRead and bytesWritten (kept after the close)", async () => {
  let serverSide: Connection | undefined;
  const srv = createServer({ allowHalfOpen: true }, (c) => {
    serverSide = c;
    c.on('data', (d: Buffer) => c.write(d));
  });
  const states: string[] = [];
  try {
    srv.listen(0, '127.0.0.1');
    // Attached after listen() returned, as node:net code does.
    await once(srv, 'listening');
    const c = await connect(srv.address()!.port, '127.0.0.1');
    assert.is(c.pending, false);
    assert.is(c.readyState, 'open');
    const echoed = new Promise<void>((resolve) => { let n = 0; c.on('data', (d: Buffer) => { if ((n += d.length) === 8) resolve(); }); });
    c.write('abc');
    c.write(Buffer.from('defgh'));
    assert.is(c.bytesWritten, 8, 'queued bytes count at once');
    await echoed;
    assert.is(c.bytesRead, 8);
    await until(() => serverSide !== undefined && serverSide.bytesRead === 8 && serverSide.bytesWritten === 8);
    const s = serverSide!;
    const serverEnded = once(s, 'end');
    c.end();
    assert.is(c.readyState, 'readOnly', 'after end(): reading goes on');
    await serverEnded;
    assert.is(s.readyState, 'writeOnly', "after the peer's FIN (allowHalfOpen): writing goes on");
    const closed = once(c, 'close');
    s.end('bye');
    await closed;
    states.push(c.readyState, s.readyState);
    await until(() => s.destroyed);
    assert.equal([c.readyState, s.readyState], ['closed', 'closed']);
    assert.equal([c.bytesRead, c.bytesWritten], [11, 8], 'the client\'s counts stay after the close');
    assert.equal([s.bytesRead, s.bytesWritten], [8, 11], 'the server side\'s too');
  } finally {
    let err: Error | undefined | null = null;
    await srv.close((e) => { err = e; });
    assert.is(err, undefined, 'close(cb): called once closed, without an error');
  }
  // Closed already: the callback still hears, with node:net's error.
  const again = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => { void srv.close(resolve); });
  assert.is(again?.code, 'ERR_SERVER_NOT_RUNNING');
  // node:net's callback form on a server that is not listening.
  const idle = createServer();
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => { void idle.close(resolve); });
  assert.is(err?.code, 'ERR_SERVER_NOT_RUNNING');
  assert.throws(() => srv.close(5 as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
});

test.run();
