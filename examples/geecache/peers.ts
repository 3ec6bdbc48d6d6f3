// How a node reaches its peers: over HTTP (GeeCache's HTTPPool protocol, keep-alive) or over
// linkpoll RPC (GroupCache.Get on TTHeader). The picker maps keys to owners on a hash ring of
// the peers' names ("http://host:port", as the Go original names them) and skips itself.
import type * as Http from 'node:http';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rpc } from '../../src';
import { HashRing } from './consistenthash';
import type { PeerGetter, PeerPicker } from './geecache';
import * as zlib from 'node:zlib';

export const BASE_PATH = '/_geecache/';

/** Compression of what a node sends: 'off', 'auto' (where it pays) or 'zlib' (always). */
export type CompressMode = 'off' | 'auto' | 'zlib';

let idlCache: rpc.Idl | undefined;
/** The GroupCache service (geecache.thrift, next to this example). */
export function groupCacheService(): rpc.ServiceSpec {
  idlCache ??= rpc.parseIdl(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'examples', 'geecache', 'geecache.thrift'), 'utf8'));
  return idlCache.services.GroupCache;
}

/** GeeCache's escaping, readable by the Go original too: '+' decodes as a space. */
export function escapeSegment(s: string): string { return encodeURIComponent(s); }
export function unescapeSegment(s: string): string { return decodeURIComponent(s.replace(/\+/g, ' ')); }

/** An error the owner's loader returned (the key is missing, say), as opposed to a transport failure. */
// node:http is loaded only by nodes that use it (HTTP peers, the API server): a node that talks
// RPC to its peers does not pay its ~2.4 MB of RSS (measured: an idle node 39.5 -> 41.9 MB).
/** node:http, loaded on first use. */
export function nodeHttp(): typeof Http {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require('node:http') as typeof Http;
}

export class PeerLoadError extends Error {
  constructor(message: string, readonly status?: number) { super(message); this.name = 'PeerLoadError'; }
}

/** Largest value a peer's gzipped answer may inflate to. */
const MAX_VALUE = 64 * 1024 * 1024;

export class HttpGetter implements PeerGetter {
  /** `gzip`: ask for gzipped answers (Accept-Encoding), which nodes with --compress give. */
  constructor(private readonly baseURL: string, private readonly agent: Http.Agent, private readonly timeout = 2000, private readonly gzip = false) {}
  get(group: string, key: string): Promise<Buffer> {
    const url = `${this.baseURL}${BASE_PATH}${escapeSegment(group)}/${escapeSegment(key)}`;
    return new Promise((resolve, reject) => {
      const headers = this.gzip ? { 'Accept-Encoding': 'gzip' } : undefined;
      const req = nodeHttp().get(url, { agent: this.agent, timeout: this.timeout, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          if (res.headers['content-encoding'] === 'gzip') {
            try { body = zlib.gunzipSync(body, { maxOutputLength: MAX_VALUE }); } catch (e) { reject(new Error(`peer ${this.baseURL} sent a bad gzip body: ${(e as Error).message}`)); return; }
          }
          if (res.statusCode === 200) resolve(body);
          else reject(new PeerLoadError(`server returned: ${res.statusCode} ${body.toString().trim()}`, res.statusCode));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`peer ${this.baseURL} timed out`)));
      req.on('error', reject);
    });
  }
}

export class RpcGetter implements PeerGetter {
  constructor(private readonly client: rpc.RpcClient, private readonly target: string) {}
  async get(group: string, key: string): Promise<Buffer> {
    try {
      const r = (await this.client.call('Get', { req: { group, key } }, { target: this.target })) as { value?: Buffer };
      return r.value ?? Buffer.alloc(0);
    } catch (e) {
      if (e instanceof rpc.TApplicationException) throw new PeerLoadError(e.message);
      throw e;
    }
  }
}

export interface PoolOptions {
  /** 'http' (GeeCache's HTTPPool) or 'rpc' (linkpoll RPC, the seed's Kitex). */
  transport: 'http' | 'rpc';
  replicas?: number;
  timeout?: number;
  /** Compress peer traffic: RPC calls and replies (zlib transform), or gzipped HTTP answers. Default 'off'. */
  compress?: CompressMode;
}

/** Peers of one node: picks owners, and reaches them. */
export class PeerPool implements PeerPicker {
  private readonly ring: HashRing;
  private readonly getters = new Map<string, PeerGetter>();
  private readonly agent: Http.Agent | undefined;
  private readonly client: rpc.RpcClient | undefined;

  constructor(readonly self: string, peers: string[], opts: PoolOptions) {
    this.ring = new HashRing(opts.replicas ?? 50);
    const names = peers.map((p) => `http://${p}`);
    this.ring.add(...names);
    if (opts.transport === 'http') {
      this.agent = new (nodeHttp().Agent)({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 });
    } else {
      const compress = opts.compress ?? 'off';
      this.client = new rpc.RpcClient({ service: groupCacheService(), timeout: opts.timeout ?? 2000, connectTimeout: 1000, fromService: 'geecache', compress: compress === 'off' ? false : compress });
    }
    for (const p of peers) {
      const name = `http://${p}`;
      this.getters.set(name, this.client ? new RpcGetter(this.client, p) : new HttpGetter(name, this.agent!, opts.timeout, (opts.compress ?? 'off') !== 'off'));
    }
  }

  pickPeer(key: string): PeerGetter | null {
    const owner = this.ring.get(key);
    if (owner && owner !== `http://${this.self}`) return this.getters.get(owner) ?? null;
    return null;
  }

  /** The peer name that owns `key` ("host:port"). */
  ownerOf(key: string): string { return this.ring.get(key).replace(/^http:\/\//, ''); }

  close(): void {
    this.agent?.destroy();
    this.client?.close();
  }
}
