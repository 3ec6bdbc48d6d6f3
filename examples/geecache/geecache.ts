// Groups: a named cache over a loader ("getter"), filled from the owner peer when one is
// configured, else locally; concurrent loads of a key run once. No global state: a Registry
// holds groups, so two caches can live in one process.
import { ByteView } from './byteview';
import { LRU } from './lru';
import { SingleFlight } from './singleflight';

export type Getter = (key: string) => Promise<Uint8Array | string> | Uint8Array | string;

/** Fetches a value from the peer that owns it. */
export interface PeerGetter { get(group: string, key: string): Promise<Buffer> }
/** Chooses the owner of a key; null when it is this node. */
export interface PeerPicker { pickPeer(key: string): PeerGetter | null }

export interface GroupStats {
  gets: number; hits: number; peerLoads: number; peerErrors: number; loads: number;
  loadsDeduped: number; localLoads: number; localLoadErrs: number; serverRequests: number;
  mainCache: { items: number; bytes: number; evictions: number }; hotCache: { items: number; bytes: number; evictions: number };
}

export interface GroupOptions {
  /** Keep values fetched from peers in a small "hot" cache (1/8 of cacheBytes). Default true. */
  hotCache?: boolean;
  log?: (msg: string) => void;
}

class Cache {
  lru: LRU<ByteView>;
  evictions = 0;
  constructor(bytes: number) { this.lru = new LRU<ByteView>(bytes, () => { this.evictions++; }); }
}

export class Group {
  private readonly main: Cache;
  private readonly hot: Cache | null;
  private peers: PeerPicker | null = null;
  private readonly flight = new SingleFlight<ByteView>();
  private readonly log: (msg: string) => void;
  private readonly counters = { gets: 0, hits: 0, peerLoads: 0, peerErrors: 0, loads: 0, localLoads: 0, localLoadErrs: 0, serverRequests: 0 };

  constructor(readonly name: string, cacheBytes: number, private readonly getter: Getter, opts: GroupOptions = {}) {
    if (typeof getter !== 'function') throw new TypeError('nil Getter');
    this.main = new Cache(cacheBytes);
    this.hot = opts.hotCache === false ? null : new Cache(cacheBytes ? Math.max(1, Math.floor(cacheBytes / 8)) : 0);
    this.log = opts.log ?? ((m) => console.log(m));
  }

  registerPeers(peers: PeerPicker): void {
    if (this.peers) throw new Error('RegisterPeerPicker called more than once');
    this.peers = peers;
  }

  /** Counts a request that came from another node (see the servers). */
  noteServerRequest(): void { this.counters.serverRequests++; }

  async get(key: string): Promise<ByteView> {
    if (typeof key !== 'string' || key === '') throw new Error('key is required');
    this.counters.gets++;
    const v = this.main.lru.get(key) ?? this.hot?.lru.get(key);
    if (v !== undefined) {
      this.counters.hits++;
      this.log('[GeeCache] hit');
      return v;
    }
    return this.load(key);
  }

  private load(key: string): Promise<ByteView> {
    this.counters.loads++;
    return this.flight.do(key, async () => {
      if (this.peers) {
        const peer = this.peers.pickPeer(key);
        if (peer) {
          try {
            const b = await peer.get(this.name, key);
            this.counters.peerLoads++;
            const v = ByteView.adopt(b);
            this.hot?.lru.add(key, v);
            return v;
          } catch (e) {
            this.counters.peerErrors++;
            this.log(`[GeeCache] Failed to get from peer ${(e as Error).message}`);
          }
        }
      }
      return this.getLocally(key);
    });
  }

  private async getLocally(key: string): Promise<ByteView> {
    this.counters.localLoads++;
    let data: Uint8Array | string;
    try {
      data = await this.getter(key);
    } catch (e) {
      this.counters.localLoadErrs++;
      throw e;
    }
    const v = new ByteView(data);
    this.main.lru.add(key, v);
    return v;
  }

  stats(): GroupStats {
    return {
      ...this.counters,
      loadsDeduped: this.flight.deduped,
      mainCache: { items: this.main.lru.size, bytes: this.main.lru.usedBytes, evictions: this.main.evictions },
      hotCache: { items: this.hot?.lru.size ?? 0, bytes: this.hot?.lru.usedBytes ?? 0, evictions: this.hot?.evictions ?? 0 },
    };
  }
}

/** The groups of one cache node. */
export class Registry {
  private readonly groups = new Map<string, Group>();
  newGroup(name: string, cacheBytes: number, getter: Getter, opts?: GroupOptions): Group {
    const g = new Group(name, cacheBytes, getter, opts);
    this.groups.set(name, g);
    return g;
  }
  getGroup(name: string): Group | undefined { return this.groups.get(name); }
  all(): Group[] { return [...this.groups.values()]; }
}

/** A process-wide registry, for code written against GeeCache's package-level functions. */
export const defaultRegistry = new Registry();
export const newGroup = (name: string, cacheBytes: number, getter: Getter, opts?: GroupOptions) => defaultRegistry.newGroup(name, cacheBytes, getter, opts);
export const getGroup = (name: string) => defaultRegistry.getGroup(name);
