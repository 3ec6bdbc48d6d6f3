// Load balancing over a client's targets. A policy sees the eligible targets (those whose circuit
// is open, or that a retry already tried, are left out) and picks one.
import { invalidArg } from '../../options';

/** A target as a policy sees it. */
export interface Instance {
  readonly address: string;
  /** Relative share of calls (default 1). */
  readonly weight: number;
  /** Calls in flight to it now. */
  readonly inFlight: number;
}

/** Picks a target for each call: the built-in policies, or your own. */
export interface LoadBalancer {
  /** Picks from a non-empty list; `key` is the call's hash key (CallOptions.key), if any. */
  pick(instances: readonly Instance[], key: string | undefined): Instance;
}

/** Each target in turn. */
export class RoundRobin implements LoadBalancer {
  private i = 0;
  pick(list: readonly Instance[]): Instance {
    this.i = (this.i + 1) % list.length;
    return list[this.i]!;
  }
}

/** Smooth weighted round-robin (nginx): spreads each target's share evenly over the sequence. */
export class WeightedRoundRobin implements LoadBalancer {
  private readonly current = new Map<string, number>();
  pick(list: readonly Instance[]): Instance {
    let total = 0;
    let best: Instance | undefined;
    let bestW = -Infinity;
    for (const it of list) {
      const w = (this.current.get(it.address) ?? 0) + it.weight;
      this.current.set(it.address, w);
      total += it.weight;
      if (w > bestW) { bestW = w; best = it; }
    }
    this.current.set(best!.address, bestW - total);
    if (this.current.size > list.length * 4) this.current.clear(); // targets changed a lot
    return best!;
  }
}

/** Random, in proportion to weight. */
export class WeightedRandom implements LoadBalancer {
  pick(list: readonly Instance[]): Instance {
    let total = 0;
    for (const it of list) total += it.weight;
    let r = Math.random() * total;
    for (const it of list) if ((r -= it.weight) < 0) return it;
    return list[list.length - 1]!;
  }
}

/** Power of two choices: of two random targets, the one with fewer calls in flight per weight. */
export class LeastInFlight implements LoadBalancer {
  pick(list: readonly Instance[]): Instance {
    if (list.length === 1) return list[0]!;
    const a = list[Math.floor(Math.random() * list.length)]!;
    let b = list[Math.floor(Math.random() * (list.length - 1))]!;
    if (b === a) b = list[list.length - 1]!;
    return a.inFlight / a.weight <= b.inFlight / b.weight ? a : b;
  }
}

/**
 * Consistent hashing on the call's key (CallOptions.key): the same key goes to the same target
 * while it is eligible, and only the keys of a target that leaves move. Calls without a key are
 * spread at random.
 */
export class ConsistentHash implements LoadBalancer {
  private ring: { h: Uint32Array; inst: Instance[] } | undefined;
  private ringOf: string | undefined;
  private readonly fallback = new WeightedRandom();
  constructor(private readonly replicas = 100) {}

  pick(list: readonly Instance[], key: string | undefined): Instance {
    if (key === undefined) return this.fallback.pick(list);
    const ring = this.ringFor(list);
    const h = fnv1a(key);
    let lo = 0, hi = ring.h.length;
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (ring.h[mid]! < h) lo = mid + 1; else hi = mid; }
    return ring.inst[lo === ring.h.length ? 0 : lo]!;
  }

  private ringFor(list: readonly Instance[]): { h: Uint32Array; inst: Instance[] } {
    const sig = list.map((i) => `${i.address}*${i.weight}`).join(',');
    if (this.ring && this.ringOf === sig) return this.ring;
    const points: [number, Instance][] = [];
    for (const it of list) {
      const n = Math.max(1, Math.round(this.replicas * it.weight));
      for (let r = 0; r < n; r++) points.push([fnv1a(`${it.address}#${r}`), it]);
    }
    points.sort((x, y) => x[0] - y[0]);
    this.ring = { h: Uint32Array.from(points, (p) => p[0]), inst: points.map((p) => p[1]) };
    this.ringOf = sig;
    return this.ring;
  }
}

/** The built-in load balancing policies by name. */
export type BalancerName = 'round-robin' | 'weighted-round-robin' | 'random' | 'least-inflight' | 'consistent-hash';

export function createBalancer(b: BalancerName | LoadBalancer | undefined): LoadBalancer {
  if (b === undefined || b === 'round-robin') return new RoundRobin();
  if (typeof b === 'object' && typeof b.pick === 'function') return b;
  switch (b) {
    case 'weighted-round-robin': return new WeightedRoundRobin();
    case 'random': return new WeightedRandom();
    case 'least-inflight': return new LeastInFlight();
    case 'consistent-hash': return new ConsistentHash();
  }
  throw invalidArg(`unknown load balancer ${String(b)}`);
}

/** FNV-1a, 32 bits, over the string's UTF-16 code units. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  // Mix the low bits in: FNV alone clusters short keys that differ in the last character.
  h ^= h >>> 15; h = Math.imul(h, 0x2c1b3c6d); h ^= h >>> 12;
  return h >>> 0;
}
