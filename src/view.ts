// Buffers that view native memory. `Buffer.from(arrayBuffer, offset, length)` runs argument
// checks and a species lookup that cost twice the view itself (25 vs 14 ns, measured), and a view
// is made for every frame, so views are built the way Node builds its own: with FastBuffer, the
// Uint8Array subclass whose prototype *is* Buffer.prototype, which Node exposes as
// Buffer[Symbol.species]. The result is a Buffer in every respect (Buffer.isBuffer, instanceof,
// util.isDeepStrictEqual / assert.deepStrictEqual against Buffer.from, inspect shows <Buffer>);
// callers pass checked offsets.
import { Buffer } from 'node:buffer';

type ViewCtor = new (ab: ArrayBuffer, offset: number, length: number) => Buffer;

function fastBuffer(): ViewCtor {
  const species = (Buffer as unknown as { [Symbol.species]?: unknown })[Symbol.species];
  if (typeof species === 'function' && species !== Buffer) {
    const C = species as ViewCtor;
    try {
      if (Object.getPrototypeOf(new C(new ArrayBuffer(1), 0, 1)) === Buffer.prototype) return C;
    } catch { /* not constructible that way: the fallback below */ }
  }
  // A Node without it: a subclass over Buffer.prototype (a Buffer for every method and check
  // except strict deep equality, which compares prototypes).
  class View extends Uint8Array {}
  Object.setPrototypeOf(View.prototype, Buffer.prototype);
  Object.defineProperty(View.prototype, 'constructor', { value: Buffer, writable: true, configurable: true });
  return View as unknown as ViewCtor;
}

const FastBuffer = fastBuffer();

/** A Buffer over bytes [offset, offset + length) of `ab`, no copy and no argument checks. */
export function view(ab: ArrayBuffer, offset: number, length: number): Buffer {
  return new FastBuffer(ab, offset, length);
}
