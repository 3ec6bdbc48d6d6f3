// Our RPC client driving our RPC server, against the bench rig's C load generator driving the
// same server, at the same concurrency (server on CPU 0, client on CPU 1).
//   node dist/bench/rpc-client.js [--seconds 5]
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rpc } from '../src';

const root = path.join(__dirname, '..', '..');
const loadgen = path.join(process.env.RIG_DIR ?? '/tmp/linkpoll-rig', 'loadgen', 'loadgen');
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 5);

async function drive(port: number, conns: number, depth: number): Promise<number> {
  const gee = rpc.parseIdl(fs.readFileSync(path.join(root, 'examples/geecache/geecache.thrift'), 'utf8'));
  const c = new rpc.RpcClient({ service: gee.services.GroupCache, targets: [`127.0.0.1:${port}`], connectionsPerTarget: conns, timeout: 5000 });
  const keys = ['Tom', 'Jack', 'Sam'];
  let done = 0;
  let stop = false;
  const worker = async (i: number) => {
    while (!stop) {
      await c.call('Get', { req: { group: 'scores', key: keys[i % 3] } });
      done++;
    }
  };
  const warm = Date.now() + 1000;
  const workers = Array.from({ length: conns * depth }, (_, i) => worker(i));
  while (Date.now() < warm) await new Promise((r) => setTimeout(r, 50));
  const d0 = done;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const qps = ((done - d0) * 1e9) / Number(process.hrtime.bigint() - t0);
  stop = true;
  await Promise.allSettled(workers);
  c.close();
  return qps;
}

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    const [port, conns, depth] = process.argv.slice(process.argv.indexOf('--child') + 1).map(Number);
    console.log(JSON.stringify({ qps: await drive(port, conns, depth) }));
    return;
  }
  const port = 7600 + (process.pid % 300);
  const srv = spawn('taskset', ['-c', '0', process.execPath, path.join(root, 'dist/bench/servers/rpc-get.js'), '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => srv.stdout!.once('data', r));
  try {
    for (const [conns, depth] of [[10, 1], [100, 16]]) {
      const lg = spawnSync('taskset', ['-c', '1', loadgen, '-p', String(port), '-m', 'ttheader', '-c', String(conns), '-P', String(depth), '-d', String(seconds), '-w', '1'], { encoding: 'utf8' });
      const lgQps = Number(/qps=([0-9.]+)/.exec(lg.stdout)?.[1]);
      const ours = spawnSync('taskset', ['-c', '1', process.execPath, __filename, '--seconds', String(seconds), '--child', String(port), String(conns), String(depth)], { encoding: 'utf8' });
      const ourQps = JSON.parse(ours.stdout.trim().split('\n').pop()!).qps as number;
      console.log(`c=${conns} P=${depth}: C loadgen ${Math.round(lgQps)} req/s, linkpoll RpcClient ${Math.round(ourQps)} req/s, ratio ${(lgQps / ourQps).toFixed(2)}x`);
    }
  } finally {
    srv.kill();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
