// GeeCache node, as the "7 days" demo: group "scores" over a slow database, peers on a hash
// ring, an optional front-end API server. Peers talk HTTP (GeeCache's HTTPPool) or, with --rpc,
// linkpoll RPC (the seed's -kitex); the node answers both on its one port.
//
//   node dist/examples/geecache/main.js --port 8001 [--rpc] [--api] [--api-port 9999]
//        [--peers localhost:8001,localhost:8002,localhost:8003] [--hot-cache off]
//        [--db-delay-ms 5] [--read-timeout-ms 10000] [--compress off|auto|zlib]
//        [--value-bytes N] [--verbose]
import type * as Http from 'node:http';
import { Registry } from './geecache';
import { nodeHttp, PeerPool, type CompressMode } from './peers';
import { acceptsGzip } from './http-head';
import { rpc } from '../../src';
import { CacheNodeServer, gzipBody } from './node-server';
import { die, flag, num, opt, usage } from '../cli';


const DB: Record<string, string> = { Tom: '630', Jack: '589', Sam: '567' };


/**
 * A value of `n` bytes for a numbered key: JSON records, as a cache of profiles holds (text that
 * compresses about 3:1), the same for the same key.
 */
export function recordValue(key: string, n: number): string {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `{"key":"${key}","seq":${i},"name":"user-${key}-${i % 7}","region":"cn-north-${i % 3}","score":${(i * 7919) % 1000},"tags":["mobile","premium"]}\n`;
  return s.slice(0, n);
}

export function createGroup(registry: Registry, opts: { delayMs: number; hotCache: boolean; verbose: boolean; valueBytes?: number }) {
  return registry.newGroup('scores', 2 << 10, async (key) => {
    console.log(`[SlowDB] search key ${key}`);
    if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
    if (key in DB) return DB[key];
    // Numbered keys (key0, key1, ...) exist too, as in the Go node of test/interop/kitex: enough
    // keys that every node of a cluster owns some.
    if (/^key[0-9]+$/.test(key)) return opts.valueBytes ? recordValue(key, opts.valueBytes) : `v:${key}`;
    throw new Error(`${key} not exist`);
  }, { hotCache: opts.hotCache, log: opts.verbose ? (m) => console.log(m) : () => {} });
}

function startApiServer(port: number, host: string, registry: Registry, compress: CompressMode): Http.Server {
  const gzip = compress === 'off' ? undefined : new rpc.CompressionPolicy(compress, { pack: gzipBody });
  const server = nodeHttp().createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api') { res.writeHead(404).end('not found\n'); return; }
    try {
      const v = await registry.getGroup('scores')!.get(url.searchParams.get('key') ?? '');
      const body = v.byteSlice();
      const packed = gzip && acceptsGzip(req.headers['accept-encoding'] ?? '') && gzip.wants('api', body.length) ? gzip.compress('api', body) : undefined;
      const headers: Http.OutgoingHttpHeaders = { 'Content-Type': 'application/octet-stream' };
      if (gzip) headers.Vary = 'Accept-Encoding';
      if (packed) headers['Content-Encoding'] = 'gzip';
      res.writeHead(200, headers).end(packed ?? body);
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
    '    [--read-timeout-ms 10000] [--compress off|auto|zlib] [--value-bytes N] [--verbose]\n' +
    '  A GeeCache node: group \'scores\' over a slow database; peers over HTTP, or linkpoll RPC with --rpc.');
  const port = num('port', 8001, 1);
  const host = opt('host', '127.0.0.1');
  const transport = flag('rpc') ? 'rpc' : 'http';
  const peers = opt('peers', 'localhost:8001,localhost:8002,localhost:8003').split(',').map((s) => s.trim()).filter(Boolean);
  const self = peers.find((p) => p.endsWith(`:${port}`)) ?? `localhost:${port}`;
  if (!peers.includes(self)) peers.push(self);
  const registry = new Registry();
  const compress = opt('compress', 'off') as CompressMode;
  if (compress !== 'off' && compress !== 'auto' && compress !== 'zlib') die(`--compress must be off, auto or zlib, got '${compress}'`);
  const group = createGroup(registry, { delayMs: num('db-delay-ms', 5), hotCache: opt('hot-cache', 'on') !== 'off', verbose: flag('verbose'), valueBytes: num('value-bytes', 0) });
  const pool = new PeerPool(self, peers, { transport, compress });
  group.registerPeers(pool);
  const node = new CacheNodeServer(registry, (m) => console.warn(m), { readTimeout: num('read-timeout-ms', 10000, 1), compress });
  await node.listen(port, host);
  console.log(`geecache is running at http://${self} (peers over ${transport}${compress === 'off' ? '' : `, compress ${compress}`}: ${peers.join(', ')})`);
  let api: Http.Server | undefined;
  if (flag('api')) api = startApiServer(num('api-port', 9999, 1), host, registry, compress);
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
