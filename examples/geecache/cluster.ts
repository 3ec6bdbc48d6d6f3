// Starts a 3-node GeeCache cluster (one node also runs the API server), shows a few queries and
// their answers, and stops everything. With --etcd the members come and go: etcd is started
// (Debian's etcd-server), three nodes join through it, a fourth joins, one leaves gracefully and
// one is killed; the rings and answers are shown at each step.
//   npm run example:cluster [-- --rpc] [--etcd] [--base-port 8001] [--api-port 9999]
import { spawn, type ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { queryHttp, queryRpc } from './client';
import { die, num, opt, usage } from '../cli';


function api(port: number, key: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(`http://localhost:${port}/api?key=${encodeURIComponent(key)}`, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(`${res.statusCode} ${body.trim()}`));
    }).on('error', reject);
  });
}

async function main(): Promise<void> {
  usage('npm run example:cluster [-- --rpc] [--etcd] [--base-port 8001] [--api-port 9999]\n' +
    '  Starts a 3-node GeeCache cluster, shows a few queries and their answers, and stops it.\n' +
    '  --etcd: membership through etcd (started here); nodes join, leave and are killed.');
  if (process.argv.includes('--etcd')) return etcdDemo(num('base-port', 8001, 1));
  const base = num('base-port', 8001, 1);
  const apiPort = num('api-port', 9999, 1);
  const useRpc = process.argv.includes('--rpc');
  const ports = [base, base + 1, base + 2];
  const peers = ports.map((p) => `localhost:${p}`).join(',');
  const main = path.join(__dirname, 'main.js');
  const nodes: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  for (const [i, p] of ports.entries()) {
    const args = [main, '--port', String(p), '--peers', peers, ...(useRpc ? ['--rpc'] : []), ...(i === 2 ? ['--api', '--api-port', String(apiPort)] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    nodes.push(child);
    ready.push(new Promise((resolve) => {
      let seen = 0;
      child.stdout!.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n').filter(Boolean)) {
          console.log(`[node ${p}] ${line}`);
          if (/is running at/.test(line) && ++seen === (i === 2 ? 2 : 1)) resolve();
        }
      });
    }));
  }
  try {
    await Promise.all(ready);
    console.log(`\n--- cluster up: peers talk ${useRpc ? 'RPC (TTHeader)' : 'HTTP'} ---`);
    for (const key of ['Tom', 'Jack', 'Sam', 'Tom', 'kkk']) console.log(`GET /api?key=${key} -> ${await api(apiPort, key)}`);
    console.log(`HTTP  localhost:${base} scores/Sam -> ${(await queryHttp(`localhost:${base}`, 'scores', 'Sam')).toString()}`);
    console.log(`RPC   localhost:${base + 1} scores/Jack -> ${(await queryRpc(`localhost:${base + 1}`, 'scores', 'Jack')).toString()}`);
    await queryHttp(`localhost:${base}`, 'nope', 'Tom').catch((e) => console.log(`HTTP  localhost:${base} nope/Tom -> ${e.message}`));
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    for (const n of nodes) n.kill('SIGTERM');
    await Promise.all(nodes.map((n) => new Promise((r) => (n.exitCode !== null ? r(null) : n.once('exit', r)))));
    console.log('--- cluster stopped ---');
  }
}

/** A node of the etcd demo: its output prefixed, and a promise of its "running" line. */
function startNode(port: number, etcdUrl: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, [path.join(__dirname, 'main.js'), '--port', String(port), '--etcd', etcdUrl, '--etcd-ttl', '3', '--rpc'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const ready = new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('is running at')) resolve();
      // Which node loads a key from the database shows the ring at work.
      for (const l of d.toString().split('\n')) if (l.startsWith('[SlowDB]')) console.log(`  [node ${port}] ${l}`);
    });
    child.stderr!.on('data', (d: Buffer) => { for (const l of d.toString().split('\n').filter(Boolean)) console.log(`  [node ${port}] ${l}`); });
    child.once('exit', (code) => reject(new Error(`node ${port} exited with ${code}`)));
  });
  return { child, ready };
}

async function etcdDemo(base: number): Promise<void> {
  const { etcdMissing, startEtcd } = await import('../etcd-server');
  const why = etcdMissing();
  if (why) die(why);
  const etcd = await startEtcd();
  console.log(`etcd at ${etcd.url} (data in ${etcd.dataDir})`);
  const nodes = new Map<number, ChildProcess>();
  const rings = async (title: string) => {
    console.log(`\n--- ${title} ---`);
    await new Promise((r) => setTimeout(r, 300)); // the watches deliver in milliseconds; a margin for the print
    for (const port of nodes.keys()) {
      const s = await new Promise<string>((resolve, reject) => http.get(`http://127.0.0.1:${port}/_stats`, (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => resolve(b)); }).on('error', reject));
      console.log(`node ${port} ring: ${(JSON.parse(s) as { peers: string[] }).peers.map((p) => p.replace(/^127\.0\.0\.1:/, '')).join(' ')}`);
    }
  };
  const ask = async (via: number) => {
    const out: string[] = [];
    for (const key of ['Tom', 'Jack', 'Sam', 'key7', 'key42']) out.push(`${key}=${(await queryHttp(`127.0.0.1:${via}`, 'scores', key)).toString()}`);
    console.log(`via ${via}: ${out.join(' ')}`);
  };
  try {
    for (const port of [base, base + 1, base + 2]) {
      const n = startNode(port, etcd.url);
      nodes.set(port, n.child);
      await n.ready;
    }
    await rings('three nodes joined through etcd');
    await ask(base);
    const fourth = startNode(base + 3, etcd.url);
    nodes.set(base + 3, fourth.child);
    await fourth.ready;
    await rings(`node ${base + 3} joined`);
    await ask(base + 3);
    const leaving = nodes.get(base + 1)!;
    nodes.delete(base + 1);
    await new Promise((r) => { leaving.once('exit', r); leaving.kill('SIGTERM'); });
    await rings(`node ${base + 1} left (SIGTERM: deregistered, drained, exited)`);
    await ask(base);
    const killed = nodes.get(base + 2)!;
    nodes.delete(base + 2);
    killed.kill('SIGKILL');
    console.log(`\n--- node ${base + 2} killed (SIGKILL): still in the rings until its 3 s lease expires ---`);
    await ask(base); // its keys are loaded locally meanwhile
    await new Promise((r) => setTimeout(r, 4000));
    await rings(`node ${base + 2}'s lease expired`);
    await ask(base + 3);
  } finally {
    for (const n of nodes.values()) n.kill('SIGTERM');
    await Promise.all([...nodes.values()].map((n) => new Promise((r) => (n.exitCode !== null ? r(null) : n.once('exit', r)))));
    await etcd.stop();
    console.log('\n--- cluster and etcd stopped ---');
  }
}

main().catch(die);
