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
import { isLevel, makeLog, type Log } from './log';


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

export function createGroup(registry: Registry, opts: { delayMs: number; hotCache: boolean; log: Log; valueBytes?: number }) {
  return registry.newGroup('scores', 2 << 10, async (key) => {
    opts.log.info(`[SlowDB] search key ${key}`);
    if (opts.delayMs > 0) await new Promise((r) => setTimeout(r, opts.delayMs));
    if (key in DB) return DB[key];
    // Numbered keys (key0, key1, ...) exist too, as in the Go node of test/interop/kitex: enough
    // keys that every node of a cluster owns some.
    if (/^key[0-9]+$/.test(key)) return opts.valueBytes ? recordValue(key, opts.valueBytes) : `v:${key}`;
    throw new Error(`${key} not exist`);
  }, { hotCache: opts.hotCache, log: (m) => opts.log.debug(m) });
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
  usage('node dist/examples/geecache/main.js --port 8001 [--host 127.0.0.1] [--rpc] [--api] [--api-port 9999]\n' +
    '    [--peers localhost:8001,localhost:8002,localhost:8003 | --etcd URL[,URL] [--etcd-ttl 10] [--advertise host:port] [--service geecache]]\n' +
    '    [--rpc-share 0-100] [--hot-cache off] [--db-delay-ms 5] [--read-timeout-ms 10000] [--compress off|auto|zlib]\n' +
    '    [--value-bytes N] [--log-level error|warn|info|debug] [--verbose]\n' +
    '  A GeeCache node: group \'scores\' over a slow database; peers over HTTP, or linkpoll RPC with --rpc\n' +
    '  (--rpc-share: the share of peer fetches over RPC). Members: a fixed --peers list, or etcd (--etcd):\n' +
    '  the node registers itself, watches the others, and follows the traffic switch key there.');
  const port = num('port', 8001, 1);
  const host = opt('host', '127.0.0.1');
  const level = flag('verbose') ? 'debug' : opt('log-level', 'info');
  if (!isLevel(level)) die(`--log-level must be error, warn, info or debug, got '${level}'`);
  const log = makeLog(level);
  const transport = flag('rpc') ? 'rpc' : 'http';
  const etcdUrls = opt('etcd', '');
  const staticPeers = opt('peers', etcdUrls ? '' : 'localhost:8001,localhost:8002,localhost:8003').split(',').map((x) => x.trim()).filter(Boolean);
  const self = opt('advertise', '') || (staticPeers.find((p) => p.endsWith(`:${port}`)) ?? `${etcdUrls && host !== '0.0.0.0' ? host : 'localhost'}:${port}`);
  if (!/^[^/\s]+:\d+$/.test(self)) die(`--advertise must be host:port, got '${self}'`);
  const registry = new Registry();
  const compress = opt('compress', 'off') as CompressMode;
  if (compress !== 'off' && compress !== 'auto' && compress !== 'zlib') die(`--compress must be off, auto or zlib, got '${compress}'`);
  const rpcShare = num('rpc-share', transport === 'rpc' ? 100 : 0);
  if (rpcShare > 100) die(`--rpc-share must be 0-100, got ${rpcShare}`);
  const group = createGroup(registry, { delayMs: num('db-delay-ms', 5), hotCache: opt('hot-cache', 'on') !== 'off', log, valueBytes: num('value-bytes', 0) });
  const pool = new PeerPool(self, staticPeers, { transport, rpcShare, compress });
  group.registerPeers(pool);
  const node = new CacheNodeServer(registry, (m) => log.warn(m), { readTimeout: num('read-timeout-ms', 10000, 1), compress });
  node.peers = pool;
  await node.listen(port, host);
  const membership = etcdUrls ? await joinEtcd(etcdUrls, pool, log) : undefined;
  log.info(`geecache is running at http://${self} (peers over ${pool.rpcShare === 100 ? 'rpc' : pool.rpcShare === 0 ? 'http' : `rpc ${pool.rpcShare}% / http`}` +
    `${compress === 'off' ? '' : `, compress ${compress}`}: ${membership ? `etcd ${etcdUrls}, ring ${pool.peers().join(', ')}` : pool.peers().join(', ')})`);
  let api: Http.Server | undefined;
  if (flag('api')) api = startApiServer(num('api-port', 9999, 1), host, registry, compress);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // Leave first: the others drop this node from their rings (a watch event, milliseconds)
    // while it still answers what they send meanwhile; then drain and close.
    if (membership) {
      // With etcd unreachable the key is left to its lease: the leave does not hold up the stop.
      await Promise.race([membership.leave(), new Promise((r) => setTimeout(r, 2000))]);
      await new Promise((r) => setTimeout(r, 300));
    }
    api?.close();
    await node.close();
    pool.close();
    await membership?.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/**
 * Membership over etcd: registers this node (Kitex registry-etcd's layout, service --service),
 * rebuilds the ring on every change of the members, and follows the traffic switch key
 * (linkpoll/geecache/<service>/rpc-share, 0-100) so a whole cluster moves to RPC, or back,
 * without a restart.
 */
async function joinEtcd(urls: string, pool: PeerPool, log: Log): Promise<{ leave(): Promise<void>; close(): Promise<void> }> {
  const { connectEtcd, EtcdRegistry, EtcdResolver, EtcdPrefixWatch, TRANSFORMS_TAG } = await import('../../src/etcd');
  const service = opt('service', 'geecache');
  const client = connectEtcd(urls);
  const logger = { warn: (m: string) => log.warn(m) };
  const registry = new EtcdRegistry({ client, ttl: num('etcd-ttl', 10, 2), logger });
  const resolver = new EtcdResolver({ client, service, logger });
  resolver.on('change', (all, diff) => {
    if (pool.setPeers(all.map((i) => i.address))) {
      log.info(`[membership] ring: ${pool.peers().join(', ')}${diff.added.length ? ` (+${diff.added.map((i) => i.address).join(', +')})` : ''}${diff.removed.length ? ` (-${diff.removed.map((i) => i.address).join(', -')})` : ''}`);
    }
  });
  resolver.on('disconnected', (e) => log.warn(`[membership] etcd unreachable (${e.message}); keeping the ring ${pool.peers().join(', ')}`));
  resolver.on('reconnected', () => log.info('[membership] etcd reachable again'));
  registry.on('lost', (key) => log.warn(`[membership] lost the registration ${key}; registering again`));
  const switchKey = `linkpoll/geecache/${service}/rpc-share`;
  const traffic = new EtcdPrefixWatch(client, switchKey, logger);
  traffic.on('change', (values) => {
    const v = values.get(switchKey);
    if (v === undefined) return;
    const n = /^\d{1,3}$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!(n >= 0 && n <= 100)) { log.warn(`[traffic] ${switchKey} = '${v}' is not 0-100; ignored`); return; }
    if (n !== pool.rpcShare) { pool.setRpcShare(n); log.info(`[traffic] ${n}% of peer fetches over RPC`); }
  });
  // etcd away at start: the node serves alone (its ring is itself) and joins once etcd answers
  // (the registry retries by itself; the watches are started again here).
  await registry.register({ service, address: pool.self, tags: { [TRANSFORMS_TAG]: 'zlib' } }).catch((e: Error) => log.warn(`[membership] ${e.message}`));
  let closing = false;
  const startWatching = async (): Promise<void> => {
    if (closing) return;
    try {
      await resolver.start();
      await traffic.start();
    } catch (e) {
      log.warn(`[membership] ${(e as Error).message}; trying again in 1 s`);
      await new Promise((r) => setTimeout(r, 1000));
      return startWatching();
    }
  };
  await Promise.race([startWatching(), new Promise((r) => setTimeout(r, 3000))]);
  return {
    leave: () => registry.close(),
    close: async () => { closing = true; await resolver.close(); await traffic.close(); client.close(); },
  };
}

if (require.main === module) main().catch(die);
