// Apache THeader transforms: the payload (the Thrift message) compressed, its transform ids in
// the header. zlib (id 1) is read and written, as Apache's Python and C++ THeader transports do;
// a payload is inflated only up to the frame size limit, so a small frame cannot make a large
// one (a zip bomb is refused, with what it would have grown past).
import type { Buffer } from 'node:buffer';
import { protocolError } from './thrift';

// Loaded on the first compressed frame: a server that never sees one does not pay for it.
let zlibModule: typeof import('node:zlib') | undefined;
// eslint-disable-next-line @typescript-eslint/no-var-requires
const zlib = (): typeof import('node:zlib') => (zlibModule ??= require('node:zlib') as typeof import('node:zlib'));

/** THeaderTransformID.ZLIB. */
export const TRANSFORM_ZLIB = 0x01;

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
        throw protocolError(`THeader zlib payload of ${end - start} bytes inflates past the frame size limit (${maxSize} bytes): refused`);
      }
      throw protocolError(`THeader zlib payload is not a valid zlib stream (${err.message})`);
    }
  }
  return data;
}

/** `message` compressed with zlib for a THeader frame (level 6, zlib's and Apache's default). */
export function deflatePayload(message: Buffer): Buffer {
  return zlib().deflateSync(message);
}
