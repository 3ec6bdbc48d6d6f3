// The JavaScript half of the reactor (native/reactor.h). Native code calls onBatch(n) once per
// loop wake with n event records in a shared Int32Array; writes made while handling them are
// queued as commands in another shared Int32Array and go back as onBatch's return value, so a
// wake costs one crossing each way however many connections and frames it carries. Writes made
// outside a batch (after an await) are flushed once per tick, from a microtask.
import { Buffer } from 'node:buffer';
import { native, type NativeReactor, type ReactorStats } from './native';
import { performance } from 'node:perf_hooks';
import { view } from './view';
import { outOfRange } from './options';
import { bumpIoEpoch } from './link-buffer';

export const EV_ACCEPT = 1, EV_CONNECT = 2, EV_FRAME = 3, EV_DATA = 4, EV_END = 5, EV_CLOSE = 6,
  EV_DRAIN = 7, EV_BACKLOG = 8, EV_REFUSED = 9, EV_ACCEPT_ERROR = 10, EV_FRAME_CHECKED = 11, EV_TIMEOUT = 12;
export const CMD_END = -1, CMD_SHUTDOWN = -2, CMD_ABORT = -3, CMD_PAUSE = -4, CMD_RESUME = -5,
  CMD_DESTROY = -6, CMD_WATCH_DRAIN = -7, CMD_REF = -8, CMD_UNREF = -9;
export const SLOT_MASK = (1 << 22) - 1;

const EVENT_RECORDS = 4096;
const COMMAND_RECORDS = 8192;
/** Writes this large are sent from the caller's Buffer (referenced, not copied). */
const LINK_THRESHOLD = 64 * 1024;

/** Options of a Reactor. */
export interface ReactorOptions {
  /** Sub loops (epoll sets) connections are spread over. Default 1 (see README: why). */
  loops?: number;
  /**
   * Wait on each sub loop's epoll set in a thread of its own that hands ready lists to Node's
   * thread, instead of letting libuv watch it. Measured slower on one core (bench/RESULTS.md);
   * kept for measuring. Default false.
   */
  threaded?: boolean;
}

// The loop's clock for code running inside a batch (handlers, replies): read once per wake, on
// first use, instead of once per message (a clock read showed as ~2 % of a client's profile).
let inBatch = false;
let batchClock = -1;
/** performance.now(), or inside a batch the time it was first asked for during that batch. */
export function loopNow(): number {
  if (!inBatch) return performance.now();
  if (batchClock < 0) batchClock = performance.now();
  return batchClock;
}

/**
 * What the reactor dispatches a connection's events to. Connection implements it; the reactor
 * knows nothing else of connections, so dependencies point one way (connection -> reactor).
 * @internal
 */
export interface ReactorStream {
  readonly id: number;
  /** Set by protocol code that reads frames by offset in their block instead of as Buffers. */
  _frameAt: ((buf: Buffer, start: number, end: number, checked: boolean) => void) | undefined;
  _onFrameAt(block: Buffer, start: number, end: number, checked: boolean): void;
  _onFrame(frame: Buffer): void;
  _onConnect(errno: number): void;
  _onData(len: number): void;
  _onEnd(): void;
  _onDrain(watch: number): void;
  _onBacklog(n: number): void;
  _onTimeout(): void;
  _onClose(reason: number, errno: number): void;
  /** Its staged output now belongs to native code. */
  _handedOver(): void;
}

/** What the reactor dispatches a listener's events to (Server implements it). @internal */
export interface ReactorListener {
  _onAccept(id: number): void;
  _onRefused(): void;
  _onAcceptError(errno: number): void;
}

/** The native event loops (epoll) that connections and servers run on: one main loop accepting, `loops` sub loops reading and writing. Most programs use the default one (getDefaultReactor()). */
export class Reactor {
  /** @internal */ readonly native: NativeReactor;
  /** @internal */ readonly conns: (ReactorStream | undefined)[] = [];
  /** @internal */ readonly servers: (ReactorListener | undefined)[] = [];
  private readonly ev = new Int32Array(EVENT_RECORDS * 4);
  private readonly cmd = new Int32Array((COMMAND_RECORDS + 1) * 4); // + the count native reads
  private readonly blocks: (ArrayBuffer | undefined)[] = [];
  private readonly ext: Uint8Array[] = [];
  private ncmd = 0;
  /** Connections with bytes queued since the last hand-over (their writableLength counts them). */
  // Kept at its size between batches (a count, not length = 0): regrowing it every batch made
  // backing stores that scavenges in mid-batch copied, and those copies grew V8's young
  // generation at 5,000 connections.
  private readonly staged: (ReactorStream | undefined)[] = [];
  private nstaged = 0;
  private stagingId = -1;
  private stagingAb: ArrayBuffer = new ArrayBuffer(0);
  private stagingBuf: Buffer = Buffer.alloc(0);
  private readonly stageInfo: { buf: Buffer; pos: number } = { buf: Buffer.alloc(0), pos: 0 };
  private stagingPos = 0;
  private flushQueued = false;
  private dispatching = false;
  private closed = false;
  /** close() was called: listen() and connect() on it fail with ERR_LINKPOLL_SHUTDOWN. */
  get isClosed(): boolean { return this.closed; }
  private readonly flushCb = () => this.flush();

  constructor(options: ReactorOptions = {}) {
    const loops = options.loops ?? 1;
    if (!Number.isInteger(loops) || loops < 1 || loops > 64) throw outOfRange('loops must be an integer from 1 to 64');
    this.native = new native.Reactor(loops, (n) => this.onBatch(n), this.ev, this.cmd, this.blocks, this.ext, !!options.threaded);
  }

  private onBatch(n: number): number {
    bumpIoEpoch(); // native code has read since: readers' windows are stale (and again below)
    this.dispatching = true;
    inBatch = true;
    batchClock = -1;
    const ev = this.ev;
    const conns = this.conns;
    for (let p = 0, end = n * 4; p < end; p += 4) {
      const t = ev[p], id = ev[p + 1], a = ev[p + 2], b = ev[p + 3];
      try {
        const type = t & 0xff;
        if (type === EV_FRAME || type === EV_FRAME_CHECKED) {
          const c = conns[id & SLOT_MASK];
          if (c !== undefined && c.id === id) {
            if (c._frameAt !== undefined) c._onFrameAt(this.blockBuf(t >> 8), a, a + b, type === EV_FRAME_CHECKED);
            else c._onFrame(view(this.blocks[t >> 8]!, a, b));
          }
          continue;
        }
        this.other(type, id, a, b);
      } catch (err) {
        // A handler threw: finish the batch (other connections' events must not be lost), then
        // let it surface as an uncaught exception, as it would from a node:net handler.
        setImmediate(() => { throw err; });
      }
    }
    this.dispatching = false;
    inBatch = false;
    bumpIoEpoch(); // native code frees released input after this returns
    this.cmd[COMMAND_RECORDS * 4] = this.ncmd;
    this.ncmd = 0;
    this.handedOver();
    return 0;
  }

  // One Buffer over each whole block, for protocol code that reads frames by offset; rebuilt when
  // the block's id has been given to another block (its ArrayBuffer differs).
  // (`.buffer` of a typed array is a runtime call: the ArrayBuffer each was made from is kept.)
  private readonly blockBufs: (Buffer | undefined)[] = [];
  private readonly blockBufOf: (ArrayBuffer | undefined)[] = [];
  private blockBuf(id: number): Buffer {
    const ab = this.blocks[id]!;
    if (this.blockBufOf[id] !== ab) {
      this.blockBufs[id] = view(ab, 0, ab.byteLength);
      this.blockBufOf[id] = ab;
    }
    return this.blockBufs[id]!;
  }

  private other(type: number, id: number, a: number, b: number): void {
    if (type === EV_ACCEPT) {
      const s = this.servers[a];
      if (s) s._onAccept(id);
      else this.control(id, CMD_DESTROY);
      return;
    }
    if (type === EV_REFUSED) { this.servers[a]?._onRefused(); return; }
    if (type === EV_ACCEPT_ERROR) { this.servers[a]?._onAcceptError(b); return; }
    const c = this.conns[id & SLOT_MASK];
    if (c === undefined || c.id !== id) return;
    switch (type) {
      case EV_CONNECT: c._onConnect(a); break;
      case EV_DATA: c._onData(a); break;
      case EV_END: c._onEnd(); break;
      case EV_DRAIN: c._onDrain(a); break;
      case EV_BACKLOG: c._onBacklog(a); break;
      case EV_TIMEOUT: c._onTimeout(); break;
      case EV_CLOSE:
        this.conns[id & SLOT_MASK] = undefined;
        c._onClose(a, b);
        break;
    }
  }

  /** @internal */ noteStaged(c: ReactorStream): void {
    if (this.nstaged < this.staged.length) this.staged[this.nstaged] = c;
    else this.staged.push(c);
    this.nstaged++;
  }

  // Queued bytes now belong to native code; what the kernel does not take comes back as backlog.
  private handedOver(): void {
    const s = this.staged;
    for (let i = 0, n = this.nstaged; i < n; i++) { s[i]!._handedOver(); s[i] = undefined; }
    this.nstaged = 0;
  }

  /** @internal */ register(c: ReactorStream): void { this.conns[c.id & SLOT_MASK] = c; }

  /** @internal Queues `data` for connection `id` (copied into native staging memory, or linked if large). */
  write(id: number, data: Uint8Array): void {
    const n = data.length;
    if (n === 0) return;
    if (n >= LINK_THRESHOLD) {
      if (this.ncmd === 0) this.ext.length = 0;
      this.push(id, -1, this.ext.push(data) - 1, n);
      return;
    }
    if (this.stagingPos + n > this.stagingBuf.length) this.newStaging(n);
    this.stagingBuf.set(data, this.stagingPos);
    this.pushStaged(id, n);
  }

  /** @internal Native memory for n bytes of connection `id`'s output; sent with the next flush. */
  malloc(id: number, n: number): Buffer {
    if (this.stagingPos + n > this.stagingBuf.length) this.newStaging(n);
    const v = view(this.stagingAb, this.stagingPos, n);
    this.pushStaged(id, n);
    this.mallocEnd = this.stagingPos;
    this.mallocDropped = 0;
    return v;
  }
  // Where the last malloc() ended in the staging block, and how much of it mallocAck() dropped.
  private mallocEnd = -1;
  private mallocDropped = 0;

  /** @internal The staging block (whole) and the next free offset, with at least `min` bytes of room. */
  stage(min: number): { buf: Buffer; pos: number } {
    if (this.stagingPos + min > this.stagingBuf.length) this.newStaging(min);
    const st = this.stageInfo;
    st.buf = this.stagingBuf;
    st.pos = this.stagingPos;
    return st;
  }

  /** @internal Queues the n bytes written at the staging offset stage() gave. */
  commitStaged(id: number, n: number): void { this.pushStaged(id, n); }

  /**
   * @internal Keeps the first `keep` bytes of the last malloc for `id`. The rest is not sent, and
   * not handed out again either: the malloc's view may still be written to, and must not
   * overlap later output.
   */
  mallocAck(id: number, keep: number, size: number): boolean {
    const k = (this.ncmd - 1) * 4;
    const cmd = this.cmd;
    if (this.ncmd === 0 || cmd[k] !== id || cmd[k + 1] !== this.stagingId || keep > size || this.stagingPos !== this.mallocEnd ||
      cmd[k + 2] + cmd[k + 3] + this.mallocDropped !== this.stagingPos || cmd[k + 3] < size) return false;
    const drop = size - keep;
    cmd[k + 3] -= drop;
    this.mallocDropped += drop;
    return true;
  }

  private pushStaged(id: number, n: number): void {
    const k = (this.ncmd - 1) * 4;
    const cmd = this.cmd;
    if (this.ncmd > 0 && cmd[k] === id && cmd[k + 1] === this.stagingId && cmd[k + 2] + cmd[k + 3] === this.stagingPos) {
      cmd[k + 3] += n; // continues the previous write: one iovec
    } else {
      this.push(id, this.stagingId, this.stagingPos, n);
    }
    this.stagingPos += n;
  }

  private newStaging(min: number): void {
    this.stagingId = this.native.newStaging(min);
    this.stagingAb = this.blocks[this.stagingId]!;
    // The pool hands the same blocks back: their Buffers are kept (blockBuf), not made anew for
    // every 64 KiB of output. A new one is a young object, and every reply stored it into old
    // ones (the writer, stage()'s answer), each store a write barrier's slow path.
    this.stagingBuf = this.blockBuf(this.stagingId);
    this.stagingPos = 0;
  }

  /** @internal */ control(id: number, op: number): void { this.push(id, 0, 0, op); }

  private push(id: number, block: number, off: number, len: number): void {
    if (this.ncmd === COMMAND_RECORDS) this.flush();
    const k = this.ncmd++ * 4;
    const cmd = this.cmd;
    cmd[k] = id; cmd[k + 1] = block; cmd[k + 2] = off; cmd[k + 3] = len;
    if (!this.dispatching && !this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushCb);
    }
  }

  /** Sends everything queued now, instead of at the end of the tick. */
  flush(): void {
    this.flushQueued = false;
    const n = this.ncmd;
    if (n === 0 || this.closed) return;
    this.ncmd = 0;
    this.handedOver();
    this.native.flush(n);
    bumpIoEpoch();
  }

  /** Counters of the native loops (connections, bytes, syscalls, pool memory). */
  stats(): ReactorStats { return this.native.stats(); }

  /** Closes every listener and connection at once and frees the native loops. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.native.shutdown();
    bumpIoEpoch();
    for (const c of this.conns) if (c) c._onClose(9, 0);
    this.conns.length = 0;
  }
}

let defaultReactor: Reactor | undefined;

/** The process-wide reactor servers and dialers use unless given one (a new one once it was closed). */
export function getDefaultReactor(): Reactor {
  if (!defaultReactor || defaultReactor.isClosed) {
    const loops = process.env.LINKPOLL_LOOPS ? Number(process.env.LINKPOLL_LOOPS) : 1;
    defaultReactor = new Reactor({ loops, threaded: process.env.LINKPOLL_THREADED === '1' });
  }
  return defaultReactor;
}
