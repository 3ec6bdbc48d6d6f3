// Client governance (load balancing, retries, backup requests, circuit breakers, rate limits,
// middleware, metrics) and the server's middleware, rate limit and metrics, on real servers.
import { test } from 'uvu';
import { spawn } from 'node:child_process';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as net from 'node:net';
import { rpc, LinkpollError } from '../src';
import { once, until } from './helpers';

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures');
const Kitchen = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'everything.thrift'), 'utf8')).services.Kitchen;

interface Named { srv: rpc.RpcServer; port: number; addr: string; calls: number; delay: number }

/** A server whose `slow` answers its own name after `delay` ms (settable); `fail` throws. */
async function named(name: string, opts: rpc.RpcServerOptions = {}, port = 0): Promise<Named> {
  const srv = new rpc.RpcServer({ logger: null, ...opts });
  const n: Named = { srv, port: 0, addr: '', calls: 0, delay: 0 };
  srv.register(Kitchen, {
    slow: () => {
      n.calls++;
      return n.delay ? new Promise((r) => setTimeout(() => r(name), n.delay)) : name;
    },
    fail: () => { n.calls++; throw new Error(`${name} failed`); },
  });
  n.port = (await srv.listen({ port, host: '127.0.0.1' })).port;
  n.addr = `127.0.0.1:${n.port}`;
  return n;
}

/** A port nothing listens on (connections are refused). */
async function deadPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function tally(c: rpc.RpcClient, n: number, options?: (i: number) => rpc.CallOptions): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const who = (await c.call('slow', { ms: 0 }, options?.(i))) as string;
    out[who] = (out[who] ?? 0) + 1;
  }
  return out;
}

test('round-robin spreads calls evenly; weighted round-robin in proportion to weight', async () => {
  const s = await Promise.all(['a', 'b', 'c'].map((x) => named(x)));
  const rr = new rpc.RpcClient({ service: Kitchen, targets: s.map((x) => x.addr) });
  assert.equal(await tally(rr, 30), { a: 10, b: 10, c: 10 });
  const wrr = new rpc.RpcClient({
    service: Kitchen, loadBalancer: 'weighted-round-robin',
    targets: s.map((x, i) => ({ address: x.addr, weight: i + 1 })),
  });
  assert.equal(await tally(wrr, 60), { a: 10, b: 20, c: 30 });
  rr.close(); wrr.close();
  await Promise.all(s.map((x) => x.srv.close()));
});

test('consistent hashing: a key keeps its target, and only the keys of a removed target move', async () => {
  const s = await Promise.all(['a', 'b', 'c'].map((x) => named(x)));
  const c = new rpc.RpcClient({ service: Kitchen, loadBalancer: 'consistent-hash', targets: s.map((x) => x.addr) });
  const keys = Array.from({ length: 60 }, (_, i) => `user-${i}`);
  const owner = new Map<string, string>();
  for (const k of keys) owner.set(k, (await c.call('slow', { ms: 0 }, { key: k })) as string);
  for (const k of keys) assert.is(await c.call('slow', { ms: 0 }, { key: k }), owner.get(k), `key ${k} moved`);
  assert.is(new Set(owner.values()).size, 3, 'keys spread over every target');
  c.setTargets([s[0]!.addr, s[2]!.addr]); // b leaves
  for (const k of keys) {
    const now = await c.call('slow', { ms: 0 }, { key: k });
    if (owner.get(k) !== 'b') assert.is(now, owner.get(k), `key ${k} of a staying target moved`);
    else assert.ok(now === 'a' || now === 'c');
  }
  c.close();
  await Promise.all(s.map((x) => x.srv.close()));
});

test('least-inflight sends fewer calls to a target that is slow to answer', async () => {
  const fast = await named('fast');
  const slow = await named('slow');
  slow.delay = 40;
  const c = new rpc.RpcClient({ service: Kitchen, loadBalancer: 'least-inflight', targets: [fast.addr, slow.addr] });
  const got: Record<string, number> = { fast: 0, slow: 0 };
  const workers = Array.from({ length: 8 }, async () => {
    for (let i = 0; i < 25; i++) got[(await c.call('slow', { ms: 0 })) as string]!++;
  });
  await Promise.all(workers);
  assert.is(got.fast! + got.slow!, 200);
  assert.ok(got.slow! < 60, `slow target got ${got.slow} of 200`);
  c.close();
  await Promise.all([fast.srv.close(), slow.srv.close()]);
});

test('retries move a refused call to another target; answers (remote errors) are not retried', async () => {
  const live = await named('live');
  const dead = `127.0.0.1:${await deadPort()}`;
  const plain = new rpc.RpcClient({ service: Kitchen, targets: [dead, live.addr] });
  const plainResults = await Promise.allSettled(Array.from({ length: 6 }, () => plain.call('slow', { ms: 0 })));
  assert.ok(plainResults.some((r) => r.status === 'rejected'), 'without retry, calls to the dead target fail');
  const c = new rpc.RpcClient({ service: Kitchen, targets: [dead, live.addr], retry: { maxAttempts: 2 } });
  for (let i = 0; i < 10; i++) assert.is(await c.call('slow', { ms: 0 }), 'live');
  assert.ok(c.metrics().counters.retries! >= 4, `retries ${c.metrics().counters.retries}`);
  const before = live.calls;
  try { await c.call('fail', { how: 2 }, { target: live.addr }); assert.unreachable(); } catch (e) {
    assert.instance(e, rpc.TApplicationException);
  }
  assert.is(live.calls, before + 1, 'a remote exception is an answer: one attempt');
  const m = c.metrics().methods;
  assert.is(m.slow!.calls, 10);
  assert.equal(m.slow!.errors, {});
  assert.is(m.fail!.errors.ERR_LINKPOLL_REMOTE, 1);
  plain.close(); c.close();
  await live.srv.close();
});

test('the retry budget stops retries once spent', async () => {
  const dead = `127.0.0.1:${await deadPort()}`;
  const c = new rpc.RpcClient({
    service: Kitchen, targets: [dead], retry: { maxAttempts: 3 }, retryBudget: { ratio: 0, minPerSecond: 0.5 },
  });
  for (let i = 0; i < 10; i++) {
    try { await c.call('slow', { ms: 0 }); assert.unreachable(); } catch (e) { assert.is((e as LinkpollError).code, 'ECONNREFUSED'); }
  }
  assert.is(c.metrics().counters.retries, 5, 'minPerSecond 0.5 over a 10 s window = 5 retries');
  c.close();
});

test('backup request: a second copy goes to another target after the delay and the first answer wins', async () => {
  const slow = await named('slow');
  const fast = await named('fast');
  slow.delay = 2000;
  const c = new rpc.RpcClient({ service: Kitchen, targets: [slow.addr, fast.addr], backupRequest: { delay: 20 }, timeout: 5000 });
  const answers: unknown[] = [];
  for (let i = 0; i < 4; i++) answers.push(await c.call('slow', { ms: 0 })); // round-robin: two go to the slow target first
  assert.ok(answers.every((a) => a === 'fast'), `answers ${answers}`);
  assert.is(slow.calls, 2, 'the slow target was asked');
  assert.is(c.metrics().counters.backup_requests, 2);
  assert.is(c.stats()[slow.addr]!.inFlight, 0, 'the losing copy no longer waits for its reply');
  c.close();
  await Promise.all([slow.srv.close({ timeout: 100 }), fast.srv.close()]);
});

test('circuit breaker: a dead target is skipped, a dead service fails fast, and a probe closes it again', async () => {
  const live = await named('live');
  const deadPortNo = await deadPort();
  const dead = `127.0.0.1:${deadPortNo}`;
  const c = new rpc.RpcClient({
    service: Kitchen, targets: [dead, live.addr], logger: null,
    circuitBreaker: { minSamples: 4, errorRate: 0.5, coolingTime: 300 },
  });
  const changes: string[] = [];
  c.on('circuit', (what: string, state: string) => changes.push(`${what} ${state}`));
  let failed = 0;
  for (let i = 0; i < 30; i++) await c.call('slow', { ms: 0 }).catch(() => failed++);
  assert.is(failed, 4, 'calls to the dead target fail until its circuit opens (minSamples)');
  assert.ok(changes.includes(`target ${dead} open`), changes.join('; '));
  assert.is(c.metrics().circuits[`target:${dead}`], 'open');
  for (let i = 0; i < 10; i++) assert.is(await c.call('slow', { ms: 0 }), 'live', 'the open target is not picked');

  // Only the dead target: its circuit is open, so calls fail fast without dialing.
  const solo = new rpc.RpcClient({ service: Kitchen, targets: [dead], logger: null, circuitBreaker: { minSamples: 3, coolingTime: 300 } });
  for (let i = 0; i < 3; i++) await solo.call('slow', { ms: 0 }).catch(() => {});
  try { await solo.call('slow', { ms: 0 }); assert.unreachable(); } catch (e) {
    assert.is((e as LinkpollError).code, 'ERR_LINKPOLL_CIRCUIT_OPEN');
  }
  // The target comes back: after the cooling time one probe goes through and closes the circuit.
  const back = await named('back', {}, deadPortNo);
  await new Promise((r) => setTimeout(r, 350));
  assert.is(await solo.call('slow', { ms: 0 }), 'back');
  assert.is(solo.metrics().circuits[`target:${dead}`], 'closed');
  c.close(); solo.close();
  await Promise.all([live.srv.close(), back.srv.close()]);
});

test('rate limits: the client fails fast over its rate, the server answers an exception over its own', async () => {
  const s = await named('s', { rateLimit: { qps: 1, burst: 3 } });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [s.addr], rateLimit: { qps: 1, burst: 5 } });
  const res = await Promise.allSettled(Array.from({ length: 8 }, () => c.call('slow', { ms: 0 })));
  const codes = res.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as LinkpollError).code));
  assert.is(codes.filter((x) => x === 'ERR_LINKPOLL_RATE_LIMITED').length, 3, codes.join(','));
  assert.is(codes.filter((x) => x === 'ok').length, 3, 'the server lets its burst through');
  const over = res.filter((r) => r.status === 'rejected' && r.reason instanceof rpc.TApplicationException);
  assert.is(over.length, 2);
  assert.match((over[0] as PromiseRejectedResult).reason.message, /rate limit/);
  assert.is(s.srv.stats().rateLimited, 2);
  assert.is(c.metrics().counters.rate_limited, 3);
  c.close();
  await s.srv.close();
});

test('client middleware wraps each call once, in order, and may answer by itself', async () => {
  const s = await named('s');
  const seen: string[] = [];
  const c = new rpc.RpcClient({
    service: Kitchen, targets: [s.addr],
    middleware: [
      async (call, next) => { seen.push(`outer ${call.method}`); const v = await next(); seen.push(`outer done ${call.targets.length}`); return v; },
      (call, next) => (call.args.ms === -1 ? Promise.resolve('from cache') : next()),
    ],
  });
  assert.is(await c.call('slow', { ms: 0 }), 's');
  assert.is(await c.call('slow', { ms: -1 }), 'from cache');
  assert.equal(seen, ['outer slow', 'outer done 1', 'outer slow', 'outer done 0']);
  assert.is(s.calls, 1);
  c.close();
  await s.srv.close();
});

test('server middleware: order, rewriting args, refusing a call; metrics and Prometheus text', async () => {
  const srv = new rpc.RpcServer({ logger: null, latencyMetrics: true });
  const order: string[] = [];
  srv.use(async (ctx, next) => { order.push(`a ${ctx.method}`); const v = await next(); order.push('a done'); return v; });
  srv.use((ctx, next) => {
    if (ctx.args.ms === 13) throw new Error('unlucky');
    if (ctx.args.ms === 7) return Promise.reject(undefined); // a failure with no error value is still a failure
    ctx.args = { ms: (ctx.args.ms as number) * 2 };
    return next();
  });
  srv.register(Kitchen, { slow: (a) => `ms=${a.ms}` });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  assert.is(await c.call('slow', { ms: 21 }), 'ms=42');
  try { await c.call('slow', { ms: 13 }); assert.unreachable(); } catch (e) {
    assert.instance(e, rpc.TApplicationException);
    assert.is((e as Error).message, 'unlucky');
  }
  await c.call('slow', { ms: 7 }).then(() => assert.unreachable(), (e: Error) => assert.instance(e, rpc.TApplicationException));
  assert.equal(order, ['a slow', 'a done', 'a slow', 'a slow']);
  const m = srv.metrics()['Kitchen.slow']!;
  assert.is(m.calls, 3);
  assert.is(m.errors.Error, 2);
  assert.is(m.inFlight, 0);
  assert.is(m.latencyMs.count, 3);
  const text = srv.prometheus();
  assert.match(text, /linkpoll_rpc_server_calls_total\{service="Kitchen",method="slow"\} 3/);
  assert.match(text, /linkpoll_rpc_server_latency_seconds_count\{service="Kitchen",method="slow"\} 3/);
  assert.match(text, /\n# TYPE linkpoll_rpc_server_requests_total counter\nlinkpoll_rpc_server_requests_total 3\n/);
  assert.match(text, /\n# TYPE linkpoll_rpc_server_connections gauge\nlinkpoll_rpc_server_connections \d+\n/);
  // Without latencyMetrics the server counts calls but shows no (empty) latency histogram.
  const plain = new rpc.RpcServer({ logger: null });
  plain.register(Kitchen, { slow: () => 'x' });
  const p2 = (await plain.listen({ port: 0, host: '127.0.0.1' })).port;
  await c.call('slow', { ms: 1 }, { target: `127.0.0.1:${p2}` });
  assert.is(plain.metrics()['Kitchen.slow']!.calls, 1);
  assert.is(plain.metrics()['Kitchen.slow']!.latencyMs.count, 0);
  assert.not.match(plain.prometheus(), /latency_seconds_bucket/);
  assert.match(plain.prometheus(), /linkpoll_rpc_server_calls_total\{service="Kitchen",method="slow"\} 1/);
  await plain.close();
  const ct = c.prometheus();
  assert.match(ct, /linkpoll_rpc_client_calls_total\{service="Kitchen",method="slow"\} 4/);
  assert.match(ct, /linkpoll_rpc_client_errors_total\{service="Kitchen",method="slow",code="ERR_LINKPOLL_REMOTE"\} 2/);
  c.close();
  await srv.close();
});

test('a call that never gets its answer does not disturb the hundreds that follow it on the connection', async () => {
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { slow: (a) => (a.ms === -1 ? new Promise(() => {}) : `ok ${a.ms}`) });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`] });
  const ac = new AbortController();
  const stuck = c.call('slow', { ms: -1 }, { timeout: 0, signal: ac.signal });
  // Seqids wrap around the in-flight table many times while the stuck call holds its slot.
  for (let i = 0; i < 1200; i++) assert.is(await c.call('slow', { ms: i }), `ok ${i}`);
  const burst = await Promise.all(Array.from({ length: 700 }, (_, i) => c.call('slow', { ms: i })));
  assert.equal(burst, Array.from({ length: 700 }, (_, i) => `ok ${i}`));
  assert.is(c.stats()[`127.0.0.1:${port}`]!.inFlight, 1);
  ac.abort();
  try { await stuck; assert.unreachable(); } catch (e) { assert.is((e as Error).name, 'AbortError'); }
  assert.is(c.stats()[`127.0.0.1:${port}`]!.inFlight, 0);
  c.close();
  await srv.close({ timeout: 100 });
});

test('access logs: a line per call on both sides, or only the failed and slow ones', async () => {
  const serverLines: string[] = [];
  const srv = new rpc.RpcServer({ logger: null });
  srv.use(rpc.serverAccessLog({ log: (l) => serverLines.push(l) }));
  srv.register(Kitchen, { slow: (a) => new Promise((r) => setTimeout(() => r('done'), a.ms as number)), fail: () => { throw new Error('nope'); } });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const clientLines: string[] = [];
  const c = new rpc.RpcClient({ service: Kitchen, targets: [`127.0.0.1:${port}`], middleware: [rpc.clientAccessLog({ log: (l) => clientLines.push(l), slowMs: 20 })] });
  await c.call('slow', { ms: 0 });
  await c.call('slow', { ms: 30 });
  await c.call('fail', { how: 2 }).catch(() => {});
  assert.is(serverLines.length, 3);
  assert.match(serverLines[0]!, /^rpc server Kitchen\.slow from 127\.0\.0\.1:\d+ ok \d+\.\d{3} ms$/);
  assert.match(serverLines[2]!, /^rpc server Kitchen\.fail from .* error Error: nope /);
  assert.is(clientLines.length, 2, 'the fast call is not logged (slowMs 20)');
  assert.match(clientLines[0]!, new RegExp(`^rpc client Kitchen\\.slow -> 127\\.0\\.0\\.1:${port} ok (\\d+)\\.\\d{3} ms$`));
  assert.match(clientLines[1]!, /^rpc client Kitchen\.fail -> .* error ERR_LINKPOLL_REMOTE: nope /);
  c.close();
  await srv.close();
});

test('the pool grows under load and shrinks back to maxIdlePerTarget when it passes', async () => {
  const s = await named('s');
  s.delay = 30;
  const c = new rpc.RpcClient({ service: Kitchen, targets: [s.addr], connectionsPerTarget: 4, maxIdlePerTarget: 1, idleTimeout: 60000 });
  // Waves of calls while earlier ones are in flight: each wave finds the pool busy and adds one.
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 20; j++) calls.push(c.call('slow', { ms: 0 }));
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(calls);
  assert.is(c.stats()[s.addr]!.connections, 4, 'grown to connectionsPerTarget');
  await until(() => c.stats()[s.addr]!.connections === 1, 3000, 'the pool to shrink to 1');
  s.delay = 0;
  assert.is(await c.call('slow', { ms: 0 }), 's', 'the kept connection serves');
  // idleTimeout still closes the last one.
  const short = new rpc.RpcClient({ service: Kitchen, targets: [s.addr], idleTimeout: 300 });
  await short.call('slow', { ms: 0 });
  assert.is(short.stats()[s.addr]!.connections, 1);
  await until(() => (short.stats()[s.addr]?.connections ?? 0) === 0, 3000, 'the idle connection to close');
  assert.is(await short.call('slow', { ms: 0 }), 's', 'and a new one is dialled when needed');
  c.close(); short.close();
  await s.srv.close();
});

test('a full pool sends the calls of one tick over writesPerTick connections, and uses every connection in turn', async () => {
  const ports: number[] = [];
  let delay = 0;
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, {
    slow: (_args: unknown, ctx: rpc.CallContext) => {
      ports.push(ctx.remotePort!);
      return delay ? new Promise((r) => setTimeout(() => r('x'), delay)) : 'x';
    },
  });
  const addr = `127.0.0.1:${(await srv.listen({ port: 0, host: '127.0.0.1' })).port}`;
  const distinct = async (c: rpc.RpcClient, n: number): Promise<Set<number>> => {
    ports.length = 0;
    await Promise.all(Array.from({ length: n }, () => c.call('slow', { ms: 0 })));
    return new Set(ports);
  };
  for (const [writesPerTick, expected] of [[undefined, 8], [4, 4], [2, 2]] as const) {
    const c = new rpc.RpcClient({ service: Kitchen, targets: [addr], connectionsPerTarget: 8, writesPerTick });
    delay = 20; // calls in flight make the pool grow
    for (let i = 0; c.stats()[addr]?.connections !== 8; i++) {
      assert.ok(i < 200, 'the pool grows to 8 connections');
      await distinct(c, 16);
    }
    delay = 0;
    await distinct(c, 64); // sizes the next tick's batches
    const seen = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const used = await distinct(c, 64);
      assert.is(used.size, expected, `64 calls of one tick over ${expected} connections (writesPerTick ${writesPerTick})`);
      for (const p of used) seen.add(p);
    }
    assert.is(seen.size, 8, 'over several ticks every connection takes calls');
    c.close();
  }
  assert.throws(() => new rpc.RpcClient({ service: Kitchen, writesPerTick: 0 }), /writesPerTick/);
  await srv.close();
});

test('a script that never closes its client exits once its calls are answered (idle pooled connections are unref()ed)', async () => {
  const s = await named('s');
  try {
    s.delay = 300; // the call is in flight for 300 ms: the process must wait for it
    const lib = JSON.stringify(path.join(__dirname, '..', 'src'));
    const idlPath = JSON.stringify(path.join(fixtures, 'everything.thrift'));
    const script = `const { rpc } = require(${lib}); const fs = require('fs');
      const Kitchen = rpc.parseIdl(fs.readFileSync(${idlPath}, 'utf8')).services.Kitchen;
      const c = new rpc.RpcClient({ service: Kitchen, targets: ['${s.addr}'], connectionsPerTarget: 2 });
      Promise.all([c.call('slow', { ms: 0 }), c.call('slow', { ms: 0 })]).then((r) => console.log(r.join(',')));`;
    const t0 = Date.now();
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill(), 15000); // well under the 60 s idle timeout that held it before
      child.on('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    assert.is(out.trim(), 's,s', 'the answers arrived before the process left');
    assert.is(code, 0, 'and it exited by itself');
    assert.ok(Date.now() - t0 < 10000, `within a moment of the answers (${Date.now() - t0} ms)`);
    // A call given up while its connection was being dialled: the new connection holds nothing.
    const aborted = spawn(process.execPath, ['-e', script.replace(/Promise\.all[^]*$/, `const ac = new AbortController();
      c.call('slow', { ms: 0 }, { signal: ac.signal }).catch((e) => console.log(e.code)); ac.abort();`)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out2 = '';
    aborted.stdout!.on('data', (d: Buffer) => { out2 += d.toString(); });
    const code2 = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => aborted.kill(), 15000);
      aborted.on('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    assert.is(out2.trim(), 'ABORT_ERR');
    assert.is(code2, 0, 'exits by itself after a call aborted during the dial');
  } finally {
    await s.srv.close({ timeout: 100 });
  }
});

test('bad governance options are refused at construction', () => {
  assert.throws(() => new rpc.RpcClient({ service: Kitchen, loadBalancer: 'nope' as never }), /unknown load balancer/);
  assert.throws(() => new rpc.RpcClient({ service: Kitchen, retry: { maxAttempts: 0 } }), /maxAttempts/);
  assert.throws(() => new rpc.RpcClient({ service: Kitchen, rateLimit: { qps: 0 } }), /qps/);
  assert.throws(() => new rpc.RpcClient({ service: Kitchen, circuitBreaker: { errorRate: 2 } }), /errorRate/);
  assert.throws(() => new rpc.RpcClient({ service: Kitchen, targets: [{ address: '127.0.0.1:1', weight: 0 }] }), /weight/);
  assert.throws(() => new rpc.RpcClient({ service: Kitchen, targets: ['nohost'] }), /host:port/);
  // Node's codes, so that callers can tell a bad argument from a failed call.
  const code = (f: () => unknown) => { try { f(); } catch (e) { return (e as { code?: string }).code; } return 'no error'; };
  assert.is(code(() => new rpc.RpcClient({ service: Kitchen, retry: { maxAttempts: 0 } })), 'ERR_OUT_OF_RANGE');
  assert.is(code(() => new rpc.RpcClient({ service: Kitchen, rateLimit: { qps: 0 } })), 'ERR_OUT_OF_RANGE');
  assert.is(code(() => new rpc.RpcClient({ service: Kitchen, loadBalancer: 'nope' as never })), 'ERR_INVALID_ARG_VALUE');
  assert.is(code(() => new rpc.RpcClient({ service: Kitchen, keepAlive: -1 })), 'ERR_OUT_OF_RANGE');
  assert.is(code(() => new rpc.RpcClient({ service: Kitchen, connectTimeout: 1.5 })), 'ERR_OUT_OF_RANGE');
  assert.is(code(() => new rpc.RpcServer().register(Kitchen, { nope: () => 1 } as never)), 'ERR_INVALID_ARG_VALUE');
});

test('a call to a method the service does not have fails with ERR_INVALID_ARG_VALUE', async () => {
  const c = new rpc.RpcClient({ service: Kitchen, targets: ['127.0.0.1:1'] });
  const err = await c.call('nope', {}).then(() => undefined, (e: Error) => e);
  assert.is((err as { code?: string } | undefined)?.code, 'ERR_INVALID_ARG_VALUE');
  assert.match(String(err), /has no method nope/);
  c.close();
});

test.run();
