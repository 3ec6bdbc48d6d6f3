// Options shared by servers and dialers, validated here so native code can trust them.

/** How the byte stream is cut into frames, in native code. */
export type Framing =
  | 'none' // no framing: 'data' / 'readable' events and the connection's reader
  | 'u32be' // u32 big-endian length of the body, then the body (Thrift framed, the echo protocol)
  | LengthFieldFraming;

/** A length field somewhere in a fixed header; the frame is `length + adjust` bytes in all. */
export interface LengthFieldFraming {
  lengthOffset?: number; // bytes before the length field (default 0)
  lengthSize: 1 | 2 | 4;
  littleEndian?: boolean;
  adjust: number; // added to the field's value to give the whole frame's size
}

/** Options of a connection (servers' and connect()'s): framing, limits, timeouts, flow control, TCP settings. */
export interface ConnectionOptions {
  framing?: Framing;
  /**
   * @internal With a length framing: each frame's Kitex TTHeader is checked in native code
   * (native/framer.h TTHeaderWellFormed) and frames that pass say so to _frameAt.
   */
  frameCheck?: 'ttheader';
  /** Largest frame accepted; a larger one closes the connection with ERR_LINKPOLL_FRAME_TOO_LARGE. Default 64 MiB. */
  maxFrameSize?: number;
  /** ms an incomplete frame (or unread input) may wait before the connection closes with ETIMEDOUT. 0 = off. */
  readTimeout?: number;
  /** ms without any byte in either direction before the connection closes with ETIMEDOUT. 0 = off. */
  idleTimeout?: number;
  /** ms pending output may go untaken by the peer before the connection closes with ETIMEDOUT. 0 = off. */
  writeTimeout?: number;
  /**
   * node:net's socket timeout: ms without any byte in either direction after which 'timeout' is
   * emitted, once per quiet spell; the connection stays open (end or destroy it in the listener).
   * 0 = off (default). Checked every 25 ms. Connection.setTimeout(ms, cb) sets it.
   */
  timeout?: number;
  /** Unconsumed input (framing 'none') at which reading pauses until the reader releases. Default 8 MiB. */
  maxInput?: number;
  /** Output backlog at which write() returns false and 'drain' follows (and see readPauseOnBacklog). Default 1 MiB. */
  highWaterMark?: number;
  /**
   * Stop reading while the output the kernel has not taken is at or over highWaterMark, until it
   * falls under half of it. A peer that sends requests and never reads the replies is then held
   * back by TCP flow control, and what a connection buffers for it stays under about
   * highWaterMark plus one read's replies (plus, for asynchronous handlers, the replies of the
   * requests in flight). Default true on a server's connections (as node:http pauses a socket
   * whose responses back up), false on connect()'s: a client must go on reading replies
   * whatever it has queued, or both sides could wait for each other.
   */
  readPauseOnBacklog?: boolean;
  /** TCP_NODELAY; default true. */
  noDelay?: boolean;
  /**
   * TCP keepalive: ms of silence before the kernel probes the peer, and between probes (whole
   * seconds, rounded up); nine unanswered probes close the connection with ETIMEDOUT, and so does
   * sent data left unacknowledged for as long (ten times this; TCP_USER_TIMEOUT). Finds peers that
   * vanished without a FIN (power loss, a dropped NAT entry), idle or not. 0 = off (default, as
   * node:net).
   */
  keepAlive?: number;
  /** Keep the connection open for writing after the peer's FIN. Default false. */
  allowHalfOpen?: boolean;
  /**
   * After end() has sent our FIN: ms to go on reading until the peer's FIN before closing anyway.
   * Default 30000. 0: close as soon as the output is flushed (input still arriving is then
   * answered with an RST, which may destroy the last bytes we sent before the peer reads them).
   */
  lingerTimeout?: number;
}

export const DEFAULT_MAX_FRAME = 64 * 1024 * 1024;

function int(name: string, v: unknown, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw outOfRange(`option ${name} must be an integer from ${min} to ${max}, got ${shown(v)}`);
  }
  return v;
}

/** Throws ERR_INVALID_ARG_TYPE unless `cb` is a function. */
export function checkCallback(cb: unknown): void {
  if (typeof cb !== 'function') throw invalidType('callback', 'a function', cb);
}

/** A TypeError with Node's code for an argument of the wrong type. */
export function invalidType(name: string, want: string, got: unknown): TypeError {
  const e = new TypeError(`${name} must be ${want}, got ${got === null ? 'null' : typeof got}`);
  (e as NodeJS.ErrnoException).code = 'ERR_INVALID_ARG_TYPE';
  return e;
}

/** A value as an error message shows it: a string quoted, so '100' is not taken for 100. */
export function shown(v: unknown): string {
  return typeof v === 'string' ? `'${v}' (a string)` : String(v);
}

/**
 * A TCP port from a number or a string of digits (as node:net takes them), from `min` (0 for a
 * listener: any free port) to 65535; anything else throws ERR_INVALID_ARG_VALUE.
 */
export function portNumber(v: unknown, min: 0 | 1): number {
  const n = typeof v === 'string' && /^[0-9]{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > 65535) {
    throw invalidArg(`port must be an integer from ${min} to 65535, got ${shown(v)}`);
  }
  return n;
}

/** An options argument: undefined is {}; anything but a plain object throws ERR_INVALID_ARG_TYPE. */
export function optionsObject<T extends object>(v: T | undefined, name: string): T {
  if (v === undefined) return {} as T;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidType(name, 'an object', v);
  return v;
}

/**
 * node:net's forms of an address: `(options)`, `(port[, host])` with a number or a string of
 * digits, or `(path)` with any other string (a Unix socket); a function last is a callback.
 * `extra` names the argument after host (listen's backlog).
 */
export function addressArgs<T extends { port?: number | string; host?: string; path?: string }>(
  args: unknown[], what: string, extra?: keyof T,
): { options: T; callback: ((...a: unknown[]) => void) | undefined } {
  const a = args.slice();
  const callback = typeof a[a.length - 1] === 'function' ? a.pop() as (...x: unknown[]) => void : undefined;
  const first = a[0];
  if (first === undefined || (typeof first === 'object' && first !== null && !Array.isArray(first))) {
    if (a.length > 1) throw invalidArg(`${what}(options) takes no arguments after the options (a callback may be last)`);
    return { options: { ...(first as T | undefined) } as T, callback };
  }
  if (typeof first === 'string' && !/^[0-9]+$/.test(first)) {
    const o = { path: first } as T;
    if (a.length > 1 && extra) (o as Record<keyof T, unknown>)[extra] = a[1];
    return { options: o, callback };
  }
  if (typeof first !== 'number' && typeof first !== 'string') throw invalidType(`${what}()'s first argument`, 'options, a port or a path', first);
  const o = { port: first } as T;
  if (a[1] !== undefined) {
    if (typeof a[1] !== 'string') throw invalidType('host', 'a string', a[1]);
    o.host = a[1];
  }
  if (a[2] !== undefined && extra) (o as Record<keyof T, unknown>)[extra] = a[2];
  return { options: o, callback };
}

/** A RangeError with Node's code for an argument outside its range. */
export function outOfRange(message: string): RangeError {
  const e = new RangeError(message);
  (e as NodeJS.ErrnoException).code = 'ERR_OUT_OF_RANGE';
  return e;
}

/** A TypeError with Node's code for an argument it cannot use. */
export function invalidArg(message: string): TypeError {
  const e = new TypeError(message);
  (e as NodeJS.ErrnoException).code = 'ERR_INVALID_ARG_VALUE';
  return e;
}

/** Flattens options into the array native code reads (see ParseOptions in native/binding.cc). */
export function encodeOptions(o: ConnectionOptions & { connectTimeout?: number }): number[] {
  const maxFrame = int('maxFrameSize', o.maxFrameSize, 1, 0x7fffffff, DEFAULT_MAX_FRAME);
  let f: number[];
  const framing = o.framing ?? 'none';
  if (framing === 'none') f = [0, 0, 4, 0, 0, maxFrame];
  else if (framing === 'u32be') f = [1, 0, 4, 0, 4, maxFrame];
  else if (typeof framing === 'object' && framing !== null) {
    const off = int('framing.lengthOffset', framing.lengthOffset, 0, 64, 0);
    if (framing.lengthSize !== 1 && framing.lengthSize !== 2 && framing.lengthSize !== 4) throw invalidArg('framing.lengthSize must be 1, 2 or 4');
    const adjust = int('framing.adjust', framing.adjust, -0x7fffffff, 0x7fffffff, 0);
    f = [1, off, framing.lengthSize, framing.littleEndian ? 1 : 0, adjust, maxFrame];
  } else throw invalidArg(`framing must be 'none', 'u32be' or a length-field description, got ${shown(framing)}`);
  f.push(o.frameCheck === 'ttheader' ? 1 : 0);
  const ms = 0x7fffffff;
  const hwm = int('highWaterMark', o.highWaterMark, 1, 0x7fffffff, DEFAULT_HIGH_WATER_MARK);
  if (o.readPauseOnBacklog !== undefined && typeof o.readPauseOnBacklog !== 'boolean') throw invalidType('option readPauseOnBacklog', 'a boolean', o.readPauseOnBacklog);
  return [...f,
    int('readTimeout', o.readTimeout, 0, ms, 0),
    int('idleTimeout', o.idleTimeout, 0, ms, 0),
    int('writeTimeout', o.writeTimeout, 0, ms, 0),
    int('connectTimeout', o.connectTimeout, 0, ms, 0),
    int('maxInput', o.maxInput, 1, 0x7fffffff, 8 * 1024 * 1024),
    o.noDelay === false ? 0 : 1,
    o.allowHalfOpen ? 1 : 0,
    Math.ceil(int('keepAlive', o.keepAlive, 0, 32767000, 0) / 1000), // Linux caps TCP_KEEPIDLE at 32767 s
    int('lingerTimeout', o.lingerTimeout, 0, ms, DEFAULT_LINGER),
    int('timeout', o.timeout, 0, ms, 0),
    o.readPauseOnBacklog ? hwm : 0];
}

export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
const DEFAULT_LINGER = 30000;

/**
 * What a Connection keeps of its options: one shape for all, highWaterMark resolved. Every key
 * of ConnectionOptions is required here, so an option added there fails to compile until
 * keptOptions() keeps it.
 */
export type KeptOptions = { [K in keyof Required<ConnectionOptions>]: ConnectionOptions[K] } & { connectTimeout: number | undefined; highWaterMark: number };

/**
 * The options a Connection keeps, always built in this one shape: the write path reads
 * highWaterMark per message, and option objects of many shapes (a server's, a dial's, spreads
 * of setOptions) had made that read megamorphic (1.2 % of an RPC server's time).
 */
export function keptOptions(o: ConnectionOptions & { connectTimeout?: number }): KeptOptions {
  return {
    framing: o.framing, frameCheck: o.frameCheck, maxFrameSize: o.maxFrameSize, readTimeout: o.readTimeout,
    idleTimeout: o.idleTimeout, writeTimeout: o.writeTimeout, connectTimeout: o.connectTimeout, maxInput: o.maxInput,
    highWaterMark: o.highWaterMark ?? DEFAULT_HIGH_WATER_MARK, noDelay: o.noDelay, keepAlive: o.keepAlive, allowHalfOpen: o.allowHalfOpen,
    lingerTimeout: o.lingerTimeout, timeout: o.timeout, readPauseOnBacklog: o.readPauseOnBacklog,
  };
}
