// Servers no client can break: peers that never read, hang up while we are not reading, close
// their write side early, or call after a connection was destroyed. Real sockets, node:net peers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { createServer, Reactor, type Connection } from '../src';
import { frame, rawClient, until } from './helpers';

const reactor = new Reactor();
const MiB = 1024 * 1024;

/** Writes `total` bytes of u32be frames of `size` as fast as the socket takes them, never reading. */
function flood(s: net.Socket, total: number, size: number): { sent: () => number } {
  const f = frame(Buffer.alloc(size - 4, 7));
  let sent = 0;
  const pump = () => {
    while (sent < total && !s.destroyed) {
      sent += f.length;
      if (!s.write(f)) { s.once('drain', pump); return; }
    }
  };
  pump();
  return { sent: () => sent };
}

test('a client that pipelines and never reads: the server stops reading it, its backlog stays near highWaterMark', async () => {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be', onFrame: (f, c) => { c.write(f); } }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  s.pause(); // reads nothing: the replies fill its receive buffer, then ours
  const fl = flood(s, 96 * MiB, 16 * 1024);
  await until(() => conns.length === 1);
  const c = conns[0]!;
  // Wait until the flood has stalled (the server no longer reads), or everything was sent.
  let last = -1;
  await until(() => { const r = c.bytesRead; const still = r === last; last = r; return still && r > 0; }, 20000, 'reading to stop');
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(c.bytesRead === last, 'the server is not reading');
  assert.ok(c.bytesRead < 48 * MiB, `the server read ${c.bytesRead} bytes of a client that reads nothing`);
  // Default highWaterMark 1 MiB: the backlog is under it plus one read's replies.
  assert.ok(c.writableLength < 2 * MiB, `backlog ${c.writableLength}`);
  assert.ok(fl.sent() > c.bytesRead, 'the client was held back by TCP');
  // The client starts reading: everything it sent is answered, byte for byte.
  let got = 0;
  s.on('data', (d: Buffer) => { got += d.length; });
  s.resume();
  await until(() => fl.sent() >= 96 * MiB && got === fl.sent(), 30000, 'every frame echoed');
  s.destroy();
  await srv.close();
});

test('readPauseOnBacklog: false keeps reading (the old behaviour, for a server that wants it)', async () => {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be', readPauseOnBacklog: false, onFrame: (f, c) => { c.write(f); } }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  s.pause();
  flood(s, 24 * MiB, 16 * 1024);
  await until(() => conns.length === 1);
  await until(() => conns[0]!.writableLength > 8 * MiB, 20000, 'a backlog past highWaterMark');
  s.destroy();
  await srv.close();
});

test('a paused connection sees its peer hang up (pause(), and the backlog pause)', async () => {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be' }, (c) => { conns.push(c); c.pause(); });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const c = conns[0]!;
  const ended = new Promise<void>((r) => c.once('end', () => r()));
  const closed = c.closed();
  s.end(); // FIN, nothing unread before it
  await ended;
  await closed;
  assert.ok(c.destroyed);
  await srv.close();
});

test('a paused connection with unread input before the FIN: nothing is lost, the end comes after it', async () => {
  const frames: string[] = [];
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be', onFrame: (f) => { frames.push(f.subarray(4).toString()); } }, (c) => { conns.push(c); c.pause(); });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const c = conns[0]!;
  let ended = false;
  c.on('end', () => { ended = true; });
  s.end(Buffer.concat([frame('a'), frame('b')]));
  await new Promise((r) => setTimeout(r, 100));
  assert.is(ended, false, 'no end before the frames that precede it');
  c.resume();
  await until(() => ended, 2000, 'end');
  assert.equal(frames, ['a', 'b']);
  await srv.close();
});

test('write() after destroy() returns false and reports ERR_STREAM_DESTROYED; malloc() throws', async () => {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be' }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const c = conns[0]!;
  c.destroy();
  assert.ok(c.destroyed);
  let cbErr: NodeJS.ErrnoException | undefined;
  assert.is(c.write(frame('late'), (e) => { cbErr = e ?? undefined; }), false);
  await until(() => cbErr !== undefined, 1000, 'the callback');
  assert.is(cbErr!.code, 'ERR_STREAM_DESTROYED');
  try {
    c.writer.malloc(8);
    assert.unreachable('malloc on a destroyed connection');
  } catch (e) {
    assert.is((e as NodeJS.ErrnoException).code, 'ERR_STREAM_DESTROYED');
  }
  s.destroy();
  await srv.close();
});

test("a client's frame or timeout failure nobody listens for: 'clientError' on the server, else a log line (rate-limited)", async () => {
  const logs: string[] = [];
  const srv = createServer({ reactor, framing: 'u32be', maxFrameSize: 1024, readTimeout: 200, logger: { warn: (m) => logs.push(m) } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const big = await rawClient(port);
  big.on('error', () => {});
  big.write(Buffer.from([0, 0, 0x10, 0]));
  await until(() => logs.length === 1, 2000, 'a log line');
  assert.match(logs[0]!, /^linkpoll: a frame of 4100 bytes exceeded maxFrameSize \(1024 bytes\).*\(from 127\.0\.0\.1:\d+\)$/);
  const seen: string[] = [];
  srv.on('clientError', (err: NodeJS.ErrnoException) => seen.push(err.code!));
  const slow = await rawClient(port);
  slow.write(Buffer.from([0, 0]));
  await until(() => seen.length === 1, 2000, "'clientError'");
  assert.equal(seen, ['ETIMEDOUT']);
  assert.is(logs.length, 1, 'a listener takes the place of the log');
  // A burst is logged at most 10 times a second.
  srv.removeAllListeners('clientError');
  await new Promise((r) => setTimeout(r, 1100));
  const burst = await Promise.all(Array.from({ length: 30 }, () => rawClient(port)));
  for (const b of burst) { b.on('error', () => {}); b.write(Buffer.from([0xff, 0, 0, 0])); }
  await new Promise((r) => setTimeout(r, 300));
  assert.is(logs.length, 11, logs.join('\n'));
  for (const b of [big, slow, ...burst]) b.destroy();
  await srv.close();
});

test('a malloc() view kept past mallocAck() does not overlap the output that follows', async () => {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be' }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const w = conns[0]!.writer;
  const a = w.malloc(10);
  a.writeUInt32BE(2, 0);
  a.write('ab', 4);
  w.mallocAck(6); // keeps the frame 'ab', drops 4 bytes
  const b = w.malloc(10);
  b.writeUInt32BE(6, 0);
  b.write('XXXXXX', 4);
  a.write('!!!!', 6); // a late write into the dropped tail
  assert.is(a.subarray(0, 6).toString('latin1', 4), 'ab');
  assert.not.ok(a.toString('latin1').includes('XX'), `the first view reads ${JSON.stringify(a.toString('latin1'))}`);
  const got = await new Promise<Buffer>((resolve) => { let acc = Buffer.alloc(0); s.on('data', (d: Buffer) => { acc = Buffer.concat([acc, d]); if (acc.length >= 16) resolve(acc); }); });
  assert.is(got.toString('latin1', 4, 6), 'ab');
  assert.is(got.toString('latin1', 10, 16), 'XXXXXX', 'the next frame is intact');
  s.destroy();
  await srv.close();
});

test('createServer checks its handlers when it is made, not at the first frame', () => {
  assert.throws(() => createServer({ reactor, onFrame: 1 as unknown as () => void }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE' && /onFrame/.test(e.message));
  assert.throws(() => createServer({ reactor, logger: {} as { warn(m: string): void } }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
});

test('incomplete large frames of all connections together stay within partialFrameBudget; those waiting are read once room frees', async () => {
  const r = new Reactor();
  const got: number[] = [];
  const srv = createServer({ reactor: r, framing: 'u32be', maxFrameSize: 8 * MiB, partialFrameBudget: 8 * MiB, onFrame: (f) => { got.push(f.length); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const body = 4 * MiB;
  const clients = await Promise.all([0, 1, 2, 3].map(() => rawClient(port)));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body);
  // Each sends its header and half of its frame, then waits.
  for (const s of clients) s.write(Buffer.concat([head, Buffer.alloc(body / 2, 1)]));
  await new Promise((res) => setTimeout(res, 400));
  const held = r.stats().poolLiveBytes;
  assert.ok(held < 8 * MiB + 2 * MiB, `incomplete frames hold ${held} bytes (four of 4 MiB were started)`);
  for (const s of clients) s.write(Buffer.alloc(body / 2, 2)); // the rest
  await until(() => got.length === 4, 5000, 'every frame');
  assert.equal(got, [body + 4, body + 4, body + 4, body + 4]);
  for (const s of clients) s.destroy();
  await srv.close();
  r.close();
});

test.after(() => reactor.close());
test.run();
