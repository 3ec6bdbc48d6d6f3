// GeeCache node, as the "7 days" demo: group "scores" over a slow database, peers on a hash
// ring, an optional front-end API server. Peers talk HTTP (GeeCache's HTTPPool) or, with --rpc,
// linkpoll RPC (the seed's -kitex); the node answers both on its one port.
//
//   node dist/examples/geecache/main.js --port 8001 [--rpc] [--api] [--api-port 9999]
//        [--peers localhost:8001,localhost:8002,localhost:8003] [--hot-cache off]
//        [--db-delay-ms 5] [--read-timeout-ms 10000] [--verbose]
import type * as Http from 'node:http';
import { Registry } from './geecache';
import { nodeHttp, PeerPool } from './peers';
import { CacheNodeServer } from './node-server';
import { die, flag, num, opt, usage } from '../cli';


const DB: Record<string, string> = { Tom: '630', Jack: '589', Sam: '567' };


export function createGroup(registry: Registry, opts: { delayMs: number; hotCache: boolean; verbose: boolean }) {
  return registry.newGroup('scores', 2 << 10, async (key) => {
    console.log(`[SlowDB] search key ${key}`);
    if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
    if (key in DB) return DB[key];
    // Numbered keys (key0, key1, ...) exist too, as in the Go node of test/interop/kitex: enough
    // keys that every node of a cluster owns some.
    if (/^key[0-9]+$/.test(key)) return `v:${key}`;
    throw new Error(`${key} not exist`);
  }, { hotCache: opts.hotCache, log: opts.verbose ? (m) => console.log(m) : () => {} });
}

function startApiServer(port: number, host: string, registry: Registry): Http.Server {
  const server = nodeHttp().createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api') { res.writeHead(404).end('not found\n'); return; }
    try {
      const v = await registry.getGroup('scores')!.get(url.searchParams.get('key') ?? '');
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(v.byteSlice());
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${(e as Error).message}\n`);
    }
  });
  server.keepAliveTimeout = 60000;
  server.listen(port, host, () => console.log(`frontend server is running at http://${host === '127.0.0.1' ? 'localhost' : host}:${port}`));
  return server;
}

async function main(): Promise<void> {
  usage('node dist/examples/geecache/main.js --port 8001 [--rpc] [--api] [--api-port 9999]\n' +
    '    [--peers localhost:8001,localhost:8002,localhost:8003] [--hot-cache off] [--db-delay-ms 5]\n' +
    '    [--read-timeout-ms 10000] [--verbose]\n' +
    '  A GeeCache node: group \'scores\' over a slow database; peers over HTTP, or linkpoll RPC with --rpc.');
  const port = num('port', 8001, 1);
  const host = opt('host', '127.0.0.1');
  const transport = flag('rpc') ? 'rpc' : 'http';
  const peers = opt('peers', 'localhost:8001,localhost:8002,localhost:8003').split(',').map((s) => s.trim()).filter(Boolean);
  const self = peers.find((p) => p.endsWith(`:${port}`)) ?? `localhost:${port}`;
  if (!peers.includes(self)) peers.push(self);
  const registry = new Registry();
  const group = createGroup(registry, { delayMs: num('db-delay-ms', 5), hotCache: opt('hot-cache', 'on') !== 'off', verbose: flag('verbose') });
  const pool = new PeerPool(self, peers, { transport });
  group.registerPeers(pool);
  const node = new CacheNodeServer(registry, (m) => console.warn(m), { readTimeout: num('read-timeout-ms', 10000, 1) });
  await node.listen(port, host);
  console.log(`geecache is running at http://${self} (peers over ${transport}: ${peers.join(', ')})`);
  let api: Http.Server | undefined;
  if (flag('api')) api = startApiServer(num('api-port', 9999, 1), host, registry);
  const stop = async () => {
    api?.close();
    pool.close();
    await node.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main().catch(die);
