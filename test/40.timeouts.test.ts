import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { connect, createServer, Reactor, type Connection } from '../src';
import { frame, rawClient, until } from './helpers';

const reactor = new Reactor();

async function serverWithConns(extra = {}) {
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'u32be', onFrame: (f, c) => { c.write(f); }, ...extra }, (c) => conns.push(c));
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  return { srv, conns, port };
}

test('read timeout: an incomplete frame older than readTimeout closes with ETIMEDOUT', async () => {
  const { srv, conns, port } = await serverWithConns({ readTimeout: 150 });
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  // Complete frames keep it alive...
  for (let i = 0; i < 4; i++) {
    s.write(frame('ok'));
    await new Promise((r) => setTimeout(r, 60));
  }
  assert.not.ok(conns[0].destroyed, 'complete frames must not trip the read timeout');
  // ...half a frame does not.
  const t0 = Date.now();
  const closed = conns[0].closed();
  s.write(frame('half a frame').subarray(0, 6));
  const err = (await closed) as NodeJS.ErrnoException & { timeout?: string };
  assert.is(err?.code, 'ETIMEDOUT');
  assert.is(err.timeout, 'read');
  const took = Date.now() - t0;
  assert.ok(took >= 140 && took < 1000, `fired after ${took} ms`);
  s.destroy();
  await srv.close();
});

test('read timeout counts from the last progress: a stream always ending mid-message lives, a stalled one does not', async () => {
  // Data mode: the handler takes whole lines and leaves the partial one for the next read.
  const conns: Connection[] = [];
  const srv = createServer({ reactor, framing: 'none', readTimeout: 200 }, (c) => {
    conns.push(c);
    c.on('readable', () => {
      const r = c.reader;
      let line: Buffer | null;
      while ((line = r.until(10)) !== null) c.write(line);
      r.release();
    });
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  s.on('data', () => {});
  await until(() => conns.length === 1);
  // 900 ms of lines whose last one is always cut: progress every 50 ms, a partial line always left.
  for (let i = 0; i < 18; i++) {
    s.write(`end of ${i}\nstart of ${i + 1} `);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.not.ok(conns[0]!.destroyed, 'a stream making progress must not trip the read timeout');
  // A peer that sends a byte at a time and never completes a line: closed (no progress).
  const closed = conns[0]!.closed();
  const drip = setInterval(() => s.write('x'), 40);
  const err = (await closed) as NodeJS.ErrnoException & { timeout?: string };
  clearInterval(drip);
  assert.is(err?.timeout, 'read');
  s.destroy();
  await srv.close();
});

test('read timeout does not run while we stopped reading (pause): the rest of a frame waits on our account', async () => {
  const conns: Connection[] = [];
  const got: string[] = [];
  const srv = createServer({ reactor, framing: 'u32be', readTimeout: 150 }, (c) => {
    conns.push(c);
    c.on('frame', (f: Buffer) => {
      got.push(f.subarray(4).toString());
      if (got.length === 1) { c.pause(); setTimeout(() => c.resume(), 500); } // a slow handler, as maxInFlight pauses
    });
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const s = await rawClient(port);
  const second = frame('second');
  s.write(Buffer.concat([frame('first'), second.subarray(0, 5)])); // the second frame half sent
  await until(() => got.length === 1);
  await new Promise((r) => setTimeout(r, 550)); // paused 500 ms, then 50 ms of waiting: under 150
  assert.not.ok(conns[0]!.destroyed, 'no read timeout while paused');
  s.write(second.subarray(5));
  await until(() => got.length === 2);
  assert.equal(got, ['first', 'second']);
  s.destroy();
  await srv.close();
});

test('idle timeout: no traffic in either direction closes with ETIMEDOUT', async () => {
  const { srv, conns, port } = await serverWithConns({ idleTimeout: 120 });
  const s = await rawClient(port);
  await until(() => conns.length === 1);
  const t0 = Date.now();
  const err = (await conns[0].closed()) as NodeJS.ErrnoException & { timeout?: string };
  assert.is(err?.code, 'ETIMEDOUT');
  assert.is(err.timeout, 'idle');
  assert.ok(Date.now() - t0 >= 100);
  s.destroy();
  await srv.close();
});

test('setTimeout (node:net\'s): \'timeout\' once per quiet spell, again after traffic, the connection stays open; 0 turns it off', async () => {
  const { srv, conns, port } = await serverWithConns({ timeout: 120 }); // the server-wide option
  const client = await connect({ reactor, port, host: '127.0.0.1', framing: 'u32be' });
  await until(() => conns.length === 1);
  const server = conns[0]!;
  assert.is(server.timeout, 120);
  let serverQuiet = 0, clientQuiet = 0, viaCallback = 0;
  server.on('timeout', () => serverQuiet++);
  client.on('timeout', () => clientQuiet++);
  assert.is(client.timeout, undefined);
  client.setTimeout(120, () => viaCallback++);
  assert.is(client.timeout, 120);
  await until(() => serverQuiet === 1 && clientQuiet === 1, 2000);
  await new Promise((r) => setTimeout(r, 400)); // still quiet: no second event, nothing closed
  assert.equal([serverQuiet, clientQuiet, viaCallback], [1, 1, 1]);
  assert.ok(!server.destroyed && !client.destroyed);
  // Traffic ends the quiet spell: the echo goes both ways, then quiet again: one more each.
  const echoed = new Promise<Buffer>((r) => client.once('frame', (f: Buffer) => r(Buffer.from(f))));
  client.write(frame('hi'));
  assert.is((await echoed).subarray(4).toString(), 'hi'); // (a frame includes its length)
  await until(() => serverQuiet === 2 && clientQuiet === 2, 2000);
  assert.is(viaCallback, 1); // the callback was a once listener
  // Traffic more often than the timeout: no event.
  for (let i = 0; i < 8; i++) { client.write(frame('x')); await new Promise((r) => setTimeout(r, 50)); }
  assert.equal([serverQuiet, clientQuiet], [2, 2]);
  client.setTimeout(0);
  server.setTimeout(0);
  assert.is(client.timeout, undefined);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal([serverQuiet, clientQuiet], [2, 2]);
  assert.throws(() => client.setTimeout(-1), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE' || e.code === 'ERR_INVALID_ARG_VALUE');
  client.destroy();
  await srv.close();
});

test('write timeout: a peer that does not drain our output closes with ETIMEDOUT', async () => {
  const { srv, conns, port } = await serverWithConns({ writeTimeout: 150 });
  const s = await rawClient(port);
  s.pause();
  s.on('error', () => {});
  await until(() => conns.length === 1);
  conns[0].write(frame(Buffer.alloc(16 * 1024 * 1024)));
  const err = (await conns[0].closed()) as NodeJS.ErrnoException & { timeout?: string };
  assert.is(err?.code, 'ETIMEDOUT');
  assert.is(err.timeout, 'write');
  s.destroy();
  await srv.close();
});

test('connect timeout: an unanswered SYN fails with ETIMEDOUT', async () => {
  // A listener that never accepts, with an accept queue of one: once it is full, the kernel
  // drops further SYNs, so a connect hangs until our timeout.
  const py = spawn('python3', ['-c', [
    'import socket,sys,time',
    's=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0)',
    'print(s.getsockname()[1]); sys.stdout.flush(); time.sleep(30)'].join('\n')]);
  const port = Number(await new Promise<string>((res) => py.stdout.once('data', (d) => res(String(d)))));
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const f = net.connect(port, '127.0.0.1');
    f.on('error', () => {});
    fillers.push(f);
  }
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  try {
    await connect({ reactor, port, connectTimeout: 200 });
    assert.unreachable('connected through a full accept queue');
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { timeout?: string };
    assert.is(err.code, 'ETIMEDOUT');
    assert.is(err.timeout, 'connect');
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    for (const f of fillers) f.destroy();
    py.kill();
  }
});

test.after(() => reactor.close());
test.run();
