// The seed's section 4, measured: the full Get path (client -> node -> owner peer) on a
// 3-node GeeCache cluster with peers over HTTP (keep-alive) versus over linkpoll RPC, and the
// seed's own systems beside them: the Go GeeCache over net/http (the 7-days HTTPPool) and over
// Kitex (the seed's KitexPool/KitexServer; test/interop/kitex/cmd/geecache, npm run bench:peers).
// Load from the project's C load generator (bench/loadgen); hot cache off so that every request crosses
// to the owner. Writes a Markdown table and bench/geecache-chart.svg.
//   node dist/bench/geecache.js [--requests 10000] [--reps 3]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { HashRing } from '../examples/geecache/consistenthash';
import { loadgenPath } from './loadgen';
import { barChart } from './chart';

const root = path.join(__dirname, '..', '..');
const loadgen = loadgenPath();
const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? process.argv[i + 1] : d; };
const REQUESTS = Number(arg('requests', '10000'));
const REPS = Number(arg('reps', '3'));
// Flags for the nodes' V8 (the same for HTTP and RPC clusters), e.g. --node-args "--max-semi-space-size=1".
const NODE_ARGS = arg('node-args', '').split(' ').filter(Boolean);

async function freePorts(n: number): Promise<number[]> {
  const s = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((r) => { const x = net.createServer(); x.listen(0, '127.0.0.1', () => r(x)); })));
  const ports = s.map((x) => (x.address() as net.AddressInfo).port);
  await Promise.all(s.map((x) => new Promise((r) => x.close(r))));
  return ports;
}

function peakRssKb(pid: number): number {
  const m = /VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

interface Row { name: string; conns: number; qps: number; avgUs: number; p99Us: number; frontRssMb: number; maxRssMb: number; errors: number }

const goNode = path.join(root, 'test', 'interop', 'kitex', '.bin', 'geecache');

async function cluster(peerTransport: 'http' | 'rpc', kind: 'linkpoll' | 'go' = 'linkpoll'): Promise<{ nodes: ChildProcess[]; ports: number[] }> {
  const ports = await freePorts(3);
  const peers = ports.map((p) => `127.0.0.1:${p}`).join(',');
  const nodes = ports.map((p) => kind === 'go'
    ? spawn(goNode, ['-port', String(p), '-peers', peers, '-db-delay-ms', '0', '-transport', peerTransport === 'rpc' ? 'kitex' : 'http'], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, [...NODE_ARGS, path.join(root, 'dist/examples/geecache/main.js'), '--port', String(p), '--peers', peers, '--hot-cache', 'off', '--db-delay-ms', '0',
      ...(peerTransport === 'rpc' ? ['--rpc'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] }));
  await Promise.all(nodes.map((n) => new Promise<void>((r) => { n.stdout!.on('data', (d) => { if (/is running/.test(String(d))) r(); }); })));
  return { nodes, ports };
}

function run(mode: 'http' | 'ttheader', port: number, conns: number, keys: string[]): { qps: number; avgUs: number; p99Us: number; errors: number } {
  const n = conns === 10 ? REQUESTS : REQUESTS * 5;
  const r = spawnSync(loadgen, ['-p', String(port), '-m', mode, '-c', String(conns), '-n', String(n), '-w', '1', '-k', keys.join(','), '-v', '3'], { encoding: 'utf8' });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT')) ?? '';
  const f = (k: string) => Number(new RegExp(`${k}=([0-9.]+)`).exec(line)?.[1] ?? NaN);
  if (!line) throw new Error(`loadgen failed: ${r.stderr}`);
  return { qps: f('qps'), avgUs: f('avg_us'), p99Us: f('p99_us'), errors: f('errors') };
}

function median<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)];
}

async function measure(name: string, peerTransport: 'http' | 'rpc', clientMode: 'http' | 'ttheader', conns: number, kind: 'linkpoll' | 'go' = 'linkpoll'): Promise<Row> {
  const samples: Row[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    const { nodes, ports } = await cluster(peerTransport, kind);
    try {
      const ring = new HashRing(50);
      ring.add(...ports.map((p) => `http://127.0.0.1:${p}`));
      const owner = (k: string) => Number(ring.get(k).split(':').pop());
      const all = ['Tom', 'Jack', 'Sam'];
      // The front node: the one that owns the fewest keys; it is sent only keys it does not own.
      const front = [...ports].sort((a, b) => all.filter((k) => owner(k) === a).length - all.filter((k) => owner(k) === b).length)[0];
      const keys = all.filter((k) => owner(k) !== front);
      // Warm the owners (their main caches), so the path measured is node -> peer -> cache.
      spawnSync(loadgen, ['-p', String(front), '-m', clientMode, '-c', '1', '-n', '30', '-k', keys.join(',')]);
      const r = run(clientMode, front, conns, keys);
      const rss = nodes.map((n) => peakRssKb(n.pid!));
      samples.push({ name, conns, ...r, frontRssMb: rss[ports.indexOf(front)] / 1024, maxRssMb: Math.max(...rss) / 1024 });
    } finally {
      for (const n of nodes) n.kill('SIGKILL');
      await Promise.all(nodes.map((n) => new Promise((r) => (n.exitCode !== null || n.signalCode !== null ? r(null) : n.once('exit', r)))));
    }
  }
  const m = median(samples, (s) => s.qps);
  return { ...m, errors: samples.reduce((a, s) => a + s.errors, 0) };
}

function svg(rows: Row[]): string {
  return barChart('GeeCache, 3 nodes: a front node fetching from its peers', 'QPS (bar), avg latency (below)', [10, 100].map((c) => ({
    label: `${c} concurrent clients`,
    bars: rows.filter((r) => r.conns === c).map((r) => ({ name: r.name, value: r.qps, note: `${(r.avgUs / 1000).toFixed(2)} ms` })),
  })));
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const go = fs.existsSync(goNode);
  if (!go) console.log('(no Go GeeCache node: npm run bench:peers builds it; its rows are left out)');
  for (const conns of [10, 100]) {
    if (go) {
      rows.push(await measure('Go GeeCache, net/http', 'http', 'http', conns, 'go'));
      rows.push(await measure('Go GeeCache, Kitex', 'rpc', 'ttheader', conns, 'go'));
    }
    rows.push(await measure('HTTP peers, HTTP client', 'http', 'http', conns));
    rows.push(await measure('RPC peers, HTTP client', 'rpc', 'http', conns));
    rows.push(await measure('RPC peers, RPC client', 'rpc', 'ttheader', conns));
  }
  console.log(`| peers / client | conc. | QPS | avg ms | p99 ms | front node peak RSS MB | max node peak RSS MB | errors |`);
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.conns} | ${Math.round(r.qps).toLocaleString('en-US')} | ${(r.avgUs / 1000).toFixed(3)} | ${(r.p99Us / 1000).toFixed(3)} | ${r.frontRssMb.toFixed(1)} | ${r.maxRssMb.toFixed(1)} | ${r.errors} |`);
  }
  for (const c of [10, 100]) {
    const h = rows.find((r) => r.conns === c && r.name.startsWith('HTTP'))!;
    const k = rows.find((r) => r.conns === c && r.name === 'RPC peers, RPC client')!;
    console.log(`\nc=${c}: RPC/HTTP QPS ${(k.qps / h.qps).toFixed(2)}x, avg latency ${(100 * (k.avgUs / h.avgUs - 1)).toFixed(0)} %, front-node RSS ${(100 * (k.frontRssMb / h.frontRssMb - 1)).toFixed(0)} %`);
    const gh = rows.find((r) => r.conns === c && r.name === 'Go GeeCache, net/http');
    const gk = rows.find((r) => r.conns === c && r.name === 'Go GeeCache, Kitex');
    if (gh && gk) {
      console.log(`c=${c}: the seed's migration in Go (Kitex/net/http): QPS ${(gk.qps / gh.qps).toFixed(2)}x, avg latency ${(100 * (gk.avgUs / gh.avgUs - 1)).toFixed(0)} %, front-node RSS ${(100 * (gk.frontRssMb / gh.frontRssMb - 1)).toFixed(0)} %`);
      console.log(`c=${c}: linkpoll RPC / Go Kitex: QPS ${(k.qps / gk.qps).toFixed(2)}x, avg latency ${(100 * (k.avgUs / gk.avgUs - 1)).toFixed(0)} %`);
    }
  }
  if (NODE_ARGS.length > 0) return; // the chart shows the default configuration
  fs.writeFileSync(path.join(root, 'bench', 'geecache-chart.svg'), svg(rows));
  console.log('\nchart: bench/geecache-chart.svg');
}

main().catch((e) => { console.error(e); process.exit(1); });
