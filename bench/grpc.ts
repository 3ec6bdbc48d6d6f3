// linkpoll RPC against gRPC for Node (@grpc/grpc-js), both ends in Node: each framework's own
// client driving its own server, GroupCache.Get with a 64-byte value, server pinned to CPU 0 and
// client to CPU 1, the same connections and calls in flight for both.
//   node dist/bench/grpc.js [--seconds 4]
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const PROTO = path.join(root, 'bench', 'geecache.proto');
const arg = (n: string, d: string) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? process.argv[i + 1]! : d; };
const seconds = Number(arg('seconds', '4'));
const VALUE = (() => { const b = Buffer.alloc(64, '.'); b.write('630'); return b; })();
const KEYS = ['Tom', 'Jack', 'Sam'];

/* eslint-disable @typescript-eslint/no-var-requires */
function grpcService(): { grpc: typeof import('@grpc/grpc-js'); GroupCache: any } {
  const grpc = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
  const loader = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
  const def = grpc.loadPackageDefinition(loader.loadSync(PROTO, { keepCase: true })) as any;
  return { grpc, GroupCache: def.geecache.GroupCache };
}

async function grpcServer(port: number): Promise<void> {
  const { grpc, GroupCache } = grpcService();
  const server = new grpc.Server();
  server.addService(GroupCache.service, {
    Get: (call: any, cb: (e: Error | null, r?: { value: Buffer }) => void) => {
      if (call.request.group !== 'scores' || !KEYS.includes(call.request.key)) cb(new Error(`${call.request.key} not exist`));
      else cb(null, { value: VALUE });
    },
  });
  await new Promise<void>((res, rej) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
  console.log('ready');
}

async function grpcClient(port: number, conns: number, depth: number): Promise<number> {
  const { grpc, GroupCache } = grpcService();
  // One channel per connection (a local subchannel pool each), `depth` calls in flight on each.
  const clients = Array.from({ length: conns }, () => new GroupCache(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
  const get = (c: any, key: string) => new Promise<void>((res, rej) => c.Get({ group: 'scores', key }, (e: Error | null) => (e ? rej(e) : res())));
  return drive(conns * depth, (i) => get(clients[i % conns], KEYS[i % 3]!), () => clients.forEach((c) => c.close()));
}

async function linkpollClient(port: number, conns: number, depth: number): Promise<number> {
  const fs = require('node:fs') as typeof import('node:fs');
  const { rpc } = require('../src') as typeof import('../src');
  const gee = rpc.parseIdl(fs.readFileSync(path.join(root, 'examples/geecache/geecache.thrift'), 'utf8'));
  const c = new rpc.RpcClient({ service: gee.services.GroupCache!, targets: [`127.0.0.1:${port}`], connectionsPerTarget: conns, timeout: 5000 });
  return drive(conns * depth, (i) => c.call('Get', { req: { group: 'scores', key: KEYS[i % 3] } }).then(() => undefined), () => c.close());
}

/** `workers` loops each awaiting one call at a time; calls per second after a 1 s warm-up. */
async function drive(workers: number, call: (i: number) => Promise<void>, close: () => void): Promise<number> {
  let done = 0;
  let stop = false;
  const loop = async (i: number) => { while (!stop) { await call(i); done++; } };
  const all = Array.from({ length: workers }, (_, i) => loop(i));
  await new Promise((r) => setTimeout(r, 1000));
  const d0 = done;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const qps = ((done - d0) * 1e9) / Number(process.hrtime.bigint() - t0);
  stop = true;
  await Promise.allSettled(all);
  close();
  return qps;
}

function cpuSeconds(pid: number): number {
  const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks
}

async function main(): Promise<void> {
  const child = process.argv.indexOf('--child');
  if (child > 0) {
    const [role, kind, port, conns, depth] = process.argv.slice(child + 1);
    if (role === 'server') {
      if (kind === 'grpc') await grpcServer(Number(port));
      return;
    }
    const qps = await (kind === 'grpc' ? grpcClient : linkpollClient)(Number(port), Number(conns), Number(depth));
    console.log(JSON.stringify({ qps }));
    return;
  }
  const rows: string[] = ['| c | in flight per connection | gRPC (grpc-js) calls/s | linkpoll calls/s | linkpoll / gRPC | server CPU s per 100k calls, gRPC / linkpoll |', '|---|---|---|---|---|---|'];
  for (const [conns, depth] of [[10, 1], [100, 16]] as const) {
    const res: Record<string, { qps: number; cpu: number }> = {};
    for (const kind of ['grpc', 'linkpoll']) {
      const port = 7900 + (process.pid % 80) + (kind === 'grpc' ? 0 : 100);
      const serverArgs = kind === 'grpc'
        ? [__filename, '--child', 'server', 'grpc', String(port)]
        : [path.join(root, 'dist/bench/servers/rpc-get.js'), '--port', String(port)];
      const srv = spawn('taskset', ['-c', '0', process.execPath, ...serverArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((r) => srv.stdout!.once('data', r));
      const c0 = cpuSeconds(srv.pid!);
      const out = spawnSync('taskset', ['-c', '1', process.execPath, __filename, '--seconds', String(seconds), '--child', 'client', kind, String(port), String(conns), String(depth)], { encoding: 'utf8' });
      const cpu = cpuSeconds(srv.pid!) - c0;
      srv.kill();
      const qps = JSON.parse(out.stdout.trim().split('\n').pop()!).qps as number;
      res[kind] = { qps, cpu: (cpu / (qps * (seconds + 1))) * 1e5 };
    }
    const g = res.grpc!, l = res.linkpoll!;
    rows.push(`| ${conns} | ${depth} | ${Math.round(g.qps).toLocaleString('en')} | ${Math.round(l.qps).toLocaleString('en')} | **${(l.qps / g.qps).toFixed(1)}x** | ${g.cpu.toFixed(2)} / ${l.cpu.toFixed(2)} |`);
  }
  console.log(rows.join('\n'));
}

main().catch((e) => { console.error(e); process.exit(1); });
