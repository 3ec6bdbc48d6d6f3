// Header transforms: the payload (the Thrift message) compressed, the transform ids in the header.
// zlib (id 1) is read and written, in Apache THeader (as Apache's Python and C++ transports do) and
// in TTHeader between linkpoll peers. A payload is inflated only up to the frame size limit, so a
// small frame cannot make a large one (a zip bomb is refused, with what it would have grown past).
//
// zlib only, at level 1: measured (bench/compress-codec.ts, RESULTS "Compression codecs") level 1
// takes 26 µs for 4 KiB of text (ratio 0.33) and 1.9 ms for 256 KiB (0.29) where level 6 takes
// 34 µs and 9.5 ms for 0.31 and 0.23; snappy and lz4 (npm, native) are 1.5-2x faster on large
// payloads but compress worse (0.40-0.50) and Apache peers rarely read them: not worth a native
// dependency. Any level inflates the same.
import type { Buffer } from 'node:buffer';
import { protocolError, type TypeSpec } from './thrift';

// Loaded on the first compressed frame: a server that never sees one does not pay for it.
let zlibModule: typeof import('node:zlib') | undefined;
// eslint-disable-next-line @typescript-eslint/no-var-requires
const zlib = (): typeof import('node:zlib') => (zlibModule ??= require('node:zlib') as typeof import('node:zlib'));

/** THeaderTransformID.ZLIB. */
export const TRANSFORM_ZLIB = 0x01;

/**
 * A string header a linkpoll client puts on the first call of each TTHeader or THeader
 * connection when it compresses: it reads compressed replies. Unknown to Kitex and Apache
 * servers, which ignore it.
 */
export const ACCEPT_TRANSFORMS = 'lp-accept-transforms';
/** The linkpoll server's answer on the reply to that call: it reads compressed requests. */
export const TRANSFORMS_ACK = 'lp-transforms';

/** How payloads are compressed: 'zlib' always, 'auto' where it pays (see CompressionPolicy), false never. */
export type Compression = 'zlib' | 'auto' | false;

export function isCompression(v: unknown): v is Compression {
  return v === 'zlib' || v === 'auto' || v === false;
}

/**
 * The payload [start, end) of `f` inflated `times` times (zlib), each at most `maxSize` bytes.
 * Throws ERR_LINKPOLL_PROTOCOL naming the cause (over the limit, or not a zlib stream).
 */
export function inflatePayload(f: Buffer, start: number, end: number, times: number, maxSize: number): Buffer {
  let data = f.subarray(start, end);
  for (let k = 0; k < times; k++) {
    try {
      data = zlib().inflateSync(data, { maxOutputLength: maxSize });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ERR_BUFFER_TOO_LARGE') {
        throw protocolError(`zlib payload of ${end - start} bytes inflates past the frame size limit (${maxSize} bytes): refused`);
      }
      throw protocolError(`zlib payload is not a valid zlib stream (${err.message})`);
    }
  }
  return data;
}

/** `message` compressed with zlib (level 1, see above). */
export function deflatePayload(message: Buffer): Buffer {
  return zlib().deflateSync(message, { level: 1 });
}

/**
 * About how many bytes `v`, of type `t`, encodes to: its strings and binaries summed, containers
 * counted by their first element, `depth` levels deep. Cheap (no encoding); a lower bound for
 * the usual shapes, which is what deciding against compressing a small message needs.
 */
export function estimateSize(t: TypeSpec, v: unknown, depth = 4): number {
  if (v === undefined || v === null) return 0;
  if (typeof t === 'string') {
    if (t === 'string' || t === 'binary') return (v as { length?: number }).length ?? 0;
    return 8;
  }
  if (depth === 0) return 16;
  if ('fields' in t) {
    let n = 1;
    const o = v as Record<string, unknown>;
    for (const f of t.fields) { const x = o[f.name]; if (x !== undefined && x !== null) n += 3 + estimateSize(f.type, x, depth - 1); }
    return n;
  }
  if ('map' in t) {
    const m = v as Map<unknown, unknown>;
    if (!(m instanceof Map) || m.size === 0) return 5;
    const [k, x] = m.entries().next().value as [unknown, unknown];
    return 5 + m.size * (estimateSize(t.map[0], k, depth - 1) + estimateSize(t.map[1], x, depth - 1));
  }
  const el = 'list' in t ? t.list : t.set;
  const n = Array.isArray(v) ? v.length : (v as Set<unknown>).size ?? 0;
  if (n === 0) return 5;
  const first = Array.isArray(v) ? v[0] : (v as Set<unknown>).values().next().value;
  return 5 + n * estimateSize(el, first, depth - 1);
}

/** Below this many bytes 'auto' sends a message as it is (1 KiB: ratio 0.44 for 18 µs on text). */
export const DEFAULT_COMPRESS_THRESHOLD = 1024;
/** A message that saves less than this share is sent as it is. */
const PAYS = 0.9;
/** After a message that did not compress, this many of the same method go plain before another try. */
const RESAMPLE_AFTER = 64;
/** Messages larger than this are tried on a prefix first: random data costs 5 ms per 256 KiB to find out. */
const PROBE_ABOVE = 16 * 1024;
const PROBE_BYTES = 4096;

/**
 * 'auto' compresses on paths slower than this (bytes/s): 500 Mbit/s. zlib level 1 packs text at
 * about 150 MB/s to a third and it inflates at about 300 MB/s (bench/compress-codec.ts), so
 * sending two thirds fewer bytes saves more time than both cost on a path under about 540 Mbit/s.
 */
export const DEFAULT_COMPRESS_LINK_RATE = 62.5e6;

/** What CompressionPolicy is built from. */
export interface CompressionPolicyOptions {
  /** Bytes below which 'auto' leaves a message plain. Default 1024. */
  threshold?: number;
  /**
   * 'auto' compresses only on connections whose path carries data slower than this, in bytes/s,
   * as TCP measures it (Connection.tcpInfo(); samples limited by the application do not count).
   * A connection counts as fast until measured. Default 62.5e6 (500 Mbit/s); Infinity: any path.
   */
  linkRate?: number;
  /** The compressor. Default zlib level 1 (gzip for HTTP bodies, say). */
  pack?: (b: Buffer) => Buffer;
}

/**
 * How fast one connection's path is, from TCP's own measurements, looked at most every 200 ms:
 * slow once a delivery-rate sample the application did not limit is under the rate; fast again
 * once the bytes acknowledged since the last look came at the rate or faster. (One sample alone
 * does not make it fast: behind a shaper, bursts are delivered at the speed of the wire.)
 */
export class LinkGauge {
  private slow = false;
  private next = 0;
  private lastAt = 0;
  private lastAcked = 0;
  constructor(private readonly sample: () => { deliveryRate: number; appLimited: boolean; bytesAcked: number } | undefined) {}
  /** Whether the path carries less than `rate` bytes/s (false until measured so). */
  slowerThan(rate: number): boolean {
    const now = Date.now();
    if (now >= this.next) {
      this.next = now + 200;
      const s = this.sample();
      if (s !== undefined) {
        const carried = this.lastAt === 0 ? 0 : ((s.bytesAcked - this.lastAcked) * 1000) / (now - this.lastAt);
        this.lastAt = now;
        this.lastAcked = s.bytesAcked;
        if (carried >= rate) this.slow = false;
        else if (!s.appLimited && s.deliveryRate > 0 && s.deliveryRate < rate) this.slow = true;
      }
    }
    return this.slow;
  }
}

/**
 * Decides, per message, whether to compress it: 'zlib' always; 'auto' when it is at least
 * `threshold` bytes, its connection's path is slower than `linkRate`, and messages of its key
 * (an RPC method, say) have been compressing (a key whose last try saved under 10 % goes plain
 * for its next 64 messages, then tries again; a message over 16 KiB is tried on its first 4 KiB
 * first).
 */
export class CompressionPolicy {
  private readonly plainLeft = new Map<string, number>();
  /** Bytes below which 'auto' leaves a message plain. */
  readonly threshold: number;
  /** 'auto' compresses on paths slower than this (bytes/s). */
  readonly linkRate: number;
  private readonly pack: (b: Buffer) => Buffer;
  /** @param mode 'zlib': every message; 'auto': where it pays. */
  constructor(readonly mode: 'zlib' | 'auto', options: CompressionPolicyOptions = {}) {
    this.threshold = options.threshold ?? DEFAULT_COMPRESS_THRESHOLD;
    this.linkRate = options.linkRate ?? DEFAULT_COMPRESS_LINK_RATE;
    this.pack = options.pack ?? deflatePayload;
    if (!(Number.isInteger(this.threshold) && this.threshold >= 0)) throw new RangeError(`compression threshold must be an integer >= 0, got ${this.threshold}`);
    if (!(this.linkRate > 0)) throw new RangeError(`compression link rate must be > 0 bytes/s, got ${this.linkRate}`);
  }

  /**
   * False when a message of `key` about `estimate` bytes (see estimateSize), to go over the
   * connection `link` measures (none: a path of unknown speed), goes plain: then it need not be
   * encoded apart to be compressed.
   */
  wants(key: string, estimate: number, link?: LinkGauge): boolean {
    if (!this.sizeQualifies(estimate)) return false;
    if (this.mode === 'zlib') return true;
    if (link !== undefined && this.linkRate !== Infinity && !link.slowerThan(this.linkRate)) return false;
    const left = this.plainLeft.get(key);
    if (left === undefined) return true;
    if (left <= 1) this.plainLeft.delete(key);
    else this.plainLeft.set(key, left - 1);
    return false;
  }

  /** Whether a message of about `estimate` bytes could be compressed at all (no state is touched). */
  sizeQualifies(estimate: number): boolean {
    return this.mode === 'zlib' || estimate >= this.threshold;
  }

  /** `message` compressed, or undefined when it goes plain. */
  compress(key: string, message: Buffer): Buffer | undefined {
    if (this.mode === 'zlib') return this.pack(message);
    if (message.length < this.threshold) return undefined;
    if (message.length > PROBE_ABOVE && this.pack(message.subarray(0, PROBE_BYTES)).length > PROBE_BYTES * PAYS) {
      this.plainLeft.set(key, RESAMPLE_AFTER);
      return undefined;
    }
    const packed = this.pack(message);
    if (packed.length > message.length * PAYS) {
      this.plainLeft.set(key, RESAMPLE_AFTER);
      return undefined;
    }
    return packed;
  }
}
