// linkpoll/etcd against a real etcd (Debian's etcd-server, started here): the registry writes
// Kitex registry-etcd's keys and values under leases; the resolver lists then watches, follows
// puts, deletes and expired leases, keeps what it knows through an etcd restart and picks up
// changes after it; an RpcClient bound to it calls whoever is registered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import * as rpc from '../src/rpc/internal';
import type { LinkpollError } from '../src';
import { EtcdRegistry, EtcdResolver, type ResolvedInstance } from '../src/etcd';
import { etcdMissing, startEtcd, type EtcdProcess } from '../examples/etcd-server';
import { until } from './helpers';
import { goPeers, kitexVersion, runGo, startGo, stopGo } from './kitex-peers';

const root = path.join(__dirname, '..', '..');
const Kitchen = rpc.parseIdl(fs.readFileSync(path.join(root, 'test', 'fixtures', 'everything.thrift'), 'utf8')).services.Kitchen!;
const missing = etcdMissing();
let etcd: EtcdProcess | undefined;
let startFailed: Error | undefined; // (uvu does not report a failing hook)
test.before(async () => { if (!missing) etcd = await startEtcd().catch((e: Error) => { startFailed = e; return undefined; }); });
function skipped(): boolean {
  if (startFailed) throw startFailed;
  if (missing) console.log(`  SKIPPED (visible): ${missing}`);
  return missing !== undefined;
}
test.after(async () => { await etcd?.stop(); });

/** A Kitchen server whose slow() says who answered. */
async function server(name: string) {
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(Kitchen, { slow: () => name, echo: (a) => a.e, fail: () => 0 });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  return { srv, address: `127.0.0.1:${port}` };
}

test('the registry writes Kitex registry-etcd\'s key and value under a kept-alive lease, and deregistering deletes it at once', async () => {
  if (skipped()) return;
  const reg = new EtcdRegistry({ endpoints: etcd!.url, ttl: 2, logger: null });
  const raw = new Etcd3({ hosts: etcd!.url });
  try {
    await reg.register({ service: 'kitchen', address: '127.0.0.1:7001', weight: 5, tags: { zone: 'a' } });
    const kvs = await raw.getAll().prefix('kitex/registry-etcd/kitchen/').strings();
    assert.equal(Object.keys(kvs), ['kitex/registry-etcd/kitchen/127.0.0.1:7001']);
    assert.equal(JSON.parse(kvs['kitex/registry-etcd/kitchen/127.0.0.1:7001']!), { network: 'tcp', address: '127.0.0.1:7001', weight: 5, tags: { zone: 'a' } });
    const lease = (await raw.get('kitex/registry-etcd/kitchen/127.0.0.1:7001').exec()).kvs[0]!.lease;
    assert.ok(lease !== '0', 'held by a lease');
    await new Promise((r) => setTimeout(r, 3000)); // longer than the TTL: kept alive
    assert.ok(await raw.get('kitex/registry-etcd/kitchen/127.0.0.1:7001').string(), 'still there after the TTL');
    await reg.deregister({ service: 'kitchen', address: '127.0.0.1:7001' });
    assert.is(await raw.get('kitex/registry-etcd/kitchen/127.0.0.1:7001').string(), null);
    await reg.register({ service: 'a/b', address: 'x:1' }).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /without '\/'/));
  } finally {
    await reg.close();
    raw.close();
  }
});

test('a client bound to the resolver calls every registered server, and only those: register, deregister, a weight change', async () => {
  if (skipped()) return;
  const a = await server('a'), b = await server('b');
  const reg = new EtcdRegistry({ endpoints: etcd!.url, ttl: 5, logger: null });
  const res = new EtcdResolver({ endpoints: etcd!.url, service: 'kitchen-rr', logger: null });
  const c = new rpc.RpcClient({ service: Kitchen, timeout: 2000 });
  const answers = async (n: number) => { const got = new Set<string>(); for (let i = 0; i < n; i++) got.add(await c.call('slow', { ms: 0 }) as string); return [...got].sort(); };
  try {
    await reg.register({ service: 'kitchen-rr', address: a.address });
    await res.bind(c);
    assert.equal(await answers(4), ['a']);
    const changes: ResolvedInstance[][] = [];
    res.on('change', (all) => changes.push(all));
    await reg.register({ service: 'kitchen-rr', address: b.address, tags: { 'lp-transforms': 'zlib' } });
    await until(() => res.instances().length === 2);
    assert.equal(await answers(8), ['a', 'b']);
    assert.equal(res.targets().find((t) => t.address === b.address), { address: b.address, weight: 10, readsCompressed: true });
    await reg.deregister({ service: 'kitchen-rr', address: a.address });
    await until(() => res.instances().length === 1);
    assert.equal(await answers(8), ['b']);
    assert.ok(changes.length >= 2);
  } finally {
    c.close();
    await res.close();
    await reg.close();
    await a.srv.close({ timeout: 100 });
    await b.srv.close({ timeout: 100 });
  }
});

test('a process that dies without deregistering: its key goes when its lease expires, and the resolver drops it (a delete event carries only the key)', async () => {
  if (skipped()) return;
  const res = new EtcdResolver({ endpoints: etcd!.url, service: 'kitchen-kill', logger: null });
  await res.start();
  // A child registers itself with a 2 s lease and is killed.
  const script = `const { EtcdRegistry } = require(${JSON.stringify(path.join(root, 'dist', 'src', 'etcd'))});
    new EtcdRegistry({ endpoints: ${JSON.stringify(etcd!.url)}, ttl: 2 }).register({ service: 'kitchen-kill', address: '127.0.0.1:7777' }).then(() => console.log('registered'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('registered')) resolve(); }));
    await until(() => res.instances().length === 1);
    const removed: string[] = [];
    res.on('change', (_all, diff) => removed.push(...diff.removed.map((r) => r.address)));
    const t0 = Date.now();
    child.kill('SIGKILL');
    await until(() => res.instances().length === 0, 10000, 'the lease to expire');
    const took = Date.now() - t0;
    assert.ok(took >= 1000 && took < 8000, `dropped after ${took} ms (TTL 2 s)`);
    assert.equal(removed, ['127.0.0.1:7777']);
  } finally {
    child.kill('SIGKILL');
    await res.close();
  }
});

test('through an etcd restart: the resolver keeps its instances (calls go on), then follows changes made after; the registry\'s keys are still there', async () => {
  if (skipped()) return;
  const a = await server('a'), b = await server('b');
  const reg = new EtcdRegistry({ endpoints: etcd!.url, ttl: 10, logger: null });
  const res = new EtcdResolver({ endpoints: etcd!.url, service: 'kitchen-restart', logger: null });
  const c = new rpc.RpcClient({ service: Kitchen, timeout: 2000 });
  try {
    await reg.register({ service: 'kitchen-restart', address: a.address });
    await res.bind(c);
    let disconnected = false, reconnected = false;
    res.on('disconnected', () => { disconnected = true; });
    res.on('reconnected', () => { reconnected = true; });
    await etcd!.stop(true);
    await until(() => disconnected, 10000, 'the watch to notice');
    assert.equal(res.instances().map((i) => i.address), [a.address], 'kept while etcd is down');
    assert.is(await c.call('slow', { ms: 0 }), 'a');
    await etcd!.restart();
    await until(() => reconnected, 15000, 'the watch to come back');
    await reg.register({ service: 'kitchen-restart', address: b.address });
    await until(() => res.instances().length === 2, 10000, 'the new instance');
    const got = new Set<string>();
    for (let i = 0; i < 8; i++) got.add(await c.call('slow', { ms: 0 }) as string);
    assert.equal([...got].sort(), ['a', 'b']);
  } finally {
    c.close();
    await res.close();
    await reg.close();
    await a.srv.close({ timeout: 100 });
    await b.srv.close({ timeout: 100 });
  }
});

test('no change falls between the list and the watch: instances registered while resolvers start are all seen', async () => {
  if (skipped()) return;
  const reg = new EtcdRegistry({ endpoints: etcd!.url, ttl: 10, logger: null });
  const resolvers: EtcdResolver[] = [];
  try {
    const writes = Array.from({ length: 40 }, (_, i) => reg.register({ service: 'kitchen-race', address: `127.0.0.1:${20000 + i}` }));
    for (let i = 0; i < 5; i++) {
      const r = new EtcdResolver({ endpoints: etcd!.url, service: 'kitchen-race', logger: null });
      resolvers.push(r);
      void r.start();
      await new Promise((res) => setTimeout(res, 5));
    }
    await Promise.all(writes);
    for (const r of resolvers) await until(() => r.instances().length === 40, 5000, 'every instance');
  } finally {
    for (const r of resolvers) await r.close();
    await reg.close();
  }
});

test(`Kitex ${kitexVersion()} with kitex-contrib/registry-etcd: a Kitex client finds and calls linkpoll servers registered here, a linkpoll client finds and calls Kitex servers registered there, and one service holds both`, async () => {
  if (skipped()) return;
  const peers = goPeers();
  if ('skip' in peers) { console.log(`  SKIPPED (visible): ${peers.skip}`); return; }
  const hostPort = etcd!.url.replace(/^http:\/\//, '');
  const lp = await server('linkpoll');
  const reg = new EtcdRegistry({ endpoints: etcd!.url, ttl: 10, logger: null });
  const kx = await startGo(peers.dir, 'kdiscovery', ['-etcd', hostPort, '-mode', 'serve', '-service', 'kitchen-mixed', '-name', 'kitex']);
  const res = new EtcdResolver({ endpoints: etcd!.url, service: 'kitchen-mixed', logger: null });
  const c = new rpc.RpcClient({ service: Kitchen, timeout: 3000 });
  try {
    // Kitex's registration, as our resolver reads it.
    await res.bind(c);
    await until(() => res.instances().length === 1, 5000, 'the Kitex server in etcd');
    assert.equal(res.instances().map((i) => [i.address, i.weight]), [[kx.addr, 10]]);
    assert.is(await c.call('slow', { ms: 0 }), 'kitex');
    // Ours, as Kitex's resolver reads it: both found.
    await reg.register({ service: 'kitchen-mixed', address: lp.address });
    await until(() => res.instances().length === 2);
    const got = new Set<string>();
    for (let i = 0; i < 10; i++) got.add(await c.call('slow', { ms: 0 }) as string);
    assert.equal([...got].sort(), ['kitex', 'linkpoll']);
    const r = await runGo(peers.dir, 'kdiscovery', ['-etcd', hostPort, '-mode', 'call', '-service', 'kitchen-mixed', '-n', '30']);
    assert.is(r.code, 0, r.lines.join('\n'));
    assert.equal(r.lines.filter((l) => l.startsWith('answered')), ['answered kitex', 'answered linkpoll'], r.lines.join('\n'));
    assert.ok(r.lines.includes('ok 30 failed 0'), r.lines.join('\n'));
    // Only ours under another name: the Kitex client calls linkpoll alone.
    await reg.register({ service: 'kitchen-lp-only', address: lp.address });
    const only = await runGo(peers.dir, 'kdiscovery', ['-etcd', hostPort, '-mode', 'call', '-service', 'kitchen-lp-only', '-n', '10']);
    assert.equal(only.lines.filter((l) => !l.startsWith('{')).slice(-2), ['answered linkpoll', 'ok 10 failed 0'], only.lines.join('\n'));
    // The Kitex server leaves (Stop deregisters): our client is left with linkpoll.
    await stopGo(kx);
    await until(() => res.instances().length === 1, 5000, 'the Kitex server to deregister');
    assert.is(await c.call('slow', { ms: 0 }), 'linkpoll');
  } finally {
    c.close();
    await stopGo(kx, 'SIGKILL');
    await res.close();
    await reg.close();
    await lp.srv.close({ timeout: 100 });
  }
});

test('etcd down: register rejects (ERR_LINKPOLL_ETCD_UNAVAILABLE) and keeps trying, a resolver\'s start rejects and can be tried again; both work once etcd is back', async () => {
  if (skipped()) return;
  const reg = new EtcdRegistry({ endpoints: etcd!.url, ttl: 10, logger: null });
  const res = new EtcdResolver({ endpoints: etcd!.url, service: 'kitchen-down', logger: null });
  try {
    await etcd!.stop(true);
    const e = await reg.register({ service: 'kitchen-down', address: '127.0.0.1:7100' }).then(() => undefined, (x: LinkpollError) => x);
    assert.is(e?.code, 'ERR_LINKPOLL_ETCD_UNAVAILABLE');
    const e2 = await res.start().then(() => undefined, (x: LinkpollError) => x);
    assert.is(e2?.code, 'ERR_LINKPOLL_ETCD_UNAVAILABLE');
    await etcd!.restart();
    let started = false;
    for (let i = 0; i < 50 && !started; i++) {
      started = await res.start().then(() => true, () => false);
      if (!started) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(started, 'the resolver started once etcd was back');
    await until(() => res.instances().length === 1, 10000, 'the registration made in the background');
    assert.is(res.instances()[0]!.address, '127.0.0.1:7100');
  } finally {
    await res.close();
    await reg.close();
  }
});

test.run();
