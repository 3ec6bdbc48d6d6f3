// Our RPC client driving our RPC server, against the project's C load generator (bench/loadgen) driving the
// same server, at the same concurrency (server on CPU 0, client on CPU 1).
//   node dist/bench/rpc-client.js [--seconds 5]
import { loadgenPath } from './loadgen';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rpc } from '../src';
import { drive } from './drive';

const root = path.join(__dirname, '..', '..');
const loadgen = loadgenPath();
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 5);

async function run(port: number, conns: number, depth: number): Promise<number> {
  const gee = rpc.parseIdl(fs.readFileSync(path.join(root, 'examples/geecache/geecache.thrift'), 'utf8'));
  // writesPerTick 4: the setting for linkpoll servers (README), which run a connection's requests concurrently.
  const c = new rpc.RpcClient({ service: gee.services.GroupCache, targets: [`127.0.0.1:${port}`], connectionsPerTarget: conns, timeout: 5000, writesPerTick: 4 });
  const keys = ['Tom', 'Jack', 'Sam'];
  const qps = await drive(conns * depth, (i) => c.call('Get', { req: { group: 'scores', key: keys[i % 3] } }), seconds);
  c.close();
  return qps;
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    const [port, conns, depth] = process.argv.slice(process.argv.indexOf('--child') + 1).map(Number);
    console.log(JSON.stringify({ qps: await run(port, conns, depth) }));
    return;
  }
  const port = 7600 + (process.pid % 300);
  const srv = spawn('taskset', ['-c', '0', process.execPath, path.join(root, 'dist/bench/servers/rpc-get.js'), '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => srv.stdout!.once('data', r));
  try {
    for (const [conns, depth] of [[10, 1], [100, 1], [100, 16]]) {
      const lg = spawnSync('taskset', ['-c', '1', loadgen, '-p', String(port), '-m', 'ttheader', '-c', String(conns), '-P', String(depth), '-d', String(seconds), '-w', '1'], { encoding: 'utf8' });
      const lgQps = Number(/qps=([0-9.]+)/.exec(lg.stdout)?.[1]);
      const ours = spawnSync('taskset', ['-c', '1', process.execPath, __filename, '--seconds', String(seconds), '--child', String(port), String(conns), String(depth)], { encoding: 'utf8' });
      const ourQps = JSON.parse(ours.stdout.trim().split('\n').pop()!).qps as number;
      console.log(`c=${conns} P=${depth}: C loadgen ${Math.round(lgQps)} req/s, linkpoll RpcClient ${Math.round(ourQps)} req/s, C / ours ${(lgQps / ourQps).toFixed(2)}x (aim <= 1.5x)`);
    }
  } finally {
    srv.kill();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
