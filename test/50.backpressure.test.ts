import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, Reactor, type Connection } from '../src';
import { frame, rawClient, until, seededRandom } from './helpers';

const reactor = new Reactor();

test('a writer whose peer does not read is told: write() false, then drain', async () => {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be', highWaterMark: 256 * 1024 }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  s.pause();
  await until(() => conns.length === 1);
  const c = conns[0];
  const chunk = frame(Buffer.alloc(64 * 1024 - 4, 1));
  // Keep writing across ticks until the kernel's buffers are full and a real backlog builds.
  let writes = 0;
  let refused = false;
  while (writes < 4000) {
    writes++;
    if (!c.write(chunk)) {
      refused = true;
      await new Promise((r) => setTimeout(r, 5));
      if (c.writableLength >= 256 * 1024) break; // the backlog is real: the kernel refused it
    }
  }
  assert.ok(refused, 'write() returned false');
  assert.ok(writes < 4000, 'a backlog built up');
  assert.ok(c.writableNeedDrain);
  assert.ok(c.writableLength >= 256 * 1024, `backlog ${c.writableLength}`);
  const st = reactor.stats();
  // The backlog is what the kernel refused, bounded by what we wrote: no runaway buffering.
  assert.ok(st.poolLiveBytes < (writes + 2) * chunk.length + 2 * 1024 * 1024);
  const drained = new Promise((r) => c.once('drain', r));
  s.resume();
  await drained;
  assert.is(c.writableLength, 0);
  s.destroy();
  await srv.close();
});

test('a slow consumer: input stops being read at maxInput, memory stays bounded, nothing is lost', async () => {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, maxInput: 256 * 1024 }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const c = conns[0];
  // The handler does not consume; the peer writes 32 MiB.
  const total = 32 * 1024 * 1024;
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
  let sent = 0;
  const pump = () => {
    while (sent < total) {
      sent += block.length;
      if (!s.write(block)) { s.once('drain', pump); return; }
    }
  };
  pump();
  await new Promise((r) => setTimeout(r, 300));
  const held = c.reader.length;
  assert.ok(held >= 256 * 1024 && held < 2 * 1024 * 1024, `holding ${held} bytes`);
  assert.ok(reactor.stats().poolLiveBytes < 4 * 1024 * 1024, `pool ${reactor.stats().poolLiveBytes}`);
  assert.ok(sent < total, 'the peer was slowed by TCP flow control');
  // Now consume everything and check every byte.
  let got = 0;
  let ok = true;
  const consume = () => {
    const r = c.reader;
    while (r.length > 0) {
      const n = Math.min(r.length, 65536);
      const v = r.next(n);
      for (let i = 0; i < n; i += 997) if (v[i] !== ((got + i) % block.length) % 256) ok = false;
      got += n;
    }
    r.release();
  };
  c.on('readable', consume);
  consume();
  await until(() => got === total, 10000, 'all bytes');
  assert.ok(ok, 'bytes arrived intact and in order');
  s.destroy();
  await srv.close();
});

test('pause() stops frame delivery; resume() delivers what was held, in order', async () => {
  const frames: number[] = [];
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be' }, (c) => {
    conns.push(c);
    c.onFrame = (f) => {
      frames.push(f.readUInt32BE(4));
      if (frames.length === 1) c.pause();
    };
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  const parts = [];
  for (let i = 0; i < 100; i++) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(i, 0);
    parts.push(frame(b));
  }
  s.write(Buffer.concat(parts));
  await until(() => frames.length >= 1);
  await new Promise((r) => setTimeout(r, 50));
  assert.is(frames.length, 1);
  conns[0].resume();
  await until(() => frames.length === 100);
  assert.equal(frames, Array.from({ length: 100 }, (_, i) => i));
  s.destroy();
  await srv.close();
});

test.after(() => reactor.close());
test('random pause()/resume() while frames arrive: every frame delivered once, in order (model check)', async () => {
  const rnd = seededRandom(31337);
  const total = 20000;
  const seen: number[] = [];
  let conn: Connection | undefined;
  const server = createServer({ framing: 'u32be' }, (c) => {
    conn = c;
    c.on('frame', (f: Buffer) => {
      seen.push(f.readUInt32BE(4));
      // Pause at random from inside the handler (frames of this batch queue up), resume later or at once.
      if (rnd(50) === 0) {
        c.pause();
        if (rnd(3) === 0) c.resume();
        else setTimeout(() => c.resume(), rnd(5));
      }
    });
  });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  for (let i = 0; i < total;) {
    const n = 1 + rnd(400);
    const chunk: Buffer[] = [];
    for (let k = 0; k < n && i < total; k++, i++) {
      const body = Buffer.alloc(4 + rnd(60));
      body.writeUInt32BE(i, 0);
      chunk.push(frame(body));
    }
    s.write(Buffer.concat(chunk));
    if (rnd(4) === 0) await new Promise((r) => setTimeout(r, 1));
    // Pause and resume from outside a handler too.
    if (conn && rnd(10) === 0) { conn.pause(); setTimeout(() => conn!.resume(), rnd(3)); }
  }
  await until(() => seen.length >= total && !conn!.isPausedReading, 10000, `${total} frames`);
  await new Promise((r) => setTimeout(r, 20));
  assert.is(seen.length, total, 'no frame twice');
  for (let i = 0; i < total; i++) if (seen[i] !== i) assert.unreachable(`frame ${i} arrived as ${seen[i]}`);
  s.destroy();
  await server.close();
});

test('a writer that honours write() === false and waits for drain, to a peer that pauses at random: all bytes, in order', async () => {
  const rnd = seededRandom(777);
  const total = 24 * 1024 * 1024;
  let drainsSeen = 0;
  const server = createServer({ framing: 'none', highWaterMark: 64 * 1024 }, async (c) => {
    let sent = 0, drains = 0;
    while (sent < total) {
      const n = Math.min(total - sent, 1 + rnd(100000));
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (sent + i) % 251;
      sent += n;
      const path = rnd(3);
      const more = path === 0 ? c.write(b) : path === 1 ? (c.writer.writeBinary(b), c.writableLength < 64 * 1024) : (() => { const m = c.writer.malloc(n); b.copy(m); return c.writableLength < 64 * 1024; })();
      if (!more || c.writableNeedDrain) { await new Promise((r) => c.once('drain', r)); drains++; }
      else if (rnd(5) === 0) await new Promise((r) => setImmediate(r));
    }
    drainsSeen = drains;
    c.end();
  });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  let got = 0, bad = -1;
  s.on('data', (d: Buffer) => {
    for (let i = 0; i < d.length && bad < 0; i++) if (d[i] !== (got + i) % 251) bad = got + i;
    got += d.length;
    if (rnd(20) === 0) { s.pause(); setTimeout(() => s.resume(), rnd(20)); }
  });
  await new Promise<void>((r) => s.on('end', () => r()));
  assert.is(got, total);
  assert.is(bad, -1, `byte ${bad} out of place`);
  assert.ok(drainsSeen > 10, `the writer waited for drain (${drainsSeen} times)`);
  await server.close();
});

/** A server recording its connections, and a raw node:net client connected to it. */
async function serverAndRawClient() {
  const conns: Connection[] = [];
  const srv = createServer({ reactor }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  return { conns, srv, s: await rawClient(port) };
}

test("write(data, cb) / end(cb): each callback runs once its bytes are in the kernel, in order; not before the peer has taken them; with an error if they never get there", async () => {
  const { conns, srv, s } = await serverAndRawClient();
  s.pause(); // takes nothing until resumed: our output stays in user space once the kernel's buffers fill
  try {
    await until(() => conns.length === 1);
    const c = conns[0]!;
    let drains = 0;
    c.on('drain', () => drains++);
    const done: string[] = [];
    let received = 0;
    c.write('small', (err) => done.push(`small ${err ?? 'ok'}`));
    await until(() => done.length === 1);
    assert.equal(done, ['small ok']);
    assert.is(drains, 0, "a callback's watch is not a 'drain' (write() never returned false)");

    const big = Buffer.alloc(48 * 1024 * 1024, 1);
    let receivedAtCb = -1;
    c.write(big, (err) => { receivedAtCb = received; done.push(`big ${err ?? 'ok'}`); });
    c.write('after', 'latin1', (err) => done.push(`after ${err ?? 'ok'}`));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(done, ['small ok'], 'nothing more runs while the peer takes nothing');
    s.on('data', (d: Buffer) => { received += d.length; });
    s.resume();
    await until(() => done.length === 3);
    assert.equal(done, ['small ok', 'big ok', 'after ok'], 'in order');
    // Only the kernel's buffers (a few MiB on loopback) may still hold the rest by then.
    assert.ok(receivedAtCb >= big.length - 16 * 1024 * 1024, `the peer had read ${receivedAtCb} bytes when the callback ran`);

    // Output that never reaches the kernel: the callback has the reason.
    s.pause();
    const errs: (Error | null | undefined)[] = [];
    c.write(big, (err) => errs.push(err));
    c.write('x', (err) => errs.push(err));
    await new Promise((r) => setTimeout(r, 100));
    c.destroy();
    await until(() => errs.length === 2);
    assert.equal(errs.map((e) => (e as NodeJS.ErrnoException)?.code), ['ERR_LINKPOLL_CLOSED', 'ERR_LINKPOLL_CLOSED']);
    const late = await new Promise<Error | null | undefined>((r) => c.write('late', r));
    assert.is((late as NodeJS.ErrnoException)?.code, 'ERR_STREAM_DESTROYED', 'a write after destroy() is refused through its callback, as node:net does');
  } finally {
    s.destroy();
    await srv.close();
  }
});

test('end(data, cb) and write encodings as node:net: latin1, hex, base64; an unknown encoding or a callback that is not a function throws', async () => {
  const { conns, srv, s } = await serverAndRawClient();
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  const ended = new Promise<void>((r) => s.on('end', () => r()));
  try {
    await until(() => conns.length === 1);
    const c = conns[0]!;
    assert.throws(() => c.write('x', 'bogus' as BufferEncoding), (e: NodeJS.ErrnoException) => e.code === 'ERR_UNKNOWN_ENCODING');
    assert.throws(() => c.write('x', 'utf8', 5 as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
    c.write('é', 'latin1');
    c.write('4142', 'hex');
    c.write('Q0Q=', 'base64');
    let finished = false;
    c.end('!', () => { finished = true; });
    const afterEnd = await new Promise<Error | null | undefined>((r) => c.write('no', r));
    assert.is((afterEnd as NodeJS.ErrnoException)?.code, 'ERR_STREAM_WRITE_AFTER_END');
    await ended;
    await until(() => finished); // end's callback: everything is out

    assert.equal([...Buffer.concat(chunks)], [0xe9, 0x41, 0x42, 0x43, 0x44, 0x21]);
    assert.is(typeof c.localPort, 'number');
    assert.is(c.localAddress, '127.0.0.1');
    assert.is(c.localPort, s.remotePort);
  } finally {
    s.destroy();
    await srv.close();
  }
});

test.run();
