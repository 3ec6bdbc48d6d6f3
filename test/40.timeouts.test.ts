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
