// GeeCache with etcd membership (examples/geecache --etcd), measured two ways:
// 1. the request path: a 3-node RPC cluster whose members come from etcd against the same cluster
//    with a fixed --peers list (alternated, medians), the project's load generator on the front
//    node asking keys the front node does not own (hot cache off: every request crosses);
// 2. what clients see while members change: load on the front node through four windows (steady,
//    a node joining, a node leaving on SIGTERM, a node killed with SIGKILL and dropped when its
//    2 s lease expires), requests, errors and latency per window.
// Needs Debian's etcd-server.
//   node dist/bench/geecache-membership.js [--reps 3] [--seconds 3]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { HashRing } from '../examples/geecache/consistenthash';
import { etcdMissing, startEtcd, type EtcdProcess } from '../examples/etcd-server';
import { num } from '../examples/cli';
import { loadgenPath } from './loadgen';

const root = path.join(__dirname, '..', '..');
const loadgen = loadgenPath();
const REPS = num('reps', 3, 1);
const SECONDS = num('seconds', 3, 1);

async function freePorts(n: number): Promise<number[]> {
  const s = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((r) => { const x = net.createServer(); x.listen(0, '127.0.0.1', () => r(x)); })));
  const ports = s.map((x) => (x.address() as net.AddressInfo).port);
  await Promise.all(s.map((x) => new Promise((r) => x.close(r))));
  return ports;
}

function node(port: number, membership: string[], extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(root, 'dist/examples/geecache/main.js'), '--port', String(port), '--hot-cache', 'off', '--db-delay-ms', '0', '--rpc', ...membership, ...extra],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => { if (/is running/.test(String(d))) resolve(child); });
    child.once('exit', (code) => reject(new Error(`node ${port} exited with ${code}`)));
  });
}

function ringOf(port: number): Promise<string[]> {
  return new Promise((resolve, reject) => http.get(`http://127.0.0.1:${port}/_stats`, (res) => {
    let b = '';
    res.on('data', (c) => { b += c; });
    res.on('end', () => resolve((JSON.parse(b) as { peers: string[] }).peers));
  }).on('error', reject));
}

async function converge(ports: number[], want: number[]): Promise<void> {
  const expect = want.map((p) => `127.0.0.1:${p}`).sort().join(',');
  for (let i = 0; i < 200; i++) {
    const rings = await Promise.all(ports.map((p) => ringOf(p).catch(() => [])));
    if (rings.every((r) => r.join(',') === expect)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`rings did not converge to ${expect}`);
}

interface Result { qps: number; avgUs: number; p99Us: number; p999Us: number; errors: number; requests: number }

function parse(out: string): Result {
  const line = out.split('\n').find((l) => l.startsWith('RESULT')) ?? '';
  if (!line) throw new Error(`loadgen printed no result: ${out}`);
  const f = (k: string) => Number(new RegExp(`${k}=([0-9.]+)`).exec(line)?.[1] ?? NaN);
  return { qps: f('qps'), avgUs: f('avg_us'), p99Us: f('p99_us'), p999Us: f('p999_us'), errors: f('errors'), requests: f('requests') };
}

/** The load generator in the background for `seconds`. */
function loadFor(port: number, mode: 'http' | 'ttheader', keys: string[], seconds: number, valueSize: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const c = spawn(loadgen, ['-p', String(port), '-m', mode, '-c', '10', '-d', String(seconds), '-w', '0', '-k', keys.join(','), '-v', String(valueSize)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    c.once('exit', () => { try { resolve(parse(out)); } catch (e) { reject(e); } });
  });
}

async function requestPath(etcd: EtcdProcess): Promise<void> {
  console.log('\n| members from | client | QPS (median) | avg ms | p99 ms | errors |');
  console.log('|---|---|---|---|---|---|');
  for (const mode of ['ttheader', 'http'] as const) {
    const samples: Record<'static' | 'etcd', Result[]> = { static: [], etcd: [] };
    for (let rep = 0; rep < REPS; rep++) {
      for (const how of ['static', 'etcd'] as const) {
        const ports = await freePorts(3);
        const membership = how === 'static' ? ['--peers', ports.map((p) => `127.0.0.1:${p}`).join(',')] : ['--etcd', etcd.url, '--service', `bench-${rep}-${mode}`];
        const nodes = await Promise.all(ports.map((p) => node(p, membership)));
        try {
          await converge(ports, ports);
          const ring = new HashRing(50);
          ring.add(...ports.map((p) => `http://127.0.0.1:${p}`));
          const owner = (k: string) => Number(ring.get(k).split(':').pop());
          const all = ['Tom', 'Jack', 'Sam'];
          const front = [...ports].sort((a, b) => all.filter((k) => owner(k) === a).length - all.filter((k) => owner(k) === b).length)[0]!;
          const keys = all.filter((k) => owner(k) !== front);
          spawnSync(loadgen, ['-p', String(front), '-m', mode, '-c', '1', '-n', '30', '-k', keys.join(',')]);
          samples[how].push(await loadFor(front, mode, keys, SECONDS, 3));
        } finally {
          for (const n of nodes) n.kill('SIGKILL');
          await Promise.all(nodes.map((n) => new Promise((r) => (n.exitCode !== null || n.signalCode !== null ? r(null) : n.once('exit', r)))));
        }
      }
    }
    const med = (xs: Result[]) => [...xs].sort((a, b) => a.qps - b.qps)[xs.length >> 1]!;
    for (const how of ['static', 'etcd'] as const) {
      const m = med(samples[how]);
      console.log(`| ${how === 'static' ? '--peers (fixed)' : 'etcd (--etcd)'} | ${mode === 'http' ? 'HTTP' : 'RPC'} | ${Math.round(m.qps).toLocaleString('en-US')} | ${(m.avgUs / 1000).toFixed(3)} | ${(m.p99Us / 1000).toFixed(3)} | ${samples[how].reduce((a, s) => a + s.errors, 0)} |`);
    }
    console.log(`| etcd / fixed | ${mode === 'http' ? 'HTTP' : 'RPC'} | ${(med(samples.etcd).qps / med(samples.static).qps).toFixed(2)}x (rounds: ${samples.etcd.map((e, i) => (e.qps / samples.static[i]!.qps).toFixed(2)).join(', ')}) | | | |`);
  }
}

async function churn(etcd: EtcdProcess): Promise<void> {
  const ports = await freePorts(5);
  const membership = ['--etcd', etcd.url, '--etcd-ttl', '2', '--service', 'bench-churn'];
  const nodes = new Map<number, ChildProcess>();
  for (const p of ports.slice(0, 4)) nodes.set(p, await node(p, membership));
  const front = ports[0]!;
  // key10..key99: values "v:keyNN", 7 bytes, owned all over the ring.
  const keys = Array.from({ length: 90 }, (_, i) => `key${i + 10}`);
  try {
    await converge([...nodes.keys()], [...nodes.keys()]);
    spawnSync(loadgen, ['-p', String(front), '-m', 'http', '-c', '1', '-n', '900', '-k', keys.join(',')]);
    console.log(`\n| window (${SECONDS} s, 10 HTTP clients on the front node, 90 keys) | requests | errors | QPS | avg ms | p99 ms | p99.9 ms |`);
    console.log('|---|---|---|---|---|---|---|');
    const row = (name: string, r: Result) => console.log(`| ${name} | ${r.requests.toLocaleString('en-US')} | ${r.errors} | ${Math.round(r.qps).toLocaleString('en-US')} | ${(r.avgUs / 1000).toFixed(3)} | ${(r.p99Us / 1000).toFixed(3)} | ${(r.p999Us / 1000).toFixed(3)} |`);
    row('steady, 4 nodes', await loadFor(front, 'http', keys, SECONDS, 7));
    const during = async (name: string, act: () => Promise<void>) => {
      const l = loadFor(front, 'http', keys, SECONDS, 7);
      await new Promise((r) => setTimeout(r, 500));
      await act();
      row(name, await l);
    };
    await during('a 5th node joins', async () => { nodes.set(ports[4]!, await node(ports[4]!, membership)); });
    await during('a node leaves (SIGTERM)', async () => {
      const c = nodes.get(ports[1]!)!;
      nodes.delete(ports[1]!);
      await new Promise((r) => { c.once('exit', r); c.kill('SIGTERM'); });
    });
    await during('a node is killed (SIGKILL; lease 2 s)', async () => {
      const c = nodes.get(ports[2]!)!;
      nodes.delete(ports[2]!);
      c.kill('SIGKILL');
    });
    row('steady again, 3 nodes', await loadFor(front, 'http', keys, SECONDS, 7));
  } finally {
    for (const n of nodes.values()) n.kill('SIGKILL');
  }
}

async function main(): Promise<void> {
  const why = etcdMissing();
  if (why) { console.log(`skipped: ${why}`); return; }
  const etcd = await startEtcd({ logLevel: 'error' });
  try {
    console.log(`# node ${process.version}; 3-node RPC clusters (peers over RPC, hot cache off, DB delay 0) on this machine, unpinned`);
    await requestPath(etcd);
    await churn(etcd);
  } finally {
    await etcd.stop();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
