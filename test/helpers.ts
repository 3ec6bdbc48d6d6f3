// Shared test helpers: real sockets on loopback, no mocks.
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import * as assert from 'uvu/assert';
import * as rpc from '../src/rpc/internal';

export function frame(body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const f = Buffer.allocUnsafe(4 + b.length);
  f.writeUInt32BE(b.length, 0);
  b.copy(f, 4);
  return f;
}

/** A node:net client that collects u32be frames. */
export function rawClient(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host }, () => resolve(s));
    s.once('error', reject);
  });
}

/**
 * Calls `each` with every whole u32be frame (header included) a node:net socket receives, until
 * `each` returns false or the returned function is called.
 */
export function onFrames(s: net.Socket, each: (frame: Buffer) => boolean | void): () => void {
  let acc: Buffer = Buffer.alloc(0);
  const onData = (d: Buffer) => {
    acc = acc.length ? Buffer.concat([acc, d]) : d;
    while (acc.length >= 4 && acc.length >= 4 + acc.readUInt32BE(0)) {
      const n = 4 + acc.readUInt32BE(0);
      const f = Buffer.from(acc.subarray(0, n));
      acc = acc.subarray(n);
      if (each(f) === false) { s.off('data', onData); return; }
    }
  };
  s.on('data', onData);
  return () => s.off('data', onData);
}

/** Resolves with `count` u32be frames (whole, with header) read from a node:net socket. */
export function readFrames(s: net.Socket, count: number): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    onFrames(s, (f) => {
      out.push(f);
      if (out.length < count) return true;
      resolve(out);
      return false;
    });
    s.once('error', reject);
    s.once('close', () => { if (out.length < count) reject(new Error(`closed after ${out.length} of ${count} frames`)); });
  });
}

/**
 * A client that keeps `inFlight` TTHeader calls going (`call(seqid)` makes each) as a Kitex client
 * would: once a reply carries crrst it sends no more on the connection and ends it when every call
 * it sent is answered. Its counters, live.
 */
export function crrstClient(s: net.Socket, call: (seqid: number) => Buffer, inFlight: number): { sent: number; answered: number; crrst: number } {
  const st = { sent: 0, answered: 0, crrst: 0 };
  const send = () => { s.write(call(++st.sent)); };
  s.on('error', () => {});
  onFrames(s, (f) => {
    st.answered++;
    if (rpc.parseTTHeader(f).strKV.get('crrst') === '1') st.crrst++;
    if (st.crrst === 0) send();
    else if (st.answered === st.sent) s.end();
  });
  for (let i = 0; i < inFlight; i++) send();
  return st;
}

export function until(cond: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

export function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

export function once<T = unknown>(em: NodeJS.EventEmitter, ev: string): Promise<T> {
  return new Promise((resolve) => em.once(ev, (v: T) => resolve(v)));
}

/** A whole TTHeader CALL frame (with a ToMethod int header), as a Kitex client sends one. */
export function ttheaderCall(method: rpc.MethodSpec, seqid: number, args: Record<string, unknown>): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  const start = rpc.beginTTHeader(w, seqid, [[rpc.IntKey.ToMethod, method.name]]);
  w.messageBegin(method.name, rpc.MessageType.CALL, seqid);
  w.struct(method.args, args);
  rpc.endFrame(w, start);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/**
 * A seeded pseudo-random source for model checks: rnd(n) is an integer in [0, n). The same seed
 * gives the same sequence, so a failure names its seed and replays.
 */
export function seededRandom(seed: number): (n: number) => number {
  let x = seed;
  return (n: number) => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x % n; };
}

/** Awaits f() and asserts it rejects with an error of this `code`. */
export async function rejectsWith(f: () => Promise<unknown>, code: string): Promise<void> {
  const e = await f().then(() => undefined, (err: NodeJS.ErrnoException) => err);
  assert.is(e?.code, code);
}

/** Calls `each` with every complete line a child prints to `stream`. */
export function onLines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let partial = '';
  stream.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) each(l);
  });
}

/** The port a child process says it listens on (a line "listening PORT"). */
export function listeningPort(child: ChildProcess, name = 'the child'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const said: string[] = [];
    onLines(child.stdout!, (l) => {
      said.push(l);
      const m = /^listening (\d+)/.exec(l);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${said.join('\n')}`)));
  });
}

/** Debian's python3 with python3-thrift, if this machine has it. */
export const pythonThrift = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import thrift'], { stdio: 'ignore' }).status === 0);
const thriftCompiler = spawnSync('thrift', ['--version'], { stdio: 'ignore' }).status === 0;

/**
 * Python for the IDL files from Apache's compiler (thrift --gen py), in a temporary folder;
 * undefined, the test skipped visibly, without python3-thrift or the compiler.
 */
export function generatePython(...idlFiles: string[]): string | undefined {
  if (!pythonThrift || !thriftCompiler) {
    console.log('  SKIPPED (visible): needs python3-thrift and the thrift compiler (Debian thrift-compiler); .ci/run installs them with apt when it can');
    return undefined;
  }
  const gen = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-gen-'));
  for (const f of idlFiles) {
    const g = spawnSync('thrift', ['--gen', 'py', '-out', gen, f], { encoding: 'utf8' });
    assert.is(g.status, 0, g.stderr);
  }
  return gen;
}
