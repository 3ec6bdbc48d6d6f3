import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import * as net from 'node:net';
import * as http from 'node:http';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { fork, type ChildProcess } from 'node:child_process';
import { LinkpollError } from '../src';
import * as rpc from '../src/rpc/internal';
import { until, once, rawClient, readFrames, ttheaderCall, seededRandom } from './helpers';

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures');
const idl = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'everything.thrift'), 'utf8'));
const gee = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'geecache.thrift'), 'utf8'));
const Kitchen = idl.services.Kitchen;
const fired: string[] = [];

async function kitchen(opts: rpc.RpcServerOptions = {}) {
  const srv = new rpc.RpcServer({ logger: null, ...opts });
  srv.register(Kitchen, {
    echo: (a) => a.e,
    nothing: () => undefined,
    fail: (a) => {
      if (a.how === 1) throw new rpc.DeclaredException('nf', { what: 'the thing' });
      throw new Error(`failed ${a.how}`);
    },
    fire: (a) => { fired.push(a.msg as string); },
    slow: (a) => new Promise((r) => setTimeout(() => r(`slept ${a.ms}`), a.ms as number)),
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  return { srv, port };
}

for (const transport of ['ttheader', 'framed'] as const) {
  test(`${transport}: calls, void, oneway, declared and application exceptions`, async () => {
    const { srv, port } = await kitchen();
    const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport });
    const e = { text: 'hi', nums: [1, 2], big: 5n, inner: { s: 'x' } };
    assert.equal(await c.call('echo', { e }), e);
    assert.is(await c.call('nothing', {}), undefined);
    assert.is(await c.call('nothing'), undefined); // a method without parameters needs no args object
    await c.call('fire', { msg: `one-way ${transport}` });
    await until(() => fired.includes(`one-way ${transport}`));
    try { await c.call('fail', { how: 1 }); assert.unreachable(); } catch (err) {
      assert.instance(err, rpc.RemoteException);
      assert.is((err as rpc.RemoteException).field, 'nf');
      assert.equal((err as rpc.RemoteException).value, { what: 'the thing' });
      assert.is((err as rpc.RemoteException).typeName, 'NotFound');
      assert.is((err as Error).message, 'remote exception NotFound (nf): the thing');
    }
    try { await c.call('fail', { how: 2 }); assert.unreachable(); } catch (err) {
      assert.instance(err, rpc.TApplicationException);
      assert.is((err as rpc.TApplicationException).message, 'failed 2');
      assert.is((err as rpc.TApplicationException).type, 6);
    }
    c.close();
    await srv.close();
  });
}

test('a one-way call resolves once its message is sent: closing the client right after loses nothing', async () => {
  const { srv, port } = await kitchen();
  for (const transport of ['ttheader', 'framed', 'binary'] as const) {
    for (const size of [10, 8 << 20]) { // 8 MB: more than the kernel takes at once
      const msg = `${transport}:${size}:`.padEnd(size, 'x');
      const c = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${port}`, transport });
      await c.call('fire', { msg });
      c.close();
      await until(() => fired.includes(msg), 5000);
    }
  }
  await srv.close();
});

test('services sharing a method name: routed by "Service:method", by Kitex\'s isn header or ToService, else the first registered', async () => {
  const two = rpc.parseIdl(`
    service Alpha { string who(1: string x) }
    service Beta { string who(1: string x) }
  `).services;
  const srv = new rpc.RpcServer({ logger: null });
  const seen: string[] = [];
  srv.register(two.Alpha!, { who: (a: Record<string, unknown>, ctx: rpc.CallContext) => { seen.push(`${ctx.service}.${ctx.method}`); return `alpha ${a.x}`; } });
  srv.register(two.Beta!, { who: (a) => `beta ${a.x}` });
  srv.register(two.Beta!, { who: (a) => `pantry ${a.x}` }, { name: 'Pantry' }); // one service under a second name
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const target = `127.0.0.1:${port}`;
  const clients: rpc.RpcClient[] = [];
  const call = async (opts: Partial<rpc.RpcClientOptions>, callOpts: rpc.CallOptions = {}) => {
    const c = new rpc.RpcClient({ service: two.Beta!, targets: target, ...opts });
    clients.push(c);
    return c.call('who', { x: '1' }, callOpts);
  };
  try {
    assert.is(await call({ transport: 'framed' }), 'alpha 1'); // the name alone: the first registered
    assert.is(await call({ transport: 'framed', multiplexed: true }), 'beta 1');
    assert.is(await call({ transport: 'binary', multiplexed: 'Pantry' }), 'pantry 1');
    assert.is(await call({ transport: 'framed', multiplexed: 'Alpha' }), 'alpha 1');
    assert.is(await call({ transport: 'ttheader' }), 'beta 1'); // our client sends ToService = its service
    assert.is(await call({ transport: 'ttheader' }, { headers: { isn: 'Pantry' } }), 'pantry 1'); // Kitex's IDL service name wins
    assert.equal(seen, ['Alpha.who', 'Alpha.who']); // the context names the method, not "Alpha:who"
    const unknown = await call({ transport: 'framed', multiplexed: 'Nobody' }).then(() => undefined, (e: rpc.TApplicationException) => e);
    assert.is(unknown?.type, 1); // UNKNOWN_METHOD
    assert.throws(() => srv.register(two.Beta!, { who: () => '' }, { name: 'a:b' }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
  } finally {
    for (const c of clients) c.close();
    await srv.close();
  }
});

test('random mixed traffic over every transport: 4 x 1,500 calls, each answered with its own value or its own error', async () => {
  // Handlers answer at once or after a random delay, throw, or raise the declared exception;
  // arguments and replies range from empty to 200 KB; calls arrive in random bursts over a pool.
  const rnd = seededRandom(4242);
  const srv = new rpc.RpcServer({ logger: null });
  const later = <T>(v: () => T, ms: number) => new Promise<T>((res, rej) => setTimeout(() => { try { res(v()); } catch (e) { rej(e); } }, ms));
  srv.register(Kitchen, {
    echo: (a) => {
      const e = a.e as { text: string; blob?: Buffer };
      const mode = e.text.charCodeAt(0) % 3;
      return mode === 0 ? e : later(() => e, e.text.length % 7);
    },
    fail: (a) => {
      const how = a.how as number;
      const go = () => { if (how % 2) throw new rpc.DeclaredException('nf', { what: `nf${how}` }); throw new Error(`boom${how}`); };
      return how % 3 === 0 ? go() : later(go, how % 5);
    },
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  for (const transport of ['ttheader', 'theader', 'framed', 'binary'] as const) {
    const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport, connectionsPerTarget: 3, timeout: 10000 });
    let id = 0;
    const one = async () => {
      const k = id++;
      if (rnd(5) === 0) {
        const how = rnd(1000);
        const err = await c.call('fail', { how }).then(() => undefined, (e: Error) => e);
        if (how % 2) assert.equal((err as rpc.RemoteException).value, { what: `nf${how}` }, `${transport} call ${k}`);
        else assert.match(String((err as Error).message), new RegExp(`^boom${how}$`), `${transport} call ${k}`);
        return;
      }
      const size = rnd(10) === 0 ? rnd(200000) : rnd(300);
      const e = { text: `${String.fromCharCode(65 + rnd(26))}${k}:${transport}`, blob: Buffer.alloc(size, k & 0xff), nums: Array.from({ length: rnd(20) }, (_, j) => j * k) };
      const back = (await c.call('echo', { e })) as typeof e;
      assert.equal(back, e, `${transport} call ${k}`);
    };
    for (let burst = 0; burst < 30; burst++) await Promise.all(Array.from({ length: 1 + rnd(100) }, one));
    while (id < 1500) await Promise.all(Array.from({ length: Math.min(1500 - id, 1 + rnd(60)) }, one));
    c.close();
  }
  await srv.close();
});

test('calls racing their timeout: each resolves with its own value or fails ETIMEDOUT; late replies reach nobody', async () => {
  const rnd = seededRandom(55);
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { slow: (a) => new Promise((r) => setTimeout(() => r(`v${a.ms}`), (a.ms as number) % 41)) });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  // TTHeader: replies in any order (Kitex's flag). Over framed a reply waits for those before it
  // on its connection, so nearly every call would time out behind a slow one.
  try {
    const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], timeout: 20, connectionsPerTarget: 2 });
    let ok = 0, late = 0;
    await Promise.all(Array.from({ length: 600 }, async (_, i) => {
      const ms = i * 41 + rnd(41); // the delay is ms % 41; the value names the call
      await new Promise((r) => setTimeout(r, rnd(30)));
      try {
        assert.is(await c.call('slow', { ms }), `v${ms}`);
        ok++;
      } catch (e) {
        assert.is((e as NodeJS.ErrnoException).code, 'ETIMEDOUT', String(e));
        late++;
      }
    }));
    assert.ok(ok > 50 && late > 50, `both outcomes happened (${ok} answered, ${late} timed out)`);
    // The connections still serve: late replies were dropped, not matched to later calls.
    for (let i = 0; i < 20; i++) assert.is(await c.call('slow', { ms: 41 * 1000 + i }, { timeout: 1000 }), `v${41 * 1000 + i}`);
    c.close();
  } finally {
    await srv.close({ timeout: 100 });
  }
});

test('1,000 concurrent calls over one multiplexed connection are all matched', async () => {
  const { srv, port } = await kitchen();
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], timeout: 5000 });
  const calls = Array.from({ length: 1000 }, (_, i) => c.call('echo', { e: { int32: i, text: `n${i}` } }));
  const res = (await Promise.all(calls)) as { int32: number; text: string }[];
  res.forEach((r, i) => { assert.is(r.int32, i); assert.is(r.text, `n${i}`); });
  assert.equal(c.stats()[`127.0.0.1:${port}`], { connections: 1, inFlight: 0 });
  assert.is(srv.server.connections.size, 1);
  c.close();
  await srv.close();
});

test('replies come back in request order unless the client sets Kitex\'s out-of-order flag', async () => {
  const { srv, port } = await kitchen();
  for (const [transport, want] of [['framed', ['slept 60', 'slept 1']], ['ttheader', ['slept 1', 'slept 60']]] as const) {
    // framed has no flags: in order. Our TTHeader client sets the flag: each reply when ready.
    const s = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], timeout: 5000, transport });
    const order: string[] = [];
    await Promise.all([s.call('slow', { ms: 60 }).then((v) => order.push(v as string)), s.call('slow', { ms: 1 }).then((v) => order.push(v as string))]);
    assert.equal(order, [...want], transport);
    s.close();
  }
  await srv.close();
});

test('a handler may read its call\'s TTHeader metadata after awaiting, while other traffic reuses the memory', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, {
    slow: async (a, ctx) => {
      await new Promise((r) => setTimeout(r, a.ms as number));
      return `${ctx.strKV.get('tag')}/${ctx.fromService}/${ctx.intKV.get(rpc.IntKey.ToMethod)}/${ctx.strKV.get('isn')}`;
    },
    echo: (a) => a.e,
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], fromService: 'tester', timeout: 5000 });
  const late = Array.from({ length: 20 }, (_, i) => c.call('slow', { ms: 30 }, { headers: { tag: `t${i}` } }));
  // Meanwhile, enough traffic to recycle the read memory the slow calls' frames came in.
  const big = 'x'.repeat(4000);
  for (let i = 0; i < 200; i++) await c.call('echo', { e: { text: big } });
  assert.equal(await Promise.all(late), Array.from({ length: 20 }, (_, i) => `t${i}/tester/slow/Kitchen`)); // isn: as Kitex clients send it
  c.close();
  await srv.close();
});

test('requests whose TTHeader is larger than the writer\'s first room (a long fromService) arrive whole, back to back', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { echo: (a, ctx) => ({ text: `${ctx.fromService!.length}:${(a.e as { text: string }).text}` }) });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const from = 'f'.repeat(700);
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], fromService: from, timeout: 5000 });
  const got = await Promise.all(Array.from({ length: 50 }, (_, i) => c.call('echo', { e: { text: `n${i}` } })));
  assert.equal(got.map((r) => (r as { text: string }).text), Array.from({ length: 50 }, (_, i) => `700:n${i}`));
  c.close();
  await srv.close();
});

test('ctx.deadline is the caller\'s timeout counted from when the request arrived, the same whenever it is read', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  const seen: number[] = [];
  srv.register(Kitchen, {
    slow: async (a, ctx) => {
      const first = ctx.deadline!;
      await new Promise((r) => setTimeout(r, a.ms as number));
      seen.push(ctx.deadline! - first, first - ctx.receivedAt);
      return 'ok';
    },
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  try {
    assert.is(await c.call('slow', { ms: 60 }, { timeout: 2000 }), 'ok');
    assert.equal(seen, [0, 2000], 'read before and after awaiting 60 ms: one deadline, 2000 ms after arrival');
  } finally {
    c.close();
    await srv.close();
  }
});

test('a handler\'s BizStatusError travels as Kitex does: biz-status/message/extra headers on TTHeader, an exception on framed', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { fail: () => { throw new rpc.BizStatusError(40401, 'no such user', { trace: 'abc' }); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  try { await c.call('fail', { how: 1 }); assert.unreachable(); } catch (e) {
    const err = e as LinkpollError & { bizStatus: number; bizExtra: Record<string, string> };
    assert.is(err.code, 'ERR_LINKPOLL_BIZ_STATUS');
    assert.is(err.message, 'no such user');
    assert.is(err.bizStatus, 40401);
    assert.equal(err.bizExtra, { trace: 'abc' });
  }
  // The reply's own bytes: a REPLY whose TTHeader carries the string KV headers.
  const s = await rawClient(port);
  s.write(ttheaderCall(Kitchen.methods.fail!, 9, { how: 1 }));
  const [reply] = await readFrames(s, 1);
  const h = rpc.parseTTHeader(reply!);
  assert.is(h.seqid, 9);
  assert.is(h.strKV.get('biz-status'), '40401');
  assert.is(h.strKV.get('biz-message'), 'no such user');
  assert.is(h.strKV.get('biz-extra'), '{"trace":"abc"}');
  const r = new rpc.ThriftReader(reply!, h.payloadStart, h.payloadEnd);
  r.readMessageHeader();
  assert.is(r.msgType, rpc.MessageType.REPLY);
  s.destroy();
  const framed = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport: 'framed' });
  try { await framed.call('fail', { how: 1 }); assert.unreachable(); } catch (e) {
    assert.instance(e, rpc.TApplicationException);
    assert.is((e as Error).message, 'no such user');
  }
  c.close(); framed.close();
  await srv.close();
});

test('graceful close: calls in flight are answered (with crrst), then the connections close', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { slow: (a) => new Promise((r) => setTimeout(() => r(`slept ${a.ms}`), a.ms as number)) });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], timeout: 5000 });
  assert.is(await c.call('slow', { ms: 1 }), 'slept 1');
  const inFlight = [50, 100, 150].map((ms) => c.call('slow', { ms }));
  // And one from a raw socket, to see the reply's own header.
  const raw = await rawClient(port);
  raw.write(ttheaderCall(Kitchen.methods.slow!, 5, { ms: 60 }));
  const rawReply = readFrames(raw, 1);
  await new Promise((r) => setTimeout(r, 20)); // the calls have reached the server
  const t0 = Date.now();
  const closed = srv.close({ timeout: 3000 });
  assert.equal(await Promise.all(inFlight), ['slept 50', 'slept 100', 'slept 150']);
  await closed;
  assert.ok(Date.now() - t0 < 1500, 'close finished once the last call was answered');
  const h = rpc.parseTTHeader((await rawReply)[0]!);
  assert.is(h.strKV.get('crrst'), '1', 'replies sent while closing ask the client to reset');
  assert.is(srv.stats().connections, 0);
  assert.is(c.stats()[`127.0.0.1:${port}`]?.connections ?? 0, 0, 'the client dropped the connection it was told to reset');
  try { await c.call('slow', { ms: 1 }); assert.unreachable(); } catch (e) { assert.is((e as LinkpollError).code, 'ECONNREFUSED'); }
  c.close();
});

test('maxInFlight pauses reading: frames already read wait their turn and every call is answered', async () => {
  for (const transport of ['ttheader', 'framed'] as const) {
    let running = 0, most = 0;
    const srv = new rpc.RpcServer({ logger: null, maxInFlight: 2 });
    srv.register(Kitchen, {
      slow: async (a) => {
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 2));
        running--;
        return `n${a.ms}`;
      },
    });
    const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
    const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport, timeout: 10000 });
    const res = await Promise.all(Array.from({ length: 60 }, (_, i) => c.call('slow', { ms: i })));
    assert.equal(res, Array.from({ length: 60 }, (_, i) => `n${i}`));
    assert.ok(most <= 3, `${transport}: at most maxInFlight (+ the one that pauses) ran at once, saw ${most}`);
    c.close();
    await srv.close();
  }
});

test('methods registered or replaced while connections are open are seen by them', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { slow: () => 'first' });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  assert.is(await c.call('slow', { ms: 0 }), 'first');
  try { await c.call('nothing', {}); assert.unreachable(); } catch (e) { assert.is((e as rpc.TApplicationException).type, 1); }
  srv.register(Kitchen, { slow: () => 'second', nothing: () => undefined });
  assert.is(await c.call('slow', { ms: 0 }), 'second');
  assert.is(await c.call('nothing', {}), undefined);
  c.close();
  await srv.close();
});

test('per-call timeout and AbortSignal', async () => {
  const { srv, port } = await kitchen();
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  const t0 = Date.now();
  try { await c.call('slow', { ms: 500 }, { timeout: 50 }); assert.unreachable(); } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'ETIMEDOUT');
    assert.ok(Date.now() - t0 < 400);
  }
  const ac = new AbortController();
  const p = c.call('slow', { ms: 500 }, { signal: ac.signal });
  ac.abort();
  try { await p; assert.unreachable(); } catch (err) { assert.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR'); }
  assert.is(await c.call('echo', { e: { text: 'still fine' } }).then((r) => (r as { text: string }).text), 'still fine');
  c.close();
  await srv.close();
});

test('timeouts: 0 and Infinity mean none (no RPCTimeout header), a fraction goes out as whole ms, anything else is refused before sending', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  const sent: (string | undefined)[] = [];
  srv.register(Kitchen, { slow: (a, ctx) => { sent.push(ctx.intKV.get(rpc.IntKey.RPCTimeout)); return new Promise((r) => setTimeout(() => r(`slept ${a.ms}`), a.ms as number)); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  try {
    for (const timeout of [0, Infinity]) assert.is(await c.call('slow', { ms: 30 }, { timeout }), 'slept 30');
    assert.is(await c.call('slow', { ms: 1 }, { timeout: 200.2 }), 'slept 1');
    assert.equal(sent, [undefined, undefined, '201']);
    for (const [timeout, code] of [[-5, 'ERR_OUT_OF_RANGE'], [NaN, 'ERR_OUT_OF_RANGE'], ['100', 'ERR_INVALID_ARG_TYPE']] as const) {
      const err = await c.call('slow', { ms: 1 }, { timeout: timeout as number }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
      assert.is(err?.code, code, String(timeout));
    }
    assert.is(sent.length, 3, 'a refused call sends nothing');
    assert.throws(() => new rpc.RpcClient({ service: Kitchen, targets: [], timeout: -1 }), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE');
    assert.throws(() => new rpc.RpcClient({ service: Kitchen, targets: [], timeout: '1' as unknown as number }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
  } finally {
    c.close();
    await srv.close();
  }
});

test("RpcServer and RpcClient refuse options, services and handlers that are not objects; RpcServer.listen takes node:net's forms", async () => {
  for (const bad of [() => {}, 'x', 5]) {
    assert.throws(() => new rpc.RpcServer(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE', typeof bad);
    assert.throws(() => new rpc.RpcClient(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE', typeof bad);
  }
  assert.throws(() => new rpc.RpcClient(undefined as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
  assert.throws(() => new rpc.RpcClient({ service: 'Kitchen' as never }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
  const srv = new rpc.RpcServer({ logger: null });
  for (const [service, handlers] of [['Kitchen', {}], [undefined, {}], [Kitchen, 5]] as const) {
    assert.throws(() => srv.register(service as never, handlers as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE', String(service));
  }
  srv.register(Kitchen, { slow: (a) => `slept ${a.ms}` });
  let listening = false;
  const { address, port } = await srv.listen(0, '127.0.0.1', () => { listening = true; });
  assert.is(address, '127.0.0.1');
  assert.ok(listening);
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  try {
    assert.is(await c.call('slow', { ms: 0 }), 'slept 0');
    // Closed, then listening again: it serves, and its replies no longer say crrst.
    await srv.close();
    await srv.listen(port, '127.0.0.1');
    assert.is(await c.call('slow', { ms: 1 }), 'slept 1');
    assert.is(await c.call('slow', { ms: 2 }), 'slept 2');
  } finally {
    c.close();
    await srv.close();
  }
});

test('a client pointed at an echo server says it got a call back, not a reply, on every transport', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  try {
    for (const transport of ['ttheader', 'framed', 'binary'] as const) {
      const c = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${(echo.address() as AddressInfo).port}`, transport, timeout: 2000 });
      try {
        const err = await c.call('echo', { e: { text: 'x' } }).then(() => undefined, (e: Error) => e);
        assert.is((err as NodeJS.ErrnoException)?.code, 'ERR_LINKPOLL_PROTOCOL', transport);
        assert.match(err!.message, /unexpected message type 1 in a reply: the target sent a call, not a reply/, transport);
      } finally {
        c.close();
      }
    }
  } finally {
    echo.close();
  }
});

test('a client pointed at an HTTP server says the peer speaks HTTP; one target may be given as a string', async () => {
  const web = http.createServer((_q, r) => r.end('hello'));
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const c = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${(web.address() as AddressInfo).port}`, timeout: 2000 });
  try {
    const err = await c.call('slow', { ms: 0 }).then(() => undefined, (e: Error) => e);
    assert.is((err as NodeJS.ErrnoException)?.code, 'ERR_LINKPOLL_FRAME_TOO_LARGE');
    assert.match(err!.message, /^the target is not a Thrift server: .*began 48 54 54 50 'HTTP': the peer speaks HTTP/);
    assert.throws(() => c.setTargets([5 as never]), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
  } finally {
    c.close();
    web.close();
  }
});

test('a TLS client on the RPC port is told apart: logged as TLS, closed, and the server keeps serving', async () => {
  const logs: string[] = [];
  const { srv, port } = await kitchen({ logger: { warn: (m) => logs.push(m) } });
  const c = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${port}` });
  try {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    const err = await new Promise<Error>((r) => s.once('error', r));
    assert.ok(err instanceof Error);
    await until(() => logs.length === 1);
    assert.match(logs[0]!, /a TLS handshake: the client uses TLS, this port speaks plain Thrift RPC .*connection closed/);
    assert.equal(await c.call('echo', { e: { text: 'after' } }), { text: 'after' });
  } finally {
    c.close();
    await srv.close();
  }
});

test('over a Unix domain socket: server listen(path), client target "unix:/path" (and gRPC\'s "unix:///path")', async () => {
  const sock = path.join(os.tmpdir(), `linkpoll-rpc-${process.pid}.sock`);
  fs.rmSync(sock, { force: true });
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { slow: (a) => `slept ${a.ms}` });
  await srv.listen(sock);
  const clients = [`unix:${sock}`, `unix://${sock}`].map((t) => new rpc.RpcClient({ service: Kitchen, targets: t }));
  try {
    for (const c of clients) assert.is(await c.call('slow', { ms: 3 }), 'slept 3');
    const missing = new rpc.RpcClient({ service: Kitchen, targets: 'unix:/nonexistent/x.sock' });
    const err = await missing.call('slow', { ms: 0 }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
    assert.is(err?.code, 'ENOENT');
    missing.close();
  } finally {
    for (const c of clients) c.close();
    await srv.close();
    fs.rmSync(sock, { force: true });
  }
});

test('connection refused is reported as such', async () => {
  const c = new rpc.RpcClient({ service: Kitchen, targets: ['127.0.0.1:1'], connectTimeout: 500 });
  try { await c.call('nothing', {}); assert.unreachable(); } catch (err) { assert.is((err as NodeJS.ErrnoException).code, 'ECONNREFUSED'); }
  c.close();
});

test('a killed server fails pending calls fast; the pool recovers when it returns', async () => {
  const script = path.join(__dirname, '..', 'bench', 'servers', 'rpc-get.js');
  // The server comes back on the same port, so it is chosen below the ephemeral range: a port in
  // that range may meanwhile be taken by any outgoing connection (a flake seen under ASan).
  const ephemeralLow = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  let port = 10000 + (process.pid % Math.max(1, ephemeralLow - 10000));
  const start = () => new Promise<ChildProcess>((resolve, reject) => {
    const child = fork(script, ['--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    let err = '';
    child.stderr!.on('data', (d) => { err += d; });
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(Object.assign(new Error(`rpc-get exited with ${code}: ${err}`), { inUse: err.includes('EADDRINUSE') })));
  });
  let child: ChildProcess;
  for (let tries = 0; ; tries++) {
    try { child = await start(); break; } catch (e) {
      if (!(e as { inUse?: boolean }).inUse || tries === 20) throw e;
      port = 10000 + ((port - 10000 + 7919) % Math.max(1, ephemeralLow - 10000)); // taken by someone else: another
    }
  }
  const c = new rpc.RpcClient({ service: gee.services.GroupCache, targets: [`127.0.0.1:${port}`], timeout: 5000 });
  const v = (await c.call('Get', { req: { group: 'scores', key: 'Tom' } })) as { value: Buffer };
  assert.is(v.value.subarray(0, 3).toString(), '630');
  child.kill('SIGSTOP'); // calls now hang in the server...
  const pending = Array.from({ length: 10 }, () => c.call('Get', { req: { group: 'scores', key: 'Sam' } }).then(() => 'ok', (e) => e.code));
  await new Promise((r) => setTimeout(r, 50));
  const t0 = Date.now();
  child.kill('SIGKILL'); // ...until it dies: they fail at once, not at their 5 s timeout
  const codes = await Promise.all(pending);
  assert.ok(Date.now() - t0 < 1000, `failed after ${Date.now() - t0} ms`);
  assert.ok(codes.every((x) => x === 'ECONNRESET'), codes.join());
  await once(child, 'exit');
  child = await start();
  const again = (await c.call('Get', { req: { group: 'scores', key: 'Jack' } })) as { value: Buffer };
  assert.is(again.value.subarray(0, 3).toString(), '589');
  c.close();
  child.kill();
});

// ---- malformed input: answered as documented, and the server keeps serving ----

function rawExchange(port: number, bytes: Buffer, wait = 150): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let closed = false;
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('error', () => {});
    s.on('close', () => { closed = true; });
    s.write(bytes);
    setTimeout(() => { s.destroy(); resolve({ data, closed }); }, wait);
  });
}

test('malformed input gets a clear error, a counter, and the server keeps serving', async () => {
  const logs: string[] = [];
  const { srv, port } = await kitchen({ logger: { warn: (m) => logs.push(m) }, maxFrameSize: 4096 });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  const frame = (body: Buffer) => { const b = Buffer.alloc(4 + body.length); b.writeUInt32BE(body.length); body.copy(b, 4); return b; };
  const ttheader = (hdrTail: Buffer, payload: Buffer) => {
    const hdr = Buffer.concat([hdrTail, Buffer.alloc((4 - (hdrTail.length % 4)) % 4)]);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(0x1000, 0); fixed.writeUInt32BE(9, 4); fixed.writeUInt16BE(hdr.length / 4, 8);
    return frame(Buffer.concat([fixed, hdr, payload]));
  };
  const call = (name: string) => { const w = new rpc.ThriftWriter(Buffer.alloc(64)); w.messageBegin(name, rpc.MessageType.CALL, 9); w.byte(0); return w.buf.subarray(0, w.pos); };
  const cases: [string, Buffer, 'closed' | 'exception' | 'http400'][] = [
    ['unknown magic', frame(Buffer.from('\x12\x34cdefgh', 'latin1')), 'closed'],
    ['an old-format message of an unknown type', Buffer.from('\0\0\0\x04echo\x09\0\0\0\x01\0', 'latin1'), 'closed'],
    ['HTTP on the RPC port', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'http400'],
    ['compact protocol', Buffer.from([0x82, 0x21, 0, 3, 0x47, 0x65, 0x74, 0]), 'closed'],
    ['JSON protocol (TJSONProtocol, unframed)', Buffer.from('[1,"echo",1,1,{}]'), 'closed'],
    ['JSON protocol, framed', frame(Buffer.from('[1,"echo",1,1,{}]')), 'closed'],
    ['Apache THeader carrying compact protocol', frame(Buffer.from([0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 2, 0, 0, 0])), 'closed'],
    ['an Apache THeader transform (zlib)', frame(Buffer.from([0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0])), 'closed'],
    ['a transform', ttheader(Buffer.from([0, 1, 1]), call('nothing')), 'closed'],
    ['an unknown info id', ttheader(Buffer.from([0, 0, 0x42]), call('nothing')), 'closed'],
    ['a header larger than its frame', (() => { const b = ttheader(Buffer.from([0, 0]), call('nothing')); b.writeUInt16BE(100, 12); return b; })(), 'closed'],
    ['a frame over the size cap', (() => { const b = Buffer.alloc(8); b.writeUInt32BE(1 << 20); b.writeUInt16BE(0x1000, 4); return b; })(), 'closed'],
    ['an unknown method', ttheader(Buffer.from([0, 0]), call('nope')), 'exception'],
    ['garbage args', ttheader(Buffer.from([0, 0]), Buffer.concat([call('echo').subarray(0, -1), Buffer.from([12, 0, 1, 11, 0, 7, 0x7f, 0, 0, 0])])), 'exception'],
  ];
  for (const [what, bytes, expect] of cases) {
    const before = srv.stats();
    const { data, closed } = await rawExchange(port, bytes);
    if (expect === 'closed') {
      assert.ok(closed, `${what}: connection closed`);
      assert.is(srv.stats().protocolErrors, before.protocolErrors + 1, `${what}: counted`);
    } else if (expect === 'http400') {
      assert.ok(data.toString().startsWith('HTTP/1.1 400'), `${what}: HTTP 400`);
    } else {
      const f = data.subarray(0);
      assert.ok(f.length > 16, `${what}: a reply`);
      const { reader } = rpc.openFrame(f, 'ttheader');
      assert.is(reader.messageBegin().type, rpc.MessageType.EXCEPTION, `${what}: TApplicationException`);
      const ex = reader.struct(rpc.TApplicationExceptionSpec);
      assert.ok(ex.type === 1 || ex.type === 7, `${what}: type ${ex.type}`);
    }
    // A well-behaved client is still served.
    assert.equal(await c.call('echo', { e: { text: what } }), { text: what });
  }
  assert.ok(logs.length >= 6 && logs.every((l) => l.startsWith('linkpoll rpc: ')), logs.join('\n'));
  assert.is(logs.filter((l) => l.includes('Thrift JSON protocol is not supported')).length, 2, logs.join('\n'));
  // Each line names the peer, the frame over the cap too (its connection is closed by then).
  assert.ok(logs.every((l) => /\(from 127\.0\.0\.1:\d+\)/.test(l)), logs.join('\n'));
  // HTTP with a 20 MB body (past the kernel's buffers): the 400, then a clean close once it is sent.
  const s = net.connect(port, '127.0.0.1');
  let got = '';
  let error: Error | undefined;
  s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  s.on('error', (e) => { error = e; });
  s.write('POST / HTTP/1.1\r\nContent-Length: 20000000\r\n\r\n');
  s.end(Buffer.alloc(20000000, 0x61));
  const t0 = Date.now();
  await once(s, 'close');
  assert.is(error, undefined, 'no reset');
  assert.ok(got.startsWith('HTTP/1.1 400'));
  assert.ok(Date.now() - t0 < 10000, `closed after ${Date.now() - t0} ms`);
  c.close();
  await srv.close();
});

test('a request over the server\'s maxFrameSize: the call fails saying which target reset it, the server logs who sent it, and serves the next call', async () => {
  const logs: string[] = [];
  const { srv, port } = await kitchen({ logger: { warn: (m) => logs.push(m) }, maxFrameSize: 64 << 10 });
  const c = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${port}`, timeout: 5000 });
  try {
    // Past the kernel's socket buffers: the server closes with the rest unread, which resets.
    const err = await c.call('echo', { e: { text: 'x'.repeat(8 << 20) } }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
    assert.ok(err, 'the call failed');
    // Refused at once, before any answer: told apart from a transport failure.
    assert.is(err!.code, 'ERR_LINKPOLL_CONNECTION_REJECTED');
    assert.match(err!.message, new RegExp(`refusing the request \\(127\\.0\\.0\\.1:${port}, 1 call in flight\\)$`));
    await until(() => logs.length === 1);
    const size = Number(/a frame of (\d+) bytes exceeded maxFrameSize \(65536 bytes\).*\(from 127\.0\.0\.1:\d+\)/.exec(logs[0]!)?.[1]);
    assert.ok(size > 8 << 20 && size < (8 << 20) + 200, logs[0]);
    assert.equal(await c.call('echo', { e: { text: 'after' } }), { text: 'after' });
    // And a reply over the client's own cap says so.
    const small = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${port}`, maxFrameSize: 1024 });
    try {
      const big = await small.call('echo', { e: { text: 'y'.repeat(1000) } }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
      assert.is(big?.code, 'ERR_LINKPOLL_FRAME_TOO_LARGE');
      assert.match(big!.message, new RegExp(`^a reply over the client's maxFrameSize option: a frame of 10\\d\\d bytes exceeded maxFrameSize \\(1024 bytes\\).*\\(127\\.0\\.0\\.1:${port}, 1 call in flight\\)$`));
    } finally {
      small.close();
    }
  } finally {
    c.close();
    await srv.close();
  }
});

test('unframed strict binary clients are served too', async () => {
  const { srv, port } = await kitchen();
  const w = new rpc.ThriftWriter(Buffer.alloc(64));
  w.messageBegin('echo', rpc.MessageType.CALL, 42);
  w.struct(Kitchen.methods.echo.args, { e: { text: 'raw' } });
  const msg = w.buf.subarray(0, w.pos);
  // Sent in two pieces and twice: boundaries found without a length prefix.
  const { data } = await rawExchange(port, Buffer.concat([msg, msg]));
  const r = new rpc.ThriftReader(data);
  for (let i = 0; i < 2; i++) {
    const h = r.messageBegin();
    assert.is(h.seqid, 42);
    assert.is(h.type, rpc.MessageType.REPLY);
    assert.equal(r.struct(Kitchen.methods.echo.result), { success: { text: 'raw' } });
  }
  await srv.close();
});

test('unframed binary: a message cut inside a list waits for the rest instead of failing', async () => {
  const { srv, port } = await kitchen();
  const w = new rpc.ThriftWriter(Buffer.alloc(256));
  w.messageBegin('echo', rpc.MessageType.CALL, 5);
  const nums = Array.from({ length: 50 }, (_, i) => i);
  w.struct(Kitchen.methods.echo.args, { e: { nums } });
  const msg = Buffer.from(w.buf.subarray(0, w.pos));
  // Right after the list's header: its count (50) is more than the bytes there so far.
  const cut = msg.indexOf(Buffer.from([15, 0, 10, 8, 0, 0, 0, 50])) + 8;
  assert.ok(cut > 8);
  const s = net.connect(port, '127.0.0.1');
  let data = Buffer.alloc(0);
  s.on('data', (d) => { data = Buffer.concat([data, d]); });
  await once(s, 'connect');
  s.write(msg.subarray(0, cut));
  await new Promise((r) => setTimeout(r, 50));
  s.write(msg.subarray(cut));
  await until(() => data.length > 0);
  const r = new rpc.ThriftReader(data);
  assert.is(r.messageBegin().type, rpc.MessageType.REPLY);
  assert.equal(r.struct(Kitchen.methods.echo.result), { success: { nums } });
  s.destroy();
  await srv.close();
});

test('unframed binary: a large message in many pieces is served, and one that says it is too large is refused at once', async () => {
  const { srv, port } = await kitchen({ maxFrameSize: 8 << 20 });
  const w = new rpc.ThriftWriter(Buffer.alloc(256));
  w.messageBegin('echo', rpc.MessageType.CALL, 6);
  const text = 'y'.repeat(3 << 20);
  const nums = Array.from({ length: 100000 }, (_, i) => i);
  w.struct(Kitchen.methods.echo.args, { e: { text, nums } });
  const msg = Buffer.from(w.buf.subarray(0, w.pos));
  const s = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  s.on('data', (d) => chunks.push(d));
  await once(s, 'connect');
  for (let off = 0; off < msg.length; off += 16384) {
    s.write(msg.subarray(off, off + 16384));
    if ((off / 16384) % 16 === 0) await new Promise((r) => setImmediate(r));
  }
  const replyLen = msg.length - 10; // about the size of the echoed struct
  await until(() => chunks.reduce((n, c) => n + c.length, 0) >= replyLen, 10000, 'the echoed reply');
  await new Promise((r) => setTimeout(r, 20));
  const r = new rpc.ThriftReader(Buffer.concat(chunks));
  assert.is(r.messageBegin().type, rpc.MessageType.REPLY);
  const res = r.struct(Kitchen.methods.echo.result) as { success: { text: string; nums: number[] } };
  assert.is(res.success.text.length, text.length);
  assert.is(res.success.nums.length, nums.length);
  s.destroy();
  // A string field that claims 100 MB: closed as soon as the claim is read.
  const big = new rpc.ThriftWriter(Buffer.alloc(64));
  big.messageBegin('echo', rpc.MessageType.CALL, 7);
  const head = Buffer.from(big.buf.subarray(0, big.pos));
  const claim = Buffer.from([12, 0, 1, 11, 0, 7, 0x06, 0x40, 0, 0, 0x79]);
  const s2 = net.connect(port, '127.0.0.1');
  await once(s2, 'connect');
  s2.write(Buffer.concat([head, claim]));
  await once(s2, 'close');
  assert.ok(srv.stats().closedForProtocolErrors >= 1);
  await srv.close();
});

test('a client on unframed binary: calls matched by seqid; a reply stream that cannot be parsed fails the calls at once', async () => {
  const { srv, port } = await kitchen();
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], transport: 'binary' });
  const texts = Array.from({ length: 200 }, (_, i) => `m${i}`.repeat(1 + (i % 7) * 50));
  const got = await Promise.all(texts.map((text) => c.call('echo', { e: { text } })));
  assert.equal(got, texts.map((text) => ({ text })));
  c.close();
  await srv.close();
  // A peer that answers with bytes that are not a Thrift message (the client was pointed at HTTP).
  const liar = net.createServer((s) => s.once('data', () => s.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n')));
  await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
  const c2 = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${(liar.address() as net.AddressInfo).port}`], transport: 'binary', timeout: 5000 });
  const t0 = Date.now();
  try { await c2.call('echo', { e: { text: 'x' } }); assert.unreachable(); } catch (e) {
    assert.is((e as LinkpollError).code, 'ERR_LINKPOLL_PROTOCOL', (e as Error).message);
  }
  assert.ok(Date.now() - t0 < 1000, 'failed at once, not at the timeout');
  c2.close();
  liar.close();
});

test.run();
