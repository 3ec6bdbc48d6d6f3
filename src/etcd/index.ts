// linkpoll/etcd: service discovery over etcd, in the layout of Kitex's registry-etcd
// (github.com/kitex-contrib/registry-etcd), so that Kitex and linkpoll services find each other:
//   key   kitex/registry-etcd/<service>/<host:port>
//   value {"network":"tcp","address":"host:port","weight":10,"tags":{...}}
// held by a lease that is kept alive while the instance lives and revoked when it leaves.
// Its own entry point: the etcd client (npm etcd3, gRPC) is loaded only by those who use it.
import { EventEmitter } from 'node:events';
import type { Etcd3, IKeyValue, IOptions, Lease, Watcher } from 'etcd3';
import { LinkpollError } from '../errors';
import { RateLimitedLog, type Logger } from '../log';
import type { RpcClient, TargetSpec } from '../rpc/client/client';

/** Kitex registry-etcd's key prefix. */
export const KITEX_ETCD_PREFIX = 'kitex/registry-etcd';
/** Kitex's weight for an instance that names none (discovery.DefaultWeight). */
export const DEFAULT_WEIGHT = 10;
/** The tag a linkpoll server registers to say it reads compressed TTHeader calls (see RpcClientOptions.compress). */
export const TRANSFORMS_TAG = 'lp-transforms';

/** Where etcd is. */
export interface EtcdOptions {
  /** etcd's client URLs ("http://127.0.0.1:2379"; "host:port" means http). Default http://127.0.0.1:2379. */
  endpoints?: string | string[];
  /** A client of your own instead (closing this registry or resolver then leaves it open). */
  client?: Etcd3;
  /** The key prefix. Default 'kitex/registry-etcd', as Kitex's registry-etcd. */
  prefix?: string;
  /** Where trouble with etcd is logged (rate-limited). Default console; null for none. */
  logger?: Logger;
}

/** One instance of a service, as registered. */
export interface ServiceInstance {
  /** The service's name (Kitex: the server's ServiceName). */
  service: string;
  /** "host:port" the instance is reached at. */
  address: string;
  /** Its share of calls for weighted balancers. Default 10 (Kitex's default). */
  weight?: number;
  /** Free-form tags (Kitex's Instance.Tags). */
  tags?: Record<string, string>;
}

// etcd3 loaded on first use, with a clear error where it is not installed.
let etcd3Module: typeof import('etcd3') | undefined;
function etcd3(): typeof import('etcd3') {
  if (etcd3Module) return etcd3Module;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    etcd3Module = require('etcd3') as typeof import('etcd3');
  } catch (e) {
    throw new LinkpollError('ERR_LINKPOLL_ETCD_MISSING', `linkpoll/etcd needs the etcd3 package (npm install etcd3): ${(e as Error).message.split('\n')[0]}`);
  }
  return etcd3Module;
}

/** Watch streams reconnect after 100 ms, doubling to 2 s (etcd3's default backs off to 30 s). */
function watchBackoff(ms: number): { duration: number; next(): ReturnType<typeof watchBackoff> } {
  return { duration: ms, next: () => watchBackoff(Math.min(ms * 2, 2000)) };
}

/**
 * An etcd client (npm etcd3) for `endpoints`, with the defaults the registry and resolver use
 * (3 s dial timeout; watches reconnect after 100 ms, backing off to 2 s). Share one between a
 * registry, resolvers and watches of one process with their `client` option.
 */
export function connectEtcd(endpoints?: string | string[]): Etcd3 {
  return openClient({ endpoints }).client;
}

function openClient(o: EtcdOptions): { client: Etcd3; owned: boolean } {
  if (o.client) return { client: o.client, owned: false };
  const list = o.endpoints === undefined ? ['http://127.0.0.1:2379'] : Array.isArray(o.endpoints) ? o.endpoints : o.endpoints.split(',');
  const hosts = list.map((h) => h.trim()).filter(Boolean).map((h) => (/^https?:\/\//.test(h) ? h : `http://${h}`));
  if (hosts.length === 0) throw new LinkpollError('ERR_INVALID_ARG_VALUE', 'etcd endpoints: none given');
  const options: IOptions = { hosts, dialTimeout: 3000, faultHandling: { watchBackoff: watchBackoff(100) } };
  return { client: new (etcd3().Etcd3)(options), owned: true };
}

function keyPrefix(prefix: string | undefined, service: string): string {
  if (typeof service !== 'string' || service === '' || service.includes('/')) {
    throw new LinkpollError('ERR_INVALID_ARG_VALUE', `service name must be a non-empty string without '/', got ${JSON.stringify(service)}`);
  }
  return `${prefix ?? KITEX_ETCD_PREFIX}/${service}/`;
}

/** The events an EtcdRegistry emits. */
export interface EtcdRegistryEvents {
  /** An instance's key is in etcd (first registered, or again after its lease was lost). */
  registered: [key: string];
  /** An instance's lease was lost (etcd unreachable past the TTL, or it expired); it is registered again as soon as etcd answers. */
  lost: [key: string, err: Error];
}

interface Held { inst: ServiceInstance; key: string; value: string; lease: Lease | undefined; retry: NodeJS.Timeout | undefined; gone: boolean }

/**
 * Registers service instances in etcd, each under a lease kept alive every TTL/3 and revoked on
 * deregister (the key is then gone at once; a process that dies leaves it until the TTL runs out).
 * A lease that is lost (etcd down for longer than the TTL) is granted again and the key written
 * again, retrying until etcd answers.
 */
export class EtcdRegistry extends EventEmitter {
  private readonly client: Etcd3;
  private readonly owned: boolean;
  private readonly ttl: number;
  private readonly log: RateLimitedLog;
  private readonly held = new Map<string, Held>();
  private closed = false;

  /** `ttl`: the lease's seconds (default 60, as registry-etcd; at least 2). */
  constructor(private readonly options: EtcdOptions & { ttl?: number } = {}) {
    super();
    this.ttl = options.ttl ?? 60;
    if (!(Number.isInteger(this.ttl) && this.ttl >= 2)) throw new LinkpollError('ERR_OUT_OF_RANGE', `ttl must be a whole number of seconds >= 2, got ${this.ttl}`);
    ({ client: this.client, owned: this.owned } = openClient(options));
    this.log = new RateLimitedLog(options.logger, 2);
  }

  /**
   * Writes the instance's key under a fresh lease; resolves once it is in etcd. When etcd does
   * not answer it rejects (ERR_LINKPOLL_ETCD_UNAVAILABLE) but keeps trying in the background,
   * so the instance is registered once etcd is back (deregister to stop that).
   */
  async register(inst: ServiceInstance): Promise<void> {
    if (this.closed) throw new LinkpollError('ERR_LINKPOLL_CLOSED', 'the registry is closed');
    if (typeof inst?.address !== 'string' || !/^[^/\s]+:\d+$/.test(inst.address)) {
      throw new LinkpollError('ERR_INVALID_ARG_VALUE', `address must be "host:port", got ${JSON.stringify(inst?.address)}`);
    }
    const key = keyPrefix(this.options.prefix, inst.service) + inst.address;
    if (this.held.has(key)) throw new LinkpollError('ERR_INVALID_ARG_VALUE', `${key} is registered already`);
    const value = JSON.stringify({ network: 'tcp', address: inst.address, weight: inst.weight ?? DEFAULT_WEIGHT, tags: inst.tags ?? {} });
    const h: Held = { inst, key, value, lease: undefined, retry: undefined, gone: false };
    this.held.set(key, h);
    try {
      await this.grant(h);
    } catch (e) {
      h.lease = undefined;
      this.again(h, 0);
      throw new LinkpollError('ERR_LINKPOLL_ETCD_UNAVAILABLE', `cannot register ${key} now (${(e as Error).message.split('\n')[0]}); retrying until etcd answers`, { cause: e });
    }
  }

  private async grant(h: Held): Promise<void> {
    const lease = this.client.lease(this.ttl, { autoKeepAlive: true });
    h.lease = lease;
    let written = false;
    // A lease lost after its key was written: register again. (One that fails before is the
    // caller's to retry: one chain of retries per instance.)
    lease.on('lost', (err) => {
      if (!written || h.gone || this.closed || h.lease !== lease) return;
      this.log.warn(`linkpoll etcd: the lease of ${h.key} was lost (${err.message}); registering again`);
      this.emit('lost', h.key, err);
      this.again(h, 0);
    });
    try {
      await lease.put(h.key).value(h.value);
    } catch (e) {
      lease.release();
      throw e;
    }
    written = true;
    if (h.gone) { await lease.revoke().catch(() => {}); return; }
    this.emit('registered', h.key);
  }

  private again(h: Held, attempt: number): void {
    if (h.retry !== undefined || h.gone || this.closed) return; // one retry at a time
    h.retry = setTimeout(() => {
      h.retry = undefined;
      if (h.gone || this.closed) return;
      this.grant(h).catch((e: Error) => {
        this.log.warn(`linkpoll etcd: cannot register ${h.key} yet (${e.message})`);
        this.again(h, attempt + 1);
      });
    }, Math.min(100 * 2 ** attempt, 2000));
    h.retry.unref?.();
  }

  /** Removes the instance: its lease is revoked, and its key with it. */
  async deregister(inst: Pick<ServiceInstance, 'service' | 'address'>): Promise<void> {
    const key = keyPrefix(this.options.prefix, inst.service) + inst.address;
    const h = this.held.get(key);
    if (!h) return;
    this.held.delete(key);
    h.gone = true;
    if (h.retry) clearTimeout(h.retry);
    // The key is deleted first: revoking alone would leave it until etcd's lease checkpoint if
    // the revoke raced a keepalive. Either failing (etcd down) leaves the lease to expire.
    await this.client.delete().key(key).exec().catch(() => {});
    await h.lease?.revoke().catch(() => {});
  }

  /** Deregisters every instance and, if it opened its own client, closes it. */
  async close(): Promise<void> {
    if (this.closed) return;
    const all = [...this.held.values()].map((h) => this.deregister(h.inst));
    await Promise.all(all);
    this.closed = true;
    if (this.owned) this.client.close();
  }
}

/** The events an EtcdPrefixWatch emits. */
export interface EtcdPrefixWatchEvents {
  /** Keys under the prefix changed: all of them now (key -> value). */
  change: [values: ReadonlyMap<string, string>];
  /** The watch lost etcd; the values known are kept until it is back. */
  disconnected: [err: Error];
  /** The watch is back and the keys were listed again. */
  reconnected: [];
}

/**
 * The keys under a prefix and their values, kept current: listed once (a prefix Get), then
 * followed by a Watch that starts right after the list's revision, so no change falls between
 * the two. While etcd is unreachable the values known stay; when the watch reconnects the keys
 * are listed again (what changed meanwhile is in that list even if etcd compacted its history).
 */
export class EtcdPrefixWatch extends EventEmitter {
  private readonly known = new Map<string, { rev: bigint; value: string }>();
  /** Changes at or below this revision are in the list already. */
  private floor = 0n;
  private watcher: Watcher | undefined;
  private started: Promise<void> | undefined;
  private disconnected = false;
  private closed = false;
  private readonly log: RateLimitedLog;

  constructor(private readonly client: Etcd3, readonly prefix: string, logger?: Logger) {
    super();
    this.log = new RateLimitedLog(logger, 2);
  }

  /** Lists the keys and starts watching; resolves once the first list is in (a failed start can be tried again). */
  start(): Promise<void> {
    return (this.started ??= this.list().then(() => this.watch()).catch((e: Error) => {
      this.started = undefined;
      throw new LinkpollError('ERR_LINKPOLL_ETCD_UNAVAILABLE', `cannot list ${this.prefix} (${e.message.split('\n')[0]})`, { cause: e });
    }));
  }

  /** Key -> value, now. */
  values(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of this.known) m.set(k, v.value);
    return m;
  }

  /** Stops watching. */
  async close(): Promise<void> {
    this.closed = true;
    await this.watcher?.cancel().catch(() => {});
  }

  private async list(): Promise<void> {
    const res = await this.client.getAll().prefix(this.prefix).exec();
    const next = new Map<string, { rev: bigint; value: string }>();
    for (const kv of res.kvs) next.set(kv.key.toString(), { rev: BigInt(kv.mod_revision), value: kv.value.toString() });
    const same = next.size === this.known.size && [...next].every(([k, v]) => this.known.get(k)?.value === v.value);
    this.known.clear();
    for (const [k, v] of next) this.known.set(k, v);
    this.floor = BigInt(res.header.revision);
    if (!same) this.emit('change', this.values());
  }

  private async watch(): Promise<void> {
    const w = await this.client.watch().prefix(this.prefix).startRevision(String(this.floor + 1n)).create();
    if (this.closed) { await w.cancel().catch(() => {}); return; }
    this.watcher = w;
    w.on('put', (kv) => this.apply(kv, true));
    w.on('delete', (kv) => this.apply(kv, false));
    w.on('disconnected', (err) => {
      if (this.disconnected || this.closed) return;
      this.disconnected = true;
      this.log.warn(`linkpoll etcd: the watch of ${this.prefix} lost etcd (${err.message}); keeping ${this.known.size} keys`);
      this.emit('disconnected', err);
    });
    w.on('connected', () => {
      if (!this.disconnected || this.closed) return;
      this.list().then(() => { this.disconnected = false; this.emit('reconnected'); },
        (e: Error) => this.log.warn(`linkpoll etcd: listing ${this.prefix} again failed (${e.message}); the watch goes on`));
    });
    w.on('error', (err) => {
      // etcd cancelled the watch (its start revision compacted, say): list and watch anew.
      if (this.closed) return;
      this.log.warn(`linkpoll etcd: the watch of ${this.prefix} failed (${err.message}); listing and watching again`);
      this.watcher = undefined;
      const retry = (): void => {
        if (this.closed) return;
        this.list().then(() => this.watch()).catch(() => { setTimeout(retry, 1000).unref?.(); });
      };
      retry();
    });
  }

  // A delete (a deregister, or a lease that expired) carries only the key and its revision.
  private apply(kv: IKeyValue, put: boolean): void {
    const rev = BigInt(kv.mod_revision);
    if (rev <= this.floor || this.closed) return;
    const key = kv.key.toString();
    if (put) this.known.set(key, { rev, value: kv.value.toString() });
    else if (!this.known.delete(key)) return;
    this.emit('change', this.values());
  }
}

/** An instance as a resolver found it. */
export interface ResolvedInstance {
  /** Its etcd key. */
  key: string;
  /** "host:port". */
  address: string;
  /** Its share of calls (Kitex's default 10 where the value names none). */
  weight: number;
  /** Its tags (string values only). */
  tags: Record<string, string>;
}

/** The events an EtcdResolver emits. */
export interface EtcdResolverEvents {
  /** The instances changed: all of them now, and what came and went. */
  change: [instances: ResolvedInstance[], diff: { added: ResolvedInstance[]; removed: ResolvedInstance[] }];
  /** The watch lost etcd; the instances known are kept until it is back. */
  disconnected: [err: Error];
  /** The watch is back and the instances were listed again. */
  reconnected: [];
}

/**
 * The instances of one service, from etcd (an EtcdPrefixWatch on its keys): puts add or update
 * an instance, deletes (a deregister, or a lease that expired) remove it, and through an etcd
 * outage the instances known stay. `bind(client)` keeps an RpcClient's targets in step.
 */
export class EtcdResolver extends EventEmitter {
  private readonly client: Etcd3;
  private readonly owned: boolean;
  private readonly prefix: string;
  private readonly log: RateLimitedLog;
  private readonly watch: EtcdPrefixWatch;
  private current: ResolvedInstance[] = [];
  private closed = false;
  private readonly bound = new Set<RpcClient>();

  constructor(readonly options: EtcdOptions & { service: string }) {
    super();
    this.prefix = keyPrefix(options.prefix, options.service);
    ({ client: this.client, owned: this.owned } = openClient(options));
    this.log = new RateLimitedLog(options.logger, 2);
    this.watch = new EtcdPrefixWatch(this.client, this.prefix, options.logger);
    this.watch.on('change', (values: ReadonlyMap<string, string>) => this.changed(values));
    this.watch.on('disconnected', (err: Error) => this.emit('disconnected', err));
    this.watch.on('reconnected', () => this.emit('reconnected'));
  }

  /** Lists the instances and starts watching; resolves with the first list. */
  async start(): Promise<ResolvedInstance[]> {
    await this.watch.start();
    return this.instances();
  }

  /** The instances known now. */
  instances(): ResolvedInstance[] { return [...this.current]; }

  /** The instances as RpcClient targets: weights, and readsCompressed where tagged. */
  targets(): TargetSpec[] {
    return this.current.map((i) => ({ address: i.address, weight: i.weight, ...(i.tags[TRANSFORMS_TAG] === 'zlib' ? { readsCompressed: true } : {}) }));
  }

  /** Sets `client`'s targets to the instances now and on every change (starting the resolver). */
  async bind(client: RpcClient): Promise<this> {
    this.bound.add(client);
    await this.start();
    client.setTargets(this.targets());
    return this;
  }

  /** Stops watching; bound clients keep the targets they have. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.bound.clear();
    await this.watch.close();
    if (this.owned) this.client.close();
  }

  private changed(values: ReadonlyMap<string, string>): void {
    const before = this.current;
    const now: ResolvedInstance[] = [];
    for (const [key, value] of values) { const i = this.parse(key, value); if (i) now.push(i); }
    now.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
    this.current = now;
    const was = new Map(before.map((i) => [i.key, i]));
    const is = new Map(now.map((i) => [i.key, i]));
    const added = now.filter((i) => { const b = was.get(i.key); return !b || b.address !== i.address || b.weight !== i.weight || JSON.stringify(b.tags) !== JSON.stringify(i.tags); });
    const removed = before.filter((i) => !is.has(i.key));
    if (added.length === 0 && removed.length === 0) return;
    for (const c of this.bound) c.setTargets(this.targets());
    this.emit('change', this.instances(), { added, removed });
  }

  /** The instance a key holds, or undefined (logged) when its value is not one. */
  private parse(key: string, value: string): ResolvedInstance | undefined {
    let v: { address?: unknown; weight?: unknown; tags?: unknown; network?: unknown };
    try { v = JSON.parse(value) as typeof v; } catch {
      this.log.warn(`linkpoll etcd: ${key} does not hold JSON; ignored`);
      return undefined;
    }
    if (typeof v !== 'object' || v === null) { this.log.warn(`linkpoll etcd: ${key} does not hold an instance; ignored`); return undefined; }
    const address = typeof v.address === 'string' && v.address !== '' ? v.address : key.slice(this.prefix.length);
    if (v.network !== undefined && v.network !== 'tcp') {
      this.log.warn(`linkpoll etcd: ${key} is on network ${String(v.network)}, not tcp; ignored`);
      return undefined;
    }
    const weight = v.weight === undefined ? DEFAULT_WEIGHT : Number(v.weight);
    // Kitex's balancers leave out instances of weight 0 or less; so do we.
    if (!(weight > 0)) { this.log.warn(`linkpoll etcd: ${key} has weight ${String(v.weight)}; left out, as Kitex does`); return undefined; }
    const tags: Record<string, string> = {};
    if (v.tags && typeof v.tags === 'object') for (const [k, x] of Object.entries(v.tags as Record<string, unknown>)) if (typeof x === 'string') tags[k] = x;
    return { key, address, weight, tags };
  }
}

export interface EtcdRegistry {
  /** Adds a listener for one of the registry's events (see EtcdRegistryEvents). */
  on<K extends keyof EtcdRegistryEvents>(event: K, listener: (...args: EtcdRegistryEvents[K]) => void): this;
  /** Adds a listener, as EventEmitter does. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}
export interface EtcdPrefixWatch {
  /** Adds a listener for one of the watch's events (see EtcdPrefixWatchEvents). */
  on<K extends keyof EtcdPrefixWatchEvents>(event: K, listener: (...args: EtcdPrefixWatchEvents[K]) => void): this;
  /** Adds a listener, as EventEmitter does. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}
export interface EtcdResolver {
  /** Adds a listener for one of the resolver's events (see EtcdResolverEvents). */
  on<K extends keyof EtcdResolverEvents>(event: K, listener: (...args: EtcdResolverEvents[K]) => void): this;
  /** Adds a listener, as EventEmitter does. */
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}
