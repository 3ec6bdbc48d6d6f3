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
  /** How peers are reached at first: 'http' (GeeCache's HTTPPool) or 'rpc' (linkpoll RPC, the seed's Kitex). */
  transport: 'http' | 'rpc';
  /** The share of peer fetches sent over RPC, 0-100 (the traffic switch); default 100 for 'rpc', 0 for 'http'. */
  rpcShare?: number;
  replicas?: number;
  timeout?: number;
  /** Compress peer traffic: RPC calls and replies (zlib transform), or gzipped HTTP answers. Default 'off'. */
  compress?: CompressMode;
}

/** Peer fetches by transport and outcome (for /metrics). */
export interface FetchCounts { http: { ok: number; error: number }; rpc: { ok: number; error: number } }

/**
 * Peers of one node: picks owners on a hash ring of their names, and reaches them over HTTP or
 * RPC, each fetch by the traffic switch (the share sent over RPC). The members can change
 * (setPeers): the ring is rebuilt, and connections to peers that left close once their fetches
 * are answered.
 */
export class PeerPool implements PeerPicker {
  private ring: HashRing;
  private members: string[] = [];
  private getters = new Map<string, PeerGetter>();
  private agent: Http.Agent | undefined;
  private client: rpc.RpcClient | undefined;
  private share: number;
  private credit = 0;
  private readonly replicas: number;
  readonly fetches: FetchCounts = { http: { ok: 0, error: 0 }, rpc: { ok: 0, error: 0 } };
  /** Times the membership changed (setPeers with a different set). */
  membershipChanges = 0;

  constructor(readonly self: string, peers: string[], private readonly opts: PoolOptions) {
    this.replicas = opts.replicas ?? 50;
    this.ring = new HashRing(this.replicas);
    this.share = opts.rpcShare ?? (opts.transport === 'rpc' ? 100 : 0);
    this.setRpcShare(this.share);
    this.setPeers(peers);
    this.membershipChanges = 0;
  }

  /** The members now ("host:port", this node included), sorted. */
  peers(): string[] { return [...this.members]; }

  /** Replaces the members (this node is always one); false when nothing changed. */
  setPeers(peers: string[]): boolean {
    const next = [...new Set([...peers, this.self])].sort();
    if (next.length === this.members.length && next.every((p, i) => p === this.members[i])) return false;
    const ring = new HashRing(this.replicas);
    ring.add(...next.map((p) => `http://${p}`));
    const getters = new Map<string, PeerGetter>();
    for (const p of next) if (p !== this.self) getters.set(p, this.getters.get(p) ?? { get: (group, key) => this.fetch(p, group, key) });
    this.ring = ring;
    this.getters = getters;
    const before = this.members;
    this.members = next;
    this.client?.setTargets(next.filter((p) => p !== this.self)); // connections to peers that left retire
    // Idle keep-alive sockets to peers that left are closed too (busy ones finish their fetch).
    if (this.agent) {
      for (const gone of before.filter((p) => !next.includes(p))) {
        for (const [name, socks] of Object.entries(this.agent.freeSockets)) if (name.startsWith(`${gone}:`)) for (const sock of socks ?? []) sock.destroy();
      }
    }
    this.membershipChanges++;
    return true;
  }

  /** The share of peer fetches sent over RPC (0-100). */
  get rpcShare(): number { return this.share; }
  /** Sets the traffic switch: `share` % of peer fetches go over RPC, the rest over HTTP. */
  setRpcShare(share: number): void {
    if (!(Number.isInteger(share) && share >= 0 && share <= 100)) throw new RangeError(`the RPC share must be a whole number 0-100, got ${share}`);
    this.share = share;
  }

  pickPeer(key: string): PeerGetter | null {
    const owner = this.ring.get(key).replace(/^http:\/\//, '');
    if (owner === this.self) return null;
    return this.getters.get(owner) ?? null;
  }

  /** The peer name that owns `key` ("host:port"). */
  ownerOf(key: string): string { return this.ring.get(key).replace(/^http:\/\//, ''); }

  private async fetch(peer: string, group: string, key: string): Promise<Buffer> {
    // Spread evenly: of every 100 fetches, `share` go over RPC.
    this.credit += this.share;
    const overRpc = this.credit >= 100;
    if (overRpc) this.credit -= 100;
    const counts = overRpc ? this.fetches.rpc : this.fetches.http;
    try {
      const v = overRpc ? await new RpcGetter(this.rpcClient(), peer).get(group, key) : await new HttpGetter(`http://${peer}`, this.httpAgent(), this.opts.timeout, (this.opts.compress ?? 'off') !== 'off').get(group, key);
      counts.ok++;
      return v;
    } catch (e) {
      counts.error++;
      throw e;
    }
  }

  private httpAgent(): Http.Agent {
    return (this.agent ??= new (nodeHttp().Agent)({ keepAlive: true, maxSockets: 64, maxFreeSockets: 64 }));
  }

  private rpcClient(): rpc.RpcClient {
    if (!this.client) {
      const compress = this.opts.compress ?? 'off';
      this.client = new rpc.RpcClient({ service: groupCacheService(), timeout: this.opts.timeout ?? 2000, connectTimeout: 1000, fromService: 'geecache', compress: compress === 'off' ? false : compress });
      this.client.setTargets(this.members.filter((p) => p !== this.self));
    }
    return this.client;
  }

  /** The RPC client's own figures (linkpoll_rpc_client_*: peer fetches over RPC by method, latency), once it exists. */
  prometheus(): string { return this.client?.prometheus() ?? ''; }

  close(): void {
    this.agent?.destroy();
    this.client?.close();
  }
}
