// Loads the native addon: a prebuilt binary from prebuilds/ when one matches, else the one
// node-gyp built at install. On anything but Linux it explains instead of failing obscurely.
import * as path from 'node:path';

export interface NativeReactor {
  listen(host: string, port: number, path: string, backlog: number, reusePort: boolean,
    ipv6Only: boolean, opts: number[], maxConnections: number, frameBudget: number): number;
  listenerAddress(id: number): [string, string, number] | null;
  closeListener(id: number): void;
  setListenerRef(id: number, ref: boolean): void;
  connect(host: string, port: number, path: string, opts: number[]): number;
  setOptions(id: number, opts: number[]): boolean;
  flush(commands: number): void;
  newStaging(minBytes: number): number;
  address(id: number, peer: boolean): [string, string, number] | undefined;
  counters(id: number): [bytesRead: number, bytesWritten: number, unconsumedInput: number, unsentOutput: number] | undefined;
  linkInfo(id: number): [deliveryRate: number, appLimited: 0 | 1, minRttUs: number, bytesAcked: number] | undefined;
  reader(id: number): NativeLinkBuffer | null;
  stats(): ReactorStats;
  shutdown(): void;
}

/** Counters of a reactor's native loops (Reactor.stats()). */
export interface ReactorStats {
  connections: number; accepted: number; refused: number; reads: number; writes: number;
  frames: number; batches: number; bytesIn: number; bytesOut: number;
  poolLiveBytes: number; poolLiveBlocks: number; poolCachedBytes: number; exposedBlocks: number;
}

export interface NativeLinkBuffer {
  len(): number;
  pending(): number;
  peek(n: number): ArrayBuffer | null;
  next(n: number): ArrayBuffer | null;
  window(consumed: number): ArrayBuffer | null;
  skip(n: number): boolean;
  indexOf(byte: number): number;
  copy(target: Buffer, n: number): boolean;
  slice(n: number): NativeLinkBuffer | null;
  release(consumed?: number): void;
  mallocWindow(reserved: number, min: number): ArrayBuffer;
  mallocAck(n: number, reserved?: number): boolean;
  flush(reserved?: number): void;
  append(data: Uint8Array): void;
  writeBinary(data: Uint8Array): void;
  valid(): boolean;
  dispose(): void;
}

export interface NativeAddon {
  Reactor: new (loops: number, onBatch: (n: number) => number, events: Int32Array,
    commands: Int32Array, blocks: (ArrayBuffer | undefined)[], ext: Uint8Array[], threaded?: boolean) => NativeReactor;
  LinkBuffer: new () => NativeLinkBuffer;
  setScratch(a: Int32Array): void;
  externalBuffers: boolean;
  /** native/framer.h TTHeaderWellFormed, for tests. */
  ttheaderWellFormed(frame: Uint8Array): boolean;
  poolStats(): { liveBytes: number; liveBlocks: number; cachedBytes: number };
}

function load(): NativeAddon {
  if (process.platform !== 'linux') {
    const e = new Error(`linkpoll needs Linux (epoll); this is ${process.platform}. ` +
      'Possible solutions: run on Linux (a container or VM), or use node:net on this platform.');
    (e as NodeJS.ErrnoException).code = 'ERR_LINKPOLL_UNSUPPORTED_PLATFORM';
    throw e;
  }
  const root = path.join(__dirname, '..', '..');
  // LINKPOLL_NATIVE: an addon built elsewhere (the AddressSanitizer build of test/native/asan.sh).
  if (process.env.LINKPOLL_NATIVE) return require(path.resolve(process.env.LINKPOLL_NATIVE)) as NativeAddon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('node-gyp-build')(root) as NativeAddon;
  } catch (cause) {
    const e = new Error('linkpoll could not load its native addon.\n' +
      'Possible solutions:\n' +
      '- run `npm install` again and read the node-gyp output (a C++ compiler, make and python3 are needed);\n' +
      '- if npm did not run install scripts (`--ignore-scripts`, or npm\'s allowScripts policy), allow\n' +
      '  linkpoll\'s (`npm install-scripts approve linkpoll`) or build it: `npm rebuild linkpoll`;\n' +
      '- `npm rebuild linkpoll` after changing the Node.js version;\n' +
      `- check that ${root}/build/Release/linkpoll.node or a file under prebuilds/ exists.\n` +
      `Cause: ${(cause as Error).message}`, { cause });
    (e as NodeJS.ErrnoException).code = 'ERR_LINKPOLL_NATIVE_LOAD';
    throw e;
  }
}

export const native: NativeAddon = load();
if (!native.externalBuffers) {
  process.emitWarning('linkpoll: this runtime refuses external ArrayBuffers (V8 memory cage, e.g. Electron); ' +
    'native buffers are V8 ArrayBuffers instead: the same API and lifetime rule, without memory pooling',
  { code: 'LINKPOLL_NO_EXTERNAL_BUFFERS' });
}
/** Offsets of views returned by native calls (one slot, read right after each call). */
export const scratch = new Int32Array(4);
native.setScratch(scratch);
