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
import { protocolError } from './thrift';

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
 * Decides, per message, whether to compress it: 'zlib' always; 'auto' when it is at least
 * `threshold` bytes and messages of its key (an RPC method, say) have been compressing (a key
 * whose last try saved under 10 % goes plain for its next 64 messages, then tries again; a
 * message over 16 KiB is tried on its first 4 KiB first). `pack` compresses (zlib level 1 by
 * default; gzip for HTTP bodies).
 */
export class CompressionPolicy {
  private readonly plainLeft = new Map<string, number>();
  /**
   * @param mode 'zlib': every message; 'auto': where it pays.
   * @param threshold bytes below which 'auto' leaves a message plain.
   * @param pack the compressor.
   */
  constructor(readonly mode: 'zlib' | 'auto', readonly threshold = DEFAULT_COMPRESS_THRESHOLD, private readonly pack: (b: Buffer) => Buffer = deflatePayload) {
    if (!(Number.isInteger(threshold) && threshold >= 0)) throw new RangeError(`compression threshold must be an integer >= 0, got ${threshold}`);
  }

  /** False when messages of `key` go plain for now (no need to encode them apart). */
  wants(key: string): boolean {
    if (this.mode === 'zlib') return true;
    const left = this.plainLeft.get(key);
    if (left === undefined) return true;
    if (left <= 1) this.plainLeft.delete(key);
    else this.plainLeft.set(key, left - 1);
    return false;
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
