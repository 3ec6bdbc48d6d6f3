// Connection: one TCP or Unix-domain connection on the reactor. Frames (or data) arrive as
// events; writes are queued into native memory and leave with one writev per connection per
// batch or tick.
import { Buffer } from 'node:buffer';
import { EventEmitter } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import { LinkBuffer, bumpIoEpoch } from './link-buffer';
import { LinkpollError, closedError, destroyedError, errnoError, timeoutError } from './errors';
import { DEFAULT_MAX_FRAME, checkCallback, encodeOptions, invalidArg, invalidType, keptOptions, outOfRange, type ConnectionOptions, type KeptOptions } from './options';
import { CMD_ABORT, CMD_DESTROY, CMD_END, CMD_PAUSE, CMD_REF, CMD_RESUME, CMD_SHUTDOWN, CMD_UNREF, CMD_WATCH_DRAIN, type Reactor } from './reactor';

/** A bound or peer address, as node:net gives it. */
export interface AddressInfo { family: string; address: string; port: number }

// `u32be`: the header is the length, so the message can say how large the frame was (unless the
// peer speaks another protocol, which began() names).
function frameTooLarge(max: number, head: number, u32be: boolean): LinkpollError {
  const tail = began(head);
  const size = u32be && !tail.includes('the peer speaks') ? ` of ${(head >>> 0) + 4} bytes` : '';
  return new LinkpollError('ERR_LINKPOLL_FRAME_TOO_LARGE', `a frame${size} exceeded maxFrameSize (${max} bytes)${tail}; the connection was closed`);
}

// What a refused frame's header began with (native code passes its first 4 bytes): a peer that
// speaks another protocol shows at once ("HTTP" from a web server, say).
function began(head: number): string {
  const b = Buffer.alloc(4);
  b.writeInt32BE(head | 0);
  const text = /^[\x20-\x7e]{4}$/.test(b.toString('latin1')) ? ` '${b.toString('latin1')}'` : '';
  const peer = /^(HTTP|GET |POST|PUT |HEAD)/.test(b.toString('latin1')) ? ': the peer speaks HTTP'
    : (b[0] === 0x16 || b[0] === 0x15) && b[1] === 0x03 ? ': the peer speaks TLS' : ''; // a handshake or alert record
  return `: it began ${b.toString('hex').replace(/(..)(?!$)/g, '$1 ')}${text}${peer}`;
}

/** Writes into a connection's output; what is written leaves at the end of the tick, or at flush(). */
export class Writer {
  private lastMalloc = 0;
  /** Made by the library (`conn.writer`), not by users. (Left in the typings: without it they would read as `new Writer()`.) */
  constructor(private readonly conn: Connection) {}
  /** n bytes of native memory to fill in place now (before the tick ends). */
  malloc(n: number): Buffer {
    if (!Number.isInteger(n) || n < 0) throw outOfRange('malloc: n must be a non-negative integer');
    this.lastMalloc = n;
    if (this.conn.destroyed) throw destroyedError('malloc'); // its bytes could never be sent
    if (n === 0 || this.conn.writableEnded) return Buffer.alloc(n); // (as write() after end(): nothing is sent)
    this.conn._wrote(n);
    return this.conn._r.malloc(this.conn.id, n);
  }
  /** Keeps only the first n bytes of the last malloc(). */
  mallocAck(n: number): void {
    if (!this.conn._r.mallocAck(this.conn.id, n, this.lastMalloc)) {
      throw Object.assign(new RangeError('mallocAck must follow malloc on the same connection with n <= its size'), { code: 'ERR_INVALID_STATE' });
    }
    this.lastMalloc = n;
  }
  /** Copies small data; sends large data (64 KiB and up) from the Buffer itself - leave it unchanged. */
  writeBinary(data: Uint8Array): boolean { return this.conn.write(data); }
  /** Sends what is queued now rather than at the end of the tick. */
  flush(): void { this.conn._r.flush(); }
}

// Every byte of a connection counts: thousands accepted at once survive V8's scavenges, and the
// bytes that survive them are what grows its young generation (RSS). So a connection has no
// listener table until it gets a listener, and state few connections use lives in ConnExtra.
//
// EventEmitter gives every instance a null-prototype object literal for its listeners, which V8
// keeps as a dictionary (182 bytes, measured in a heap snapshot). Instances of this constructor
// have no inherited keys either (its prototype has a null prototype, as Node's own EventEmitter
// used to build it) and stay small fast objects.
function Listeners(): void { /* a bag of listeners by event name */ }
Listeners.prototype = Object.create(null);

/** A connection's state that most connections never need, made on first use. */
class ConnExtra {
  writer: Writer | undefined = undefined;
  /** Frames that arrived while paused (copies). */
  queued: Buffer[] | undefined = undefined;
  reader: LinkBuffer | undefined = undefined;
  destroyError: Error | undefined = undefined;
  peer: AddressInfo | undefined = undefined;
  whenClosed: { promise: Promise<Error | undefined>; resolve: (e: Error | undefined) => void } | undefined = undefined;
  closeReason: Error | undefined = undefined;
  data: unknown = undefined;
  /** Drain watches queued (CMD_WATCH_DRAIN), counted as native code counts them (wrapping). */
  watches = 0;
  /** write()/end() callbacks waiting for their bytes to reach the kernel, each with its watch. */
  writeCbs: { watch: number; cb: WriteCallback }[] | undefined = undefined;
  /** setEncoding(): 'data' chunks are strings, characters split between reads kept whole. */
  decoder: StringDecoder | undefined = undefined;
  /** bytesRead and bytesWritten as they were when the connection closed. */
  counters: number[] | undefined = undefined;
  /** See Connection._busy. */
  busy: (() => boolean) | undefined = undefined;
}

/** Called once the data is in the kernel's hands, or with the error that kept it from getting there. */
export type WriteCallback = (err?: Error | null) => void;

const F_NEED_DRAIN = 1, F_ENDING = 2, F_CLOSED = 4, F_CONNECTING = 8, F_PAUSED = 16, F_CONNECT_FAILED = 32, F_UNREF = 64, F_WRITE_SHUT = 128, F_READ_ENDED = 256,
  F_DESTROYED = 512, F_END_DEFERRED = 1024;
/** No more writes: end(), shutdownWrite(), destroy() or closed. */
const F_NO_WRITE = F_ENDING | F_CLOSED | F_WRITE_SHUT | F_DESTROYED;

/** The events a Connection emits and their arguments (any other name works as on any EventEmitter). */
export interface ConnectionEvents {
  /** A whole frame (framing 'u32be' or a length field), header included; valid during the call. */
  frame: [frame: Buffer];
  /** Data mode: what arrived, a copy that is the listener's to keep (as node:net's); a string after setEncoding() (typed Buffer, as node:net's typings do). */
  data: [chunk: Buffer];
  /** Data mode, no 'data' listener: `length` bytes wait in `reader`. */
  readable: [length: number];
  connect: [];
  /** The peer sent FIN. */
  end: [];
  drain: [];
  /** No byte in either direction for the `timeout` option's ms (see setTimeout); the connection stays open. */
  timeout: [];
  /** Emitted (before 'close') only when someone listens: the close reason. */
  error: [err: Error];
  /** `err`: why, or undefined for an orderly close. */
  close: [err: Error | undefined];
}

// Typed forms of the listener methods EventEmitter has and Connection does not override.
export interface Connection {
  /** Adds a one-time listener for one of the connection's events (see ConnectionEvents). */
  once<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this;
  /** Adds a one-time listener for any event, as EventEmitter does. */
  once(event: string | symbol, listener: (...args: any[]) => void): this;
  /** Removes a listener of one of the connection's events. */
  off<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this;
  /** Removes a listener, as EventEmitter does. */
  off(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** A TCP connection's path as the kernel measures it (Connection.tcpInfo()). */
export interface TcpInfo {
  /** Bytes/s delivered in the latest sample (0 before any data was acknowledged). */
  deliveryRate: number;
  /** The sample was limited by how much the application sent, not by the path. */
  appLimited: boolean;
  /** The smallest round-trip time seen, ms. */
  minRtt: number;
  /** Bytes the peer has acknowledged since the connection opened. */
  bytesAcked: number;
}

/** A TCP (or Unix socket) connection served by the native reactor: node:net's call forms, frames or a LinkBuffer reader for input, a native Writer for output; events: ConnectionEvents. */
export class Connection extends EventEmitter {
  /** @internal */ readonly _r: Reactor;
  readonly id: number;
  /** Called for each frame instead of emitting 'frame' (no emit cost per frame). */
  onFrame: ((frame: Buffer, conn: Connection) => void) | undefined;
  /**
   * @internal For our own protocol code: each frame as bytes [start, end) of a Buffer over its
   * whole block, with no view made per frame. The same lifetime rule; never handed to users.
   */
  _frameAt: ((buf: Buffer, start: number, end: number, checked: boolean) => void) | undefined;
  /**
   * @internal Set by the protocol serving this connection: whether requests it has read are not
   * answered yet (a closing server waits for them; see Server.close). Kept in ConnExtra: most
   * connections of a plain server never have one.
   */
  get _busy(): (() => boolean) | undefined { return this.x?.busy; }
  set _busy(f: (() => boolean) | undefined) { this.extra().busy = f; }
  /** @internal Told when this connection closes, before its 'close' listeners (its server). */
  _owner: { _connClosed(c: Connection): void } | undefined;
  private opts: KeptOptions;
  private backlog = 0;
  /** @internal Bytes queued since the last hand-over to native code (this tick's output). */
  staged = 0;
  // The booleans in one field (F_* bits): thousands of connections are accepted at once, and
  // each field of a connection is heap that V8's young generation grows for.
  private flags = 0;
  private x: ConnExtra | undefined;
  /** Why the connection closed (undefined for an orderly close), once it has. */
  get closeReason(): Error | undefined { return this.x?.closeReason; }
  /** Application data (a place for protocol state). */
  get data(): unknown { return this.x?.data; }
  set data(v: unknown) { this.extra().data = v; }

  /** Made by the library (`connect()`, a server), not by users. (Left in the typings: see Writer.) */
  constructor(r: Reactor, id: number, opts: KeptOptions, connecting: boolean) {
    super();
    (this as unknown as { _events: object | undefined })._events = undefined; // see Listeners
    this._r = r;
    this.id = id;
    this.opts = opts;
    if (connecting) this.flags = F_CONNECTING;
    r.register(this);
  }

  /** The native-memory writer (made on first use: most connections never need it). */
  get writer(): Writer { const x = this.extra(); return x.writer ??= new Writer(this); }
  private extra(): ConnExtra { return this.x ??= new ConnExtra(); }

  // EventEmitter makes its dictionary when it finds no listener table: the small one goes first.
  // (once/prependOnceListener come through on/prependListener.)
  /** Adds a listener for one of the connection's events (see ConnectionEvents); a 'data' or 'readable' listener starts the flow of input. */
  override on<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    this.listeners_();
    return super.on(event, listener);
  }
  /** Same as on(). */
  override addListener<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this;
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this;
  override addListener(event: string | symbol, listener: (...args: any[]) => void): this { return this.on(event, listener); }
  /** Adds a listener before the others (see on()). */
  override prependListener<K extends keyof ConnectionEvents>(event: K, listener: (...args: ConnectionEvents[K]) => void): this;
  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this;
  override prependListener(event: string | symbol, listener: (...args: any[]) => void): this {
    this.listeners_();
    return super.prependListener(event, listener);
  }
  private listeners_(): void {
    const self = this as unknown as { _events: object | undefined; _eventsCount: number };
    if (self._events === undefined) { self._events = new (Listeners as unknown as new () => object)(); self._eventsCount = 0; }
  }
  /** destroy() or resetAndDestroy() was called, or the connection closed. */
  get destroyed(): boolean { return (this.flags & (F_CLOSED | F_DESTROYED)) !== 0; }
  get connecting(): boolean { return (this.flags & F_CONNECTING) !== 0; }
  /** Bytes written and not yet taken by the kernel. */
  get writableLength(): number { return this.backlog + this.staged; }
  get writableNeedDrain(): boolean { return (this.flags & F_NEED_DRAIN) !== 0; }
  /** end() or shutdownWrite() was called, or the connection is closed: writes are refused (node:net's writableEnded, and after a close). */
  get writableEnded(): boolean { return (this.flags & F_NO_WRITE) !== 0; }
  /** As node:net's: 'opening' while connecting, 'open', 'readOnly' after end(), 'writeOnly' after the peer's FIN, 'closed'. */
  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    const f = this.flags;
    if ((f & F_CONNECTING) !== 0) return 'opening';
    const readable = (f & (F_READ_ENDED | F_CLOSED)) === 0, writable = (f & F_NO_WRITE) === 0;
    return readable ? (writable ? 'open' : 'readOnly') : writable ? 'writeOnly' : 'closed';
  }
  /** Not connected yet (node:net's pending). */
  get pending(): boolean { return (this.flags & F_CONNECTING) !== 0; }
  /** Bytes received, as node:net's bytesRead (kept after the close). */
  get bytesRead(): number { return this.counters()[0]; }
  /** Bytes written so far, those still queued included, as node:net's bytesWritten (kept after the close). */
  get bytesWritten(): number { return this.counters()[1] + this.staged; }
  private counters(): number[] {
    return this.x?.counters ?? this._r.native.counters(this.id) ?? [0, 0];
  }

  /**
   * Queues data; false when the backlog is at or over the high-water mark (wait for 'drain'). After
   * end() or once closed nothing is queued and it returns false without throwing (no 'drain'
   * follows; a callback gets the error): a reply racing a peer's close is normal, not a fault.
   * `callback`: once the bytes are in the kernel's hands, or with the error that kept them out.
   */
  write(data: Uint8Array | string, callback?: WriteCallback): boolean;
  /** `encoding` for a string (Buffer's encodings; default utf8), as node:net's write(). */
  write(data: Uint8Array | string, encoding?: BufferEncoding, callback?: WriteCallback): boolean;
  write(data: Uint8Array | string, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    if (typeof encoding === 'function') { callback = encoding; encoding = undefined; }
    if (callback !== undefined) checkCallback(callback);
    if ((this.flags & F_NO_WRITE) !== 0) {
      if (callback !== undefined) this.refuse(callback);
      return false;
    }
    const b = typeof data === 'string' ? Buffer.from(data, encoding) : data;
    if (!(b instanceof Uint8Array)) throw invalidType('data', 'a string or a Uint8Array (Buffer)', data);
    this._r.write(this.id, b);
    const ok = this._wrote(b.length);
    if (callback !== undefined) this._whenOut(callback);
    return ok;
  }

  /**
   * @internal Calls cb once all output queued so far is in the kernel (native code answers a
   * drain watch then), or with the reason if the connection closes first.
   */
  _whenOut(cb: WriteCallback): void {
    (this.extra().writeCbs ??= []).push({ watch: this.watchDrain(), cb });
  }

  /** Queues a drain watch; its number, as native code counts them (see _onDrain). */
  private watchDrain(): number {
    const x = this.extra();
    x.watches = (x.watches + 1) | 0;
    this._r.control(this.id, CMD_WATCH_DRAIN);
    return x.watches;
  }

  private refuse(cb: WriteCallback): void {
    const f = this.flags;
    const err = (f & F_DESTROYED) !== 0 ? destroyedError('write') : (f & F_CLOSED) !== 0 ? closedError() : new LinkpollError('ERR_STREAM_WRITE_AFTER_END', 'write after end');
    process.nextTick(cb, err);
  }

  private settleWrites(watch: number, err: Error | null): void {
    const q = this.x?.writeCbs;
    if (q === undefined || q.length === 0) return;
    let n = 0;
    while (n < q.length && (err !== null || ((watch - q[n]!.watch) | 0) >= 0)) n++;
    for (const w of q.splice(0, n)) {
      try {
        w.cb(err);
      } catch (e) {
        process.nextTick(() => { throw e; }); // as a throwing listener would; the others still run
      }
    }
  }

  /** @internal */ _wrote(n: number): boolean {
    if (this.staged === 0) this._r.noteStaged(this);
    this.staged += n;
    if (this.backlog + this.staged >= this.opts.highWaterMark) {
      if ((this.flags & F_NEED_DRAIN) === 0) {
        this.flags |= F_NEED_DRAIN;
        this.watchDrain();
      }
      return false;
    }
    return true;
  }

  /** @internal */ _handedOver(): void { this.staged = 0; }

  /**
   * @internal Queues the n bytes protocol code encoded at the offset reactor.stage() gave (nothing
   * else may write in between): one message without a view or a copy (rpc/transport/protocol.ts).
   */
  _commitStaged(n: number): void {
    if ((this.flags & F_NO_WRITE) !== 0 || n === 0) return;
    this._r.commitStaged(this.id, n);
    this._wrote(n);
  }

  /**
   * Sends pending output, then FIN, as node:net's end(): what the peer still sends is read (and
   * 'end' follows its FIN), and the connection closes once the peer closes its side, or
   * `lingerTimeout` (default 30 s) after our FIN if it never does. (Closing at once would answer
   * input still arriving with an RST, which can destroy our last bytes in the peer's receive queue.)
   */
  end(callback?: WriteCallback): this;
  /** `callback`: once everything written is in the kernel's hands (node:net's 'finish'). */
  end(data: Uint8Array | string, callback?: WriteCallback): this;
  end(data: Uint8Array | string, encoding: BufferEncoding, callback?: WriteCallback): this;
  end(data?: Uint8Array | string | WriteCallback, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): this {
    if (typeof data === 'function') { callback = data; data = undefined; }
    if (typeof encoding === 'function') { callback = encoding; encoding = undefined; }
    if (callback !== undefined) checkCallback(callback);
    if ((this.flags & (F_CLOSED | F_ENDING)) !== 0) {
      if (callback !== undefined) this.refuse(callback);
      return this;
    }
    if (data !== undefined) this.write(data, encoding as BufferEncoding | undefined);
    if (callback !== undefined) this._whenOut(callback);
    this.flags |= F_ENDING;
    this._r.control(this.id, CMD_END);
    return this;
  }

  /** Half-close: sends pending output, then FIN; reading goes on (needs allowHalfOpen to keep the connection after the peer's FIN). */
  shutdownWrite(): void {
    if ((this.flags & F_CLOSED) !== 0) return;
    this.flags |= F_WRITE_SHUT;
    this._r.control(this.id, CMD_SHUTDOWN);
  }

  /** Closes now; pending output is dropped. `err` becomes the close reason. */
  destroy(err?: Error): this {
    if ((this.flags & (F_CLOSED | F_DESTROYED)) !== 0) return this;
    this.flags |= F_DESTROYED; // writes from now on are refused at once (the close event comes later)
    if (err !== undefined) this.extra().destroyError = err;
    this._r.control(this.id, CMD_DESTROY);
    this._r.flush();
    return this;
  }

  /** Abortive close: RST to the peer, pending output dropped. */
  resetAndDestroy(): this {
    if ((this.flags & (F_CLOSED | F_DESTROYED)) !== 0) return this;
    this.flags |= F_DESTROYED;
    this._r.control(this.id, CMD_ABORT);
    this._r.flush();
    return this;
  }

  /** Stops reading (the kernel buffers, then the peer is slowed by TCP flow control). */
  pause(): this {
    if ((this.flags & (F_PAUSED | F_CLOSED)) === 0) {
      this.flags |= F_PAUSED;
      this._r.control(this.id, CMD_PAUSE);
    }
    return this;
  }

  /** Resumes reading after pause(); queued frames and data are delivered first. */
  resume(): this {
    if ((this.flags & F_PAUSED) === 0 || (this.flags & F_CLOSED) !== 0) return this;
    this.flags &= ~F_PAUSED;
    this._r.control(this.id, CMD_RESUME);
    const q = this.x?.queued;
    if (q) {
      this.x!.queued = undefined;
      for (const f of q) this._onFrame(f);
    }
    if ((this.flags & F_END_DEFERRED) !== 0 && (this.flags & F_PAUSED) === 0) {
      this.flags &= ~F_END_DEFERRED;
      this.emit('end');
    }
    return this;
  }

  /**
   * @internal Stops reading from the socket for good (a closing server): unlike pause(), frames
   * already read are still delivered, so the requests they carry are answered.
   */
  _stopReading(): void {
    if ((this.flags & F_CLOSED) === 0) this._r.control(this.id, CMD_PAUSE);
  }

  get isPausedReading(): boolean { return (this.flags & F_PAUSED) !== 0; }

  /** Lets the process exit while this connection is open (as node:net's socket.unref()). */
  unref(): this {
    if ((this.flags & (F_UNREF | F_CLOSED)) === 0) {
      this.flags |= F_UNREF;
      this._r.control(this.id, CMD_UNREF);
    }
    return this;
  }

  /** Keeps the process alive while this connection is open again (the default). */
  ref(): this {
    if ((this.flags & F_UNREF) !== 0 && (this.flags & F_CLOSED) === 0) {
      this.flags &= ~F_UNREF;
      this._r.control(this.id, CMD_REF);
    }
    return this;
  }

  /**
   * node:net's setTimeout(): 'timeout' is emitted after `ms` without any byte in either direction
   * (once per quiet spell; the connection stays open). 0 turns it off. `callback` is added as a
   * 'timeout' listener (removed again with 0). Option `timeout`.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback !== undefined) checkCallback(callback);
    this.setOptions({ timeout: ms });
    if (callback !== undefined) {
      if (ms === 0) this.off('timeout', callback);
      else this.once('timeout', callback);
    }
    return this;
  }

  /** The `timeout` option: ms of quiet before 'timeout' (undefined or 0: off), as node:net's socket.timeout. */
  get timeout(): number | undefined { return this.opts.timeout || undefined; }

  /**
   * node:net's setEncoding(): 'data' chunks become strings in this encoding (a character split
   * between two reads arrives whole, in the second); without an argument, back to Buffers.
   */
  setEncoding(encoding?: BufferEncoding): this {
    if (encoding === undefined) {
      if (this.x) this.x.decoder = undefined;
      return this;
    }
    if (!Buffer.isEncoding(encoding)) throw invalidArg(`unknown encoding ${String(encoding)}`);
    this.extra().decoder = new StringDecoder(encoding);
    return this;
  }

  /** node:net's setNoDelay(): setOptions({ noDelay }). */
  setNoDelay(noDelay = true): this {
    this.setOptions({ noDelay });
    return this;
  }

  /** node:net's setKeepAlive(enable, initialDelay): setOptions({ keepAlive }); no delay given: 15 s (Go's default). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.setOptions({ keepAlive: enable ? (initialDelay > 0 ? initialDelay : 15000) : 0 });
    return this;
  }

  /** Changes timeouts, framing or limits of this connection (e.g. after detecting its protocol). */
  setOptions(opts: ConnectionOptions): void {
    const merged = { ...this.opts, ...opts };
    const encoded = encodeOptions(merged);
    this.opts = keptOptions(merged);
    if ((this.flags & F_CLOSED) === 0) {
      this.x?.reader?.settle(); // native framing starts from what the reader has not consumed
      this._r.native.setOptions(this.id, encoded);
      bumpIoEpoch();
    }
  }

  /** The input as a LinkBuffer (framing 'none'): read with next/peek/until, then release(). */
  get reader(): LinkBuffer {
    const x = this.extra();
    if (!x.reader) {
      const h = this._r.native.reader(this.id);
      if (!h) throw closedError();
      x.reader = new LinkBuffer(h);
    }
    return x.reader;
  }

/**
   * How fast this connection's path carries data, as the kernel's TCP measures it (TCP_INFO):
   * the delivery rate in bytes/s of its latest sample, whether that sample was limited by the
   * application (then the path could carry more), the smallest RTT seen (ms) and the bytes
   * acknowledged so far. Undefined once
   * closed, and for Unix domain sockets.
   */
  tcpInfo(): TcpInfo | undefined {
    if ((this.flags & F_CLOSED) !== 0) return undefined;
    const i = this._r.native.linkInfo(this.id);
    return i && { deliveryRate: i[0], appLimited: i[1] === 1, minRtt: i[2] / 1000, bytesAcked: i[3] };
  }

  get remoteAddress(): string | undefined { return this.remote()?.address; }
  get remotePort(): number | undefined { return this.remote()?.port; }
  get remoteFamily(): string | undefined { return this.remote()?.family; }
  get localAddress(): string | undefined { return this.address()?.address; }
  get localPort(): number | undefined { return this.address()?.port; }
  get localFamily(): string | undefined { return this.address()?.family; }
  /** The local end (undefined once closed). */
  address(): AddressInfo | undefined {
    const a = this._r.native.address(this.id, false);
    return a ? { family: a[0], address: a[1], port: a[2] } : undefined;
  }
  private remote(): AddressInfo | undefined {
    const x = this.extra();
    if (!x.peer) {
      const a = this._r.native.address(this.id, true);
      if (a) x.peer = { family: a[0], address: a[1], port: a[2] };
    }
    return x.peer;
  }

  /** Resolves when the connection has closed, with its close reason (undefined if orderly). */
  closed(): Promise<Error | undefined> {
    if ((this.flags & F_CLOSED) !== 0) return Promise.resolve(this.closeReason);
    const x = this.extra();
    if (!x.whenClosed) {
      let resolve!: (e: Error | undefined) => void;
      const promise = new Promise<Error | undefined>((res) => { resolve = res; });
      x.whenClosed = { promise, resolve };
    }
    return x.whenClosed.promise;
  }

  // ---- events from the reactor ----

  /** @internal */ _onFrame(frame: Buffer): void {
    if ((this.flags & F_PAUSED) !== 0) {
      (this.extra().queued ??= []).push(Buffer.from(frame)); // kept past the batch: a copy
      return;
    }
    if (this._frameAt !== undefined) this._frameAt(frame, 0, frame.length, false);
    else if (this.onFrame !== undefined) this.onFrame(frame, this);
    else this.emit('frame', frame);
  }

  /** @internal A frame as bytes [start, end) of its block (see _frameAt); `checked`: see frameCheck. */
  _onFrameAt(block: Buffer, start: number, end: number, checked: boolean): void {
    if ((this.flags & F_PAUSED) !== 0) this._onFrame(block.subarray(start, end)); // queued as a copy (checked again by its parser)
    else this._frameAt!(block, start, end, checked);
  }

  /** @internal */ _onData(len: number): void {
    if (this.listenerCount('data') > 0) {
      // node:net's 'data' chunks are the listener's to keep (chunks.push(d), then Buffer.concat):
      // a copy. The zero-copy path is 'readable' and the reader.
      const r = this.reader;
      const chunk = r.readBinary(r.length);
      r.release();
      const decoder = this.x?.decoder;
      if (decoder === undefined) this.emit('data', chunk);
      else {
        const text = decoder.write(chunk);
        if (text !== '') this.emit('data', text);
      }
    } else {
      this.emit('readable', len);
    }
  }

  /** @internal */ _onConnect(err: number): void {
    this.flags &= ~F_CONNECTING;
    if (err) {
      this.flags |= F_CONNECT_FAILED;
      return; // the close event follows with the reason
    }
    this.remote(); // known while connected, for errors and logs after the close
    this.emit('connect');
  }

  /** @internal */ _onEnd(): void {
    this.flags |= F_READ_ENDED;
    // Frames that arrived while paused come first: 'end' follows them on resume().
    if (this.x?.queued !== undefined) this.flags |= F_END_DEFERRED;
    else this.emit('end');
  }

  /** @internal `watch`: the drain watches native code had processed (see _whenOut). */
  _onDrain(watch: number): void {
    this.backlog = 0;
    this.settleWrites(watch, null);
    if ((this.flags & F_NEED_DRAIN) !== 0) {
      this.flags &= ~F_NEED_DRAIN;
      this.emit('drain');
    }
  }

  /** @internal */ _onBacklog(n: number): void { this.backlog = n; }

  /** @internal */ _onTimeout(): void { this.emit('timeout'); }

  /** @internal */ _onClose(reason: number, errno: number): void {
    if ((this.flags & F_CLOSED) !== 0) return;
    this.flags = (this.flags | F_CLOSED) & ~F_CONNECTING;
    let err: Error | undefined;
    switch (reason) {
      case 2: err = errnoError(errno, (this.flags & F_CONNECT_FAILED) !== 0 ? 'connect' : 'socket'); break;
      case 3: err = timeoutError('read', this.opts.readTimeout); break;
      case 4: err = timeoutError('idle', this.opts.idleTimeout); break;
      case 5: err = timeoutError('write', this.opts.writeTimeout); break;
      case 6: err = timeoutError('connect', this.opts.connectTimeout); break;
      case 7: err = frameTooLarge(this.opts.maxFrameSize ?? DEFAULT_MAX_FRAME, errno, this.opts.framing === 'u32be'); break;
      case 9: err = new LinkpollError('ERR_LINKPOLL_SHUTDOWN', 'the reactor was closed'); break;
      case 10: err = new LinkpollError('ERR_LINKPOLL_BAD_FRAME', `a frame length field was smaller than its header${began(errno)}; the connection was closed`); break;
      default: err = this.x?.destroyError;
    }
    const x = this.extra();
    if (err !== undefined) x.closeReason = err;
    x.reader = undefined;
    x.counters = this._r.native.counters(this.id)?.slice(0, 2) ?? [0, 0]; // the native side forgets them after this batch
    this.staged = 0;
    this._owner?._connClosed(this);
    this.settleWrites(0, err ?? closedError());
    if (err && this.listenerCount('error') > 0) this.emit('error', err);
    this.emit('close', err);
    this.x?.whenClosed?.resolve(err);
  }
}
