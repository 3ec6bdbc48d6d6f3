// linkpoll RPC against gRPC for Node (@grpc/grpc-js), both ends in Node: each framework's own
// client driving its own server, GroupCache.Get with a 64-byte value, server pinned to CPU 0 and
// client to CPU 1, the same connections and calls in flight for both.
//   node dist/bench/grpc.js [--seconds 4]
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { drive } from './drive';

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
  const qps = await drive(conns * depth, (i) => get(clients[i % conns], KEYS[i % 3]!), seconds);
  clients.forEach((c) => c.close());
  return qps;
}

function cpuSeconds(pid: number): number {
  const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks
}

async function main(): Promise<void> {
  const child = process.argv.indexOf('--child');
  if (child > 0) {
    // The gRPC ends run as children of this script (ours are rpc-get.js and rpc-client.js).
    const [role, port, conns, depth] = process.argv.slice(child + 1);
    if (role === 'server') await grpcServer(Number(port));
    else console.log(JSON.stringify({ qps: await grpcClient(Number(port), Number(conns), Number(depth)) }));
    return;
  }
  const rows: string[] = ['| c | in flight per connection | gRPC (grpc-js) calls/s | linkpoll calls/s | linkpoll / gRPC | server CPU s per 100k calls, gRPC / linkpoll |', '|---|---|---|---|---|---|'];
  for (const [conns, depth] of [[10, 1], [100, 16]] as const) {
    const res: Record<string, { qps: number; cpu: number }> = {};
    for (const kind of ['grpc', 'linkpoll']) {
      const port = 7900 + (process.pid % 80) + (kind === 'grpc' ? 0 : 100);
      const serverArgs = kind === 'grpc'
        ? [__filename, '--child', 'server', String(port)]
        : [path.join(root, 'dist/bench/servers/rpc-get.js'), '--port', String(port)];
      const srv = spawn('taskset', ['-c', '0', process.execPath, ...serverArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise((r) => srv.stdout!.once('data', r));
      const c0 = cpuSeconds(srv.pid!);
      // Our client is bench/rpc-client.js's (the same one measured against the C load generator).
      const clientArgs = kind === 'grpc'
        ? [__filename, '--seconds', String(seconds), '--child', 'client', String(port), String(conns), String(depth)]
        : [path.join(__dirname, 'rpc-client.js'), '--seconds', String(seconds), '--child', String(port), String(conns), String(depth)];
      const out = spawnSync('taskset', ['-c', '1', process.execPath, ...clientArgs], { encoding: 'utf8' });
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
