import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { connect, createServer, Reactor, type Connection } from '../src';
import { frame, rawClient, readFrames, until, once, openFds, rejectsWith } from './helpers';

const reactor = new Reactor({ loops: 2 });

async function serverWithConns(extra = {}) {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be', ...extra }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  return { srv, conns, port };
}

test('a peer that closes is detected at once, with nobody reading', async () => {
  const { srv, conns, port } = await serverWithConns();
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const t0 = Date.now();
  const closed = conns[0].closed();
  s.end();
  const reason = await closed;
  assert.is(reason, undefined, 'an orderly close has no error');
  assert.ok(Date.now() - t0 < 1000);
  await srv.close();
});

test('a reset is reported as ECONNRESET', async () => {
  const { srv, conns, port } = await serverWithConns();
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const closed = conns[0].closed();
  s.resetAndDestroy();
  const reason = await closed;
  assert.is((reason as NodeJS.ErrnoException)?.code, 'ECONNRESET');
  await srv.close();
});

test('half-close: with allowHalfOpen the server still answers after the peer\'s FIN', async () => {
  const { srv, conns, port } = await serverWithConns({ allowHalfOpen: true });
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  await until(() => conns.length === 1);
  const c = conns[0];
  const ended = once(c, 'end');
  const got = readFrames(s, 1);
  s.end(); // FIN from the peer
  await ended;
  assert.not.ok(c.destroyed);
  c.write(frame('after your FIN'));
  c.end();
  assert.is((await got)[0].subarray(4).toString(), 'after your FIN');
  await c.closed();
  await srv.close();
});

test('shutdownWrite sends FIN after pending output; the peer can still talk', async () => {
  const { srv, conns, port } = await serverWithConns();
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await once(s, 'connect');
  await until(() => conns.length === 1);
  const c = conns[0];
  let received = Buffer.alloc(0);
  s.on('data', (d) => { received = Buffer.concat([received, d]); });
  const peerEnded = once(s, 'end');
  c.write(frame('bye'));
  c.shutdownWrite();
  await peerEnded;
  assert.is(received.subarray(4).toString(), 'bye');
  const frames: string[] = [];
  c.onFrame = (f) => frames.push(f.subarray(4).toString());
  s.write(frame('still sending'));
  await until(() => frames.length === 1);
  assert.is(frames[0], 'still sending');
  // After our FIN nothing more can be sent: every write path refuses quietly, the connection stays.
  assert.ok(c.writableEnded);
  assert.is(c.write(frame('late')), false);
  const m = c.writer.malloc(8);
  m.writeUInt32BE(4, 0); m.write('late', 4);
  s.write(frame('and still'));
  await until(() => frames.length === 2);
  assert.is(frames[1], 'and still');
  assert.not.ok(c.destroyed, 'no EPIPE close');
  assert.is(received.subarray(4).toString(), 'bye', 'nothing arrived after the FIN');
  s.destroy();
  await srv.close();
});

test('end() flushes pending output before closing; resetAndDestroy() sends RST', async () => {
  const { srv, conns, port } = await serverWithConns();
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const big = Buffer.alloc(4 * 1024 * 1024, 7);
  const got = readFrames(s, 1);
  conns[0].end(frame(big));
  const f = (await got)[0];
  assert.is(f.length, big.length + 4);
  const s2 = await rawClient(port);
  await until(() => conns.length === 2);
  const err = new Promise<NodeJS.ErrnoException>((res) => s2.on('error', res));
  conns[1].resetAndDestroy();
  assert.is((await err).code, 'ECONNRESET');
  await srv.close();
});

test("end() is node:net's half-close: the reply the peer sends after our FIN arrives, then 'end' and 'close'", async () => {
  // A node:net server that answers once it has the whole request (at the client's FIN).
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    let got = '';
    s.on('data', (d) => { got += d; });
    s.on('end', () => s.end(`got ${got.length} bytes`));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const c = await connect({ reactor, port: (srv.address() as net.AddressInfo).port, host: '127.0.0.1' });
  try {
    let reply = '';
    let ended = false;
    c.on('data', (d: Buffer) => { reply += d.toString(); });
    c.on('end', () => { ended = true; });
    c.end('x'.repeat(100000));
    assert.is(await c.closed(), undefined, 'an orderly close');
    assert.is(reply, 'got 100000 bytes');
    assert.ok(ended, "'end' came before 'close'");
  } finally {
    c.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test("a server's end() while the peer is still sending: the peer reads the whole reply and a FIN, not a reset", async () => {
  for (const round of [0, 1, 2]) {
    const srv = createServer({ reactor }, (c) => c.once('data', () => c.end('BYE\n')));
    const { port } = await srv.listen(0, '127.0.0.1');
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let error: Error | undefined;
    s.on('data', (d) => { got += d; });
    s.on('error', (e) => { error = e; });
    const chunk = Buffer.alloc(64 * 1024, round);
    const pump = setInterval(() => { if (!s.destroyed && s.writable) s.write(chunk); }, 1);
    await new Promise<void>((r) => s.on('close', () => r()));
    clearInterval(pump);
    assert.is(error, undefined, `round ${round}: no ECONNRESET`);
    assert.is(got, 'BYE\n');
    await until(() => srv.connectionCount === 0);
    await srv.close();
  }
});

test('lingerTimeout: an ended connection whose peer never closes is closed after it; 0 closes once the output is out', async () => {
  for (const linger of [300, 0]) {
    const { srv, conns, port } = await serverWithConns({ lingerTimeout: linger });
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }); // never ends its side
    s.resume();
    s.on('error', () => {});
    let ended = false;
    s.on('end', () => { ended = true; });
    await until(() => conns.length === 1);
    const t0 = Date.now();
    conns[0].end(frame('bye'));
    assert.is(await conns[0].closed(), undefined);
    const waited = Date.now() - t0;
    if (linger) assert.ok(waited >= 250 && waited < 3000, `closed after ${waited} ms`);
    else assert.ok(waited < 250, `closed after ${waited} ms`);
    await until(() => ended);
    s.destroy();
    await srv.close();
  }
  assert.throws(() => createServer({ reactor, lingerTimeout: -1 }), /lingerTimeout/);
});

test('server.close() with traffic in flight: queued output is delivered, then every connection closes', async () => {
  const { srv, conns, port } = await serverWithConns();
  const clients = await Promise.all([0, 1, 2].map(() => rawClient(port)));
  await until(() => conns.length === 3);
  assert.is(srv.connectionCount, 3);
  assert.is(await new Promise((r) => srv.getConnections((err, n) => r(err ?? n))), 3); // node:net's form
  assert.is(srv.connections.size, 3);
  const payload = Buffer.alloc(1024 * 1024, 1);
  const reads = clients.map((s) => readFrames(s, 3));
  for (const c of conns) for (let i = 0; i < 3; i++) c.write(frame(payload));
  await srv.close({ timeout: 5000 });
  const all = await Promise.all(reads);
  for (const frames of all) assert.is(frames.length, 3);
  assert.is(srv.connections.size, 0);
  assert.is(srv.connectionCount, 0);
});

test('server.close() resets connections whose peer never reads, after the deadline', async () => {
  const { srv, conns, port } = await serverWithConns();
  const s = await rawClient(port);
  s.pause(); // never reads
  s.on('error', () => {});
  await until(() => conns.length === 1);
  const big = Buffer.alloc(32 * 1024 * 1024, 1);
  conns[0].write(frame(big));
  const t0 = Date.now();
  await srv.close({ timeout: 200 });
  assert.ok(Date.now() - t0 < 3000);
  assert.ok(conns[0].destroyed);
  s.destroy();
});

test('a closed server can listen again (as node:net\'s), and serves; listen() while it is still closing is refused', async () => {
  const srv = createServer({ reactor }, (c) => c.on('data', (d: Buffer) => c.write(d)));
  const { port } = await srv.listen(0, '127.0.0.1');
  let closes = 0;
  srv.on('close', () => closes++);
  const held = await connect({ reactor, port });
  const closing = srv.close({ timeout: 300 });
  await rejectsWith(() => srv.listen(port, '127.0.0.1'), 'ERR_SERVER_CLOSING');
  await closing;
  assert.is(closes, 1);
  await srv.listen(port, '127.0.0.1');
  for (let i = 0; i < 3; i++) {
    const c = await connect({ reactor, port });
    const got = new Promise<string>((r) => c.once('data', (d) => r(d.toString())));
    c.write(`again ${i}`);
    assert.is(await got, `again ${i}`, 'new connections are served, not ended');
    c.destroy();
    await c.closed();
  }
  assert.is(closes, 1, "'close' is not emitted again as later connections close");
  await srv.close();
  assert.is(closes, 2);
});

test('a closed reactor refuses listen() and connect() with ERR_LINKPOLL_SHUTDOWN (it crashed the process); the default one is made again', async () => {
  const r = new Reactor({ loops: 2 });
  const srv = createServer({ reactor: r }, (c) => c.on('data', (d: Buffer) => c.write(d)));
  const { port } = await srv.listen(0, '127.0.0.1');
  const c = await connect({ reactor: r, port });
  r.close();
  assert.ok(r.isClosed);
  assert.is((c.closeReason as NodeJS.ErrnoException)?.code, 'ERR_LINKPOLL_SHUTDOWN');
  await rejectsWith(() => createServer({ reactor: r }).listen(0, '127.0.0.1'), 'ERR_LINKPOLL_SHUTDOWN');
  await rejectsWith(() => connect({ reactor: r, port }), 'ERR_LINKPOLL_SHUTDOWN');
  assert.is(c.write('x'), false);
  await srv.close();
  // The process-wide reactor: closing it does not leave the process without one.
  const { getDefaultReactor } = await import('../src');
  const old = getDefaultReactor();
  old.close();
  const fresh = getDefaultReactor();
  assert.is.not(fresh, old);
  const s2 = createServer((k) => k.on('data', (d: Buffer) => k.write(d)));
  const a = await s2.listen(0, '127.0.0.1');
  const k = await connect(a.port);
  const got = new Promise<string>((res) => k.once('data', (d) => res(d.toString())));
  k.write('fresh');
  assert.is(await got, 'fresh');
  k.destroy();
  await s2.close();
});

test('a client sees the server go away', async () => {
  const { srv, port } = await serverWithConns();
  const c = await connect({ reactor, port, framing: 'u32be' });
  const closed = c.closed();
  await srv.close();
  assert.is(await closed, undefined);
  assert.ok(c.destroyed);
  assert.is(c.write('x'), false, 'write after close is refused, not thrown');
});

test('no fds are left open after close()', async () => {
  await new Promise((r) => setTimeout(r, 50));
  const before = openFds();
  const r2 = new Reactor({ loops: 2 });
  const srv = createServer({ reactor: r2, framing: 'u32be', onFrame: (f, c) => { c.write(f); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect({ reactor: r2, port, framing: 'u32be' })));
  await Promise.all(clients.map((c) => new Promise<void>((res) => { c.onFrame = () => res(); c.write(frame('x')); })));
  assert.ok(openFds() > before + 40);
  for (const c of clients) c.end();
  await Promise.all(clients.map((c) => c.closed()));
  await srv.close();
  r2.close();
  await new Promise((r) => setTimeout(r, 50)); // libuv closes the epoll fds on its next turn
  assert.is(openFds(), before);
});

test('idle connections hold no buffer; memory returns to the pool when connections close', async () => {
  const r3 = new Reactor({ loops: 2 });
  const srv = createServer({ reactor: r3, framing: 'u32be', onFrame: (f, c) => { c.write(f); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const clients = await Promise.all(Array.from({ length: 200 }, () => connect({ reactor: r3, port, framing: 'u32be' })));
  // Traffic on every connection, with a partial frame left hanging on half of them.
  await Promise.all(clients.map((c, i) => new Promise<void>((res) => {
    c.onFrame = () => res();
    c.write(frame(Buffer.alloc(1000, i)));
  })));
  const half = frame(Buffer.alloc(100)).subarray(0, 50);
  clients.slice(0, 100).forEach((c) => c.write(half));
  await new Promise((r) => setTimeout(r, 50));
  const busy = r3.stats();
  // 200 connections, 100 of them holding 50 bytes of an incomplete frame: the read slabs of the
  // two loops plus the staging block, not a buffer per connection.
  assert.ok(busy.poolLiveBytes <= 4 * 64 * 1024, `live ${busy.poolLiveBytes}`);
  for (const c of clients) c.destroy();
  await srv.close();
  await until(() => r3.stats().connections === 0);
  await new Promise((r) => setTimeout(r, 1200)); // idle memory is given back after ~1 s
  const after = r3.stats();
  assert.ok(after.poolLiveBytes <= 64 * 1024, `live after close ${after.poolLiveBytes}`); // the writers' staging block
  assert.is(after.poolCachedBytes, 0);
  r3.close();
});

test.after(() => reactor.close());
test.run();
