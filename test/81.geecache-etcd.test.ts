// GeeCache as a cluster whose members change, on a real etcd: nodes (child processes) register
// and watch; rings converge; a node joins, leaves gracefully (SIGTERM) and is killed (SIGKILL)
// while clients keep asking, with no failed and no wrong answer; the traffic switch moves a
// running cluster from HTTP to RPC; /metrics parses as Prometheus text; and across hosts
// (network namespaces), a host cut off is dropped after its lease and rejoins when healed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { etcdMissing, startEtcd, type EtcdProcess } from '../examples/etcd-server';

import { testNetwork } from './netns';
import { HashRing } from '../examples/geecache/consistenthash';

const mainJs = path.join(__dirname, '..', 'examples', 'geecache', 'main.js');
const missing = etcdMissing();
let etcd: EtcdProcess | undefined;
let startFailed: Error | undefined; // (uvu does not report a failing hook)
test.before(async () => { if (!missing) etcd = await startEtcd().catch((e: Error) => { startFailed = e; return undefined; }); });
test.after(async () => { await etcd?.stop(); });
function skipped(): boolean {
  if (startFailed) throw startFailed;
  if (missing) console.log(`  SKIPPED (visible): ${missing}`);
  return missing !== undefined;
}

interface Node { addr: string; child: ChildProcess; out: string[] }

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => r(s)); })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Starts a node (in a namespace when `run` says how) and resolves once it serves. */
function startNode(host: string, port: number, etcdUrl: string, extra: string[] = [], run: string[] = []): Promise<Node> {
  const argv = [...run, process.execPath, mainJs, '--host', host, '--port', String(port), '--etcd', etcdUrl, '--etcd-ttl', '2', '--db-delay-ms', '2', '--hot-cache', 'off', ...extra];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  return new Promise((resolve, reject) => {
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      out.push(...lines.filter(Boolean));
      if (lines.some((l) => l.includes('is running at'))) resolve({ addr: `${host}:${port}`, child, out });
    });
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    child.once('exit', (code) => reject(new Error(`node ${host}:${port} exited with ${code}: ${out.join('\n')}`)));
  });
}

function stopNode(n: Node, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (n.child.exitCode !== null || n.child.signalCode !== null) return Promise.resolve(n.child.exitCode);
  return new Promise((r) => { n.child.once('exit', (code) => r(code)); n.child.kill(signal); });
}

/** GET over a fresh connection (no pooling across nodes that come and go). */
function get(addr: string, p: string, timeout = 10000): Promise<{ status: number; body: string }> {
  const [host, port] = addr.split(':');
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: Number(port), path: p, agent: false, timeout }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${addr}${p} timed out`)));
    req.on('error', reject);
  });
}
const ring = async (addr: string) => (JSON.parse((await get(addr, '/_stats')).body) as { peers: string[] }).peers;

/** Waits until every node's ring is exactly `want`. */
async function converged(nodes: Node[], want: string[], ms = 10000): Promise<void> {
  const sorted = [...want].sort();
  const deadline = Date.now() + ms;
  for (;;) {
    const rings = await Promise.all(nodes.map((n) => ring(n.addr).catch(() => [])));
    if (rings.every((r) => JSON.stringify(r) === JSON.stringify(sorted))) return;
    if (Date.now() > deadline) assert.unreachable(`rings did not converge to ${sorted.join(', ')}: ${rings.map((r) => r.join(',')).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Clients asking `fronts()` for key0..key199 until stopped; every answer checked. */
function load(fronts: () => string[], workers = 8) {
  const st = { ok: 0, failed: [] as string[], wrong: [] as string[], stop: false, latencies: [] as number[] };
  let i = 0;
  const run = async () => {
    while (!st.stop) {
      const list = fronts();
      const front = list[i % list.length]!;
      const key = `key${i++ % 200}`;
      const t0 = performance.now();
      try {
        const r = await get(front, `/_geecache/scores/${key}`);
        st.latencies.push(performance.now() - t0);
        if (r.status !== 200) st.failed.push(`${front} ${key}: ${r.status} ${r.body.trim()}`);
        else if (r.body !== `v:${key}`) st.wrong.push(`${front} ${key}: ${r.body}`);
        else st.ok++;
      } catch (e) {
        st.failed.push(`${front} ${key}: ${(e as Error).message}`);
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, run));
  return { st, stop: async () => { st.stop = true; await done; return st; } };
}

test('join, graceful leave and kill under load: rings converge each time, no client request fails or is answered wrongly', async () => {
  if (skipped()) return;
  const ports = await freePorts(4);
  const nodes: Node[] = [];
  try {
    for (const p of ports.slice(0, 3)) nodes.push(await startNode('127.0.0.1', p, etcd!.url, ['--rpc']));
    await converged(nodes, nodes.map((n) => n.addr));
    // Clients ask the first node only: it is never stopped (a client of a node that is killed
    // loses what it sent that node; the cluster's answers are what is tested here).
    const l = load(() => [nodes[0]!.addr, nodes[1]!.addr].filter((a) => a !== undefined));
    await new Promise((r) => setTimeout(r, 500));
    nodes.push(await startNode('127.0.0.1', ports[3]!, etcd!.url, ['--rpc']));
    await converged(nodes, nodes.map((n) => n.addr));
    await new Promise((r) => setTimeout(r, 500));
    // Graceful leave: node 2 (not a front).
    const leaving = nodes[2]!;
    const code = await stopNode(leaving, 'SIGTERM');
    assert.is(code, 0, 'a graceful leave exits 0');
    const left = nodes.filter((n) => n !== leaving);
    await converged(left, left.map((n) => n.addr));
    await new Promise((r) => setTimeout(r, 500));
    // Killed: node 3; the others drop it when its 2 s lease expires, loading its keys locally meanwhile.
    const killed = nodes[3]!;
    const t0 = Date.now();
    await stopNode(killed, 'SIGKILL');
    const alive = left.filter((n) => n !== killed);
    await converged(alive, alive.map((n) => n.addr), 10000);
    const dropAfter = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 500));
    const st = await l.stop();
    assert.equal(st.failed, [], `failed: ${st.failed.slice(0, 5).join('; ')}`);
    assert.equal(st.wrong, [], `wrong: ${st.wrong.slice(0, 5).join('; ')}`);
    assert.ok(st.ok > 500, `${st.ok} answers`);
    assert.ok(dropAfter >= 1000 && dropAfter < 8000, `the killed node dropped after ${dropAfter} ms (TTL 2 s)`);
  } finally {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  }
});

test('the traffic switch in etcd moves a running cluster from HTTP to RPC and back, with no failed request', async () => {
  if (skipped()) return;
  const ports = await freePorts(3);
  const nodes: Node[] = [];
  const raw = new Etcd3({ hosts: etcd!.url });
  const service = 'geecache-switch';
  const key = `linkpoll/geecache/${service}/rpc-share`;
  const fetches = async () => {
    let h = 0, r = 0;
    const share = new Set<number>();
    for (const n of nodes) {
      const s = JSON.parse((await get(n.addr, '/_stats')).body) as { rpcShare: number };
      share.add(s.rpcShare);
      const m = (await get(n.addr, '/metrics')).body;
      h += Number(/geecache_peer_fetches_total\{transport="http",outcome="ok"\} (\d+)/.exec(m)![1]);
      r += Number(/geecache_peer_fetches_total\{transport="rpc",outcome="ok"\} (\d+)/.exec(m)![1]);
    }
    return { http: h, rpc: r, share: [...share] };
  };
  try {
    await raw.delete().key(key).exec();
    for (const p of ports) nodes.push(await startNode('127.0.0.1', p, etcd!.url, ['--service', service]));
    await converged(nodes, nodes.map((n) => n.addr));
    const l = load(() => nodes.map((n) => n.addr));
    await new Promise((r) => setTimeout(r, 600));
    const a = await fetches();
    assert.equal(a.share, [0]);
    assert.ok(a.http > 0 && a.rpc === 0, JSON.stringify(a));
    await raw.put(key).value('50');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await fetches()).share, [50]);
    await raw.put(key).value('100');
    await new Promise((r) => setTimeout(r, 300));
    const b = await fetches();
    assert.equal(b.share, [100]);
    // Values are not reloaded once cached: later keys keep the fetch counts moving (hot cache off; numbered keys).
    await new Promise((r) => setTimeout(r, 600));
    const c = await fetches();
    assert.is(c.http, b.http, 'no HTTP fetch once at 100 %');
    await raw.put(key).value('0');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await fetches()).share, [0]);
    const st = await l.stop();
    assert.equal(st.failed, []);
    assert.equal(st.wrong, []);
    assert.ok(b.rpc > a.rpc, `RPC fetches rose: ${a.rpc} -> ${b.rpc}`);
  } finally {
    raw.close();
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  }
});

test('/metrics is valid Prometheus text (parsed by the Python prometheus_client parser) with the families the seed\'s monitoring asks for', async () => {
  if (skipped()) return;
  const [port] = await freePorts(1);
  const node = await startNode('127.0.0.1', port!, etcd!.url, ['--rpc', '--service', 'geecache-metrics']);
  try {
    for (const k of ['key1', 'key2', 'Tom', 'nope']) await get(node.addr, `/_geecache/scores/${k}`);
    await get(node.addr, '/_geecache/nogroup/x');
    const text = (await get(node.addr, '/metrics')).body;
    const py = '/usr/bin/python3';
    const script = 'import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\n' +
      'out = {}\nfor f in text_string_to_metric_families(sys.stdin.read()):\n  out[f.name] = [f.type, [[s.name, s.labels, s.value] for s in f.samples]]\nprint(json.dumps(out))\n';
    const parsed = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = execFile(py, ['-c', script], (err, out, e) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, out, err: e }));
      c.stdin!.end(text);
    });
    if (/No module named 'prometheus_client'/.test(parsed.err)) { console.log('  SKIPPED (visible): python3-prometheus-client is not installed'); return; }
    assert.is(parsed.code, 0, parsed.err);
    const fam = JSON.parse(parsed.out) as Record<string, [string, [string, Record<string, string>, number][]]>;
    for (const [name, type] of [['geecache_requests', 'counter'], ['geecache_request_duration_seconds', 'histogram'], ['geecache_request_errors', 'counter'],
      ['geecache_open_connections', 'gauge'], ['geecache_peer_fetches', 'counter'], ['geecache_cache_bytes', 'gauge'], ['geecache_cache_items', 'gauge'],
      ['geecache_cache_evictions', 'counter'], ['geecache_membership_changes', 'counter'], ['process_resident_memory_bytes', 'gauge']] as const) {
      assert.is(fam[name]?.[0], type, `${name} is a ${type}`);
    }
    const sample = (name: string, labels: Record<string, string>) => fam[name.replace(/_total$/, '')]![1].find(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v))?.[2];
    assert.is(sample('geecache_requests_total', { transport: 'http' }), 5);
    assert.is(sample('geecache_request_errors_total', { transport: 'http', kind: 'load' }), 1, 'nope: the loader failed');
    assert.is(sample('geecache_request_errors_total', { transport: 'http', kind: 'not_found' }), 1, 'no such group');
    assert.is(sample('geecache_cache_items', { group: 'scores', cache: 'main' }), 3);
    assert.ok((sample('process_resident_memory_bytes', {}) ?? 0) > 1e6);
  } finally {
    await stopNode(node, 'SIGKILL');
  }
});

test('across hosts (network namespaces): a host cut off is dropped after its lease, rejoins when healed, and no key is ever answered wrongly', async () => {
  if (skipped()) return;
  const netw = testNetwork('gc', 41, 4);
  if ('skip' in netw) { console.log(`  SKIPPED (visible): ${netw.skip}`); return; }
  const [etcdHost, ...hosts] = netw.hosts;
  let hostEtcd: EtcdProcess | undefined;
  const nodes: Node[] = [];
  try {
    hostEtcd = await startEtcd({ host: etcdHost!.addr, clientPort: 2379, peerPort: 2380, run: ['ip', 'netns', 'exec', etcdHost!.ns] });
    for (const h of hosts) nodes.push(await startNode(h.addr, 8001, hostEtcd.url, ['--rpc'], ['ip', 'netns', 'exec', h.ns]));
    const addrs = nodes.map((n) => n.addr);
    await converged(nodes, addrs);
    const l = load(() => [nodes[0]!.addr, nodes[1]!.addr], 4);
    await new Promise((r) => setTimeout(r, 500));
    const cut = hosts[2]!;
    cut.setLink(false);
    await converged(nodes.slice(0, 2), addrs.slice(0, 2), 15000);
    await new Promise((r) => setTimeout(r, 500));
    cut.setLink(true);
    await converged(nodes, addrs, 20000);
    await new Promise((r) => setTimeout(r, 500));
    const st = await l.stop();
    assert.equal(st.wrong, [], `wrong answers: ${st.wrong.slice(0, 5).join('; ')}`);
    assert.equal(st.failed, [], `failed: ${st.failed.slice(0, 5).join('; ')}`);
    assert.ok(st.ok > 100, `${st.ok} answers`);
    assert.ok(nodes[2]!.out.some((l2) => /lost the registration|etcd unreachable/.test(l2)), 'the cut-off node noticed');
  } finally {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    await hostEtcd?.stop();
    netw.close();
  }
});

test('--compress auto across hosts on 100 Mbit/s links: an owner whose path to the front node is loaded measures it as slow and compresses its 16 KiB values; every answer whole', async () => {
  if (skipped()) return;
  const netw = testNetwork('gz', 42, 3, { rateMbit: 100 });
  if ('skip' in netw) { console.log(`  SKIPPED (visible): ${netw.skip}`); return; }
  const nodes: Node[] = [];
  let hostEtcd: EtcdProcess | undefined;
  try {
    hostEtcd = await startEtcd({ host: netw.gateway, logLevel: 'error' });
    for (const h of netw.hosts) {
      nodes.push(await startNode(h.addr, 8001, hostEtcd.url, ['--rpc', '--compress', 'auto', '--value-bytes', '16384', '--service', 'geecache-gz'], ['ip', 'netns', 'exec', h.ns]));
    }
    await converged(nodes, nodes.map((n) => n.addr));
    const front = nodes[0]!.addr;
    const { recordValue } = await import('../examples/geecache/main');
    // HEAD: the front node fetches each value from its owner but sends the client only headers,
    // so the owners' links, not the front node's to this test, are the ones loaded.
    const head = (key: string) => new Promise<number>((resolve, reject) => {
      const req = http.request({ host: front.split(':')[0], port: 8001, path: `/_geecache/scores/${key}`, method: 'HEAD', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(Number(res.headers['content-length'])));
      });
      req.on('error', reject);
      req.end();
    });
    // Keys one owner holds: its link to the front node carries all the load.
    const ring = new HashRing(50);
    ring.add(...nodes.map((x) => `http://${x.addr}`));
    const keys = Array.from({ length: 200 }, (_, i) => `key${i}`).filter((k) => ring.get(k) === `http://${nodes[1]!.addr}`).slice(0, 40);
    let wrong = 0, n = 0;
    const end = Date.now() + 1500;
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; Date.now() < end; i += 16) {
        n++;
        if (await head(keys[i % keys.length]!) !== 16384) wrong++;
      }
    }));
    for (const key of keys.slice(0, 3)) if ((await get(front, `/_geecache/scores/${key}`)).body !== recordValue(key, 16384)) wrong++;
    assert.is(wrong, 0);
    const owner = JSON.parse((await get(nodes[1]!.addr, '/_stats')).body) as { rpc: { compressedReplies: number; replies: number } };
    assert.ok(owner.rpc.compressedReplies > owner.rpc.replies / 2, `the owner compressed ${owner.rpc.compressedReplies} of ${owner.rpc.replies} replies (${n} requests)`);
  } finally {
    await Promise.all(nodes.map((x) => stopNode(x, 'SIGKILL')));
    await hostEtcd?.stop();
    netw.close();
  }
});

test('a node started while etcd is down serves alone, then joins the cluster once etcd is back', async () => {
  if (skipped()) return;
  const ports = await freePorts(2);
  const nodes: Node[] = [];
  try {
    await etcd!.stop(true);
    nodes.push(await startNode('127.0.0.1', ports[0]!, etcd!.url, ['--rpc', '--service', 'geecache-late']));
    assert.is((await get(nodes[0]!.addr, '/_geecache/scores/key5')).body, 'v:key5', 'it serves on its own');
    assert.ok(nodes[0]!.out.some((l) => /cannot register|cannot list/.test(l)), nodes[0]!.out.join('\n'));
    await etcd!.restart();
    nodes.push(await startNode('127.0.0.1', ports[1]!, etcd!.url, ['--rpc', '--service', 'geecache-late']));
    await converged(nodes, nodes.map((n) => n.addr), 15000);
  } finally {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
  }
});

test.run();
