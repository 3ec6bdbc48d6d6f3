// GET /metrics: a node's figures in the Prometheus text format (version 0.0.4), as the seed's
// monitoring section asks: requests and their latency, errors by kind, connections, peer fetches
// by transport and outcome, each group's caches, membership changes, process memory. Written by
// hand (a dozen families) rather than with prom-client: the example needs no dependency for it,
// and the RPC server's own figures (linkpoll_rpc_server_*) come from RpcServer.prometheus().

/** Upper bounds (seconds) of the request latency histogram. */
const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

class Histogram {
  readonly counts = new Array<number>(BUCKETS.length + 1).fill(0);
  sum = 0;
  n = 0;
  observe(seconds: number): void {
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.n++;
  }
}

export type RequestTransport = 'http' | 'rpc';
/** What went wrong with a request: the group or path unknown, a malformed request, the key's loader failed, or anything else. */
export type ErrorKind = 'not_found' | 'bad_request' | 'load' | 'internal';

/** The figures a node keeps as it serves. */
export class NodeMetrics {
  private readonly latency: Record<RequestTransport, Histogram> = { http: new Histogram(), rpc: new Histogram() };
  private readonly errors = new Map<string, number>();

  /** One request served over `transport` in `seconds`, failed with `error` if it did. */
  observe(transport: RequestTransport, seconds: number, error?: ErrorKind): void {
    this.latency[transport].observe(seconds);
    if (error) {
      const k = `${transport}\0${error}`;
      this.errors.set(k, (this.errors.get(k) ?? 0) + 1);
    }
  }

  /** The text exposition, from these figures and the node's current state. */
  render(state: NodeState): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family('geecache_requests_total', 'counter', 'Requests this node served, by transport (peer fetches and clients alike).');
    for (const t of ['http', 'rpc'] as const) out.push(`geecache_requests_total{transport="${t}"} ${this.latency[t].n}`);
    family('geecache_request_duration_seconds', 'histogram', 'Time to answer a request, by transport.');
    for (const t of ['http', 'rpc'] as const) {
      const h = this.latency[t];
      let acc = 0;
      for (let i = 0; i < BUCKETS.length; i++) { acc += h.counts[i]!; out.push(`geecache_request_duration_seconds_bucket{transport="${t}",le="${BUCKETS[i]}"} ${acc}`); }
      out.push(`geecache_request_duration_seconds_bucket{transport="${t}",le="+Inf"} ${h.n}`);
      out.push(`geecache_request_duration_seconds_sum{transport="${t}"} ${h.sum}`);
      out.push(`geecache_request_duration_seconds_count{transport="${t}"} ${h.n}`);
    }
    family('geecache_request_errors_total', 'counter', 'Requests answered with an error, by transport and kind.');
    for (const t of ['http', 'rpc'] as const) {
      for (const kind of ['not_found', 'bad_request', 'load', 'internal'] as const) out.push(`geecache_request_errors_total{transport="${t}",kind="${kind}"} ${this.errors.get(`${t}\0${kind}`) ?? 0}`);
    }
    family('geecache_open_connections', 'gauge', 'Connections open on this node\'s reactor (served and dialled).');
    out.push(`geecache_open_connections ${state.connections}`);
    family('geecache_peer_fetches_total', 'counter', 'Fetches from the peer owning a key, by transport and outcome (an error falls back to a local load).');
    for (const t of ['http', 'rpc'] as const) for (const o of ['ok', 'error'] as const) out.push(`geecache_peer_fetches_total{transport="${t}",outcome="${o}"} ${state.fetches[t][o]}`);
    family('geecache_rpc_share_percent', 'gauge', 'The traffic switch: the share of peer fetches sent over RPC.');
    out.push(`geecache_rpc_share_percent ${state.rpcShare}`);
    family('geecache_peers', 'gauge', 'Members of this node\'s hash ring, itself included.');
    out.push(`geecache_peers ${state.peers}`);
    family('geecache_membership_changes_total', 'counter', 'Times the ring was rebuilt for a member that came or went.');
    out.push(`geecache_membership_changes_total ${state.membershipChanges}`);
    family('geecache_cache_bytes', 'gauge', 'Bytes held, per group and cache (main: keys this node owns; hot: copies of peers\' keys).');
    for (const g of state.groups) for (const c of ['main', 'hot'] as const) out.push(`geecache_cache_bytes{group="${esc(g.name)}",cache="${c}"} ${g[c].bytes}`);
    family('geecache_cache_items', 'gauge', 'Entries held, per group and cache.');
    for (const g of state.groups) for (const c of ['main', 'hot'] as const) out.push(`geecache_cache_items{group="${esc(g.name)}",cache="${c}"} ${g[c].items}`);
    family('geecache_cache_evictions_total', 'counter', 'Entries evicted for room, per group and cache.');
    for (const g of state.groups) for (const c of ['main', 'hot'] as const) out.push(`geecache_cache_evictions_total{group="${esc(g.name)}",cache="${c}"} ${g[c].evictions}`);
    family('geecache_cache_gets_total', 'counter', 'Gets per group, and how many the caches answered.');
    for (const g of state.groups) out.push(`geecache_cache_gets_total{group="${esc(g.name)}",result="hit"} ${g.hits}`, `geecache_cache_gets_total{group="${esc(g.name)}",result="miss"} ${g.gets - g.hits}`);
    const mem = process.memoryUsage();
    family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
    out.push(`process_resident_memory_bytes ${mem.rss}`);
    family('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap in use, bytes.');
    out.push(`nodejs_heap_size_used_bytes ${mem.heapUsed}`);
    family('nodejs_external_memory_bytes', 'gauge', 'Memory outside the V8 heap held by JavaScript objects (Buffers, the native addon\'s blocks), bytes.');
    out.push(`nodejs_external_memory_bytes ${mem.external}`);
    return `${out.join('\n')}\n${state.extra}`;
  }
}

/** What render() reads from the node. */
export interface NodeState {
  connections: number;
  fetches: { http: { ok: number; error: number }; rpc: { ok: number; error: number } };
  rpcShare: number;
  peers: number;
  membershipChanges: number;
  groups: { name: string; gets: number; hits: number; main: CacheFigures; hot: CacheFigures }[];
  /** More exposition appended (the RPC server's). */
  extra: string;
}
export interface CacheFigures { items: number; bytes: number; evictions: number }

/** A label value as the format escapes it. */
function esc(v: string): string { return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n'); }
