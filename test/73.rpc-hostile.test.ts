// RpcServer against clients that misbehave or merely differ: half-closers, pipeliners that never
// read, clients still sending while the server closes, and first bytes that cannot be a request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as net from 'node:net';
import { LinkBuffer } from '../src';
import * as rpc from '../src/rpc/internal';
import { until, rawClient, readFrames, ttheaderCall, onFrames, crrstClient } from './helpers';

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures');
const idl = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'everything.thrift'), 'utf8'));
const Kitchen = idl.services.Kitchen!;
const slowSpec = Kitchen.methods.slow!;

async function kitchen(opts: rpc.RpcServerOptions = {}) {
  const srv = new rpc.RpcServer({ logger: null, ...opts });
  srv.register(Kitchen, {
    echo: (a) => a.e,
    slow: (a) => new Promise((r) => setTimeout(() => r(`slept ${a.ms}`), a.ms as number)),
  });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  return { srv, port };
}

/** The reply's seqid. */
function replyOf(f: Buffer): { seqid: number } {
  return { seqid: rpc.parseTTHeader(f).seqid };
}

test('a client that sends its requests and then FIN gets every reply (asynchronous handler), then the close', async () => {
  const { srv, port } = await kitchen();
  // Five single requests, each on a connection of its own.
  const singles = await Promise.all([1, 2, 3, 4, 5].map(async (i) => {
    const s = await rawClient(port);
    const got = readFrames(s, 1);
    s.end(ttheaderCall(slowSpec, i, { ms: 20 }));
    const [f] = await got;
    await new Promise((r) => s.once('close', r));
    return replyOf(f!).seqid;
  }));
  assert.equal(singles, [1, 2, 3, 4, 5]);
  // A hundred pipelined, then FIN.
  const s = await rawClient(port);
  const got = readFrames(s, 100);
  s.end(Buffer.concat(Array.from({ length: 100 }, (_, i) => ttheaderCall(slowSpec, 100 + i, { ms: 5 + (i % 7) }))));
  const frames = await got;
  assert.equal(frames.map((f) => replyOf(f).seqid), Array.from({ length: 100 }, (_, i) => 100 + i));
  await new Promise((r) => s.once('close', r));
  await until(() => srv.stats().connections === 0, 2000, 'the server to close its side');
  await srv.close();
});

test('a pipelining client that never reads: the RPC server stops reading it and holds little', async () => {
  const { srv, port } = await kitchen();
  const s = await rawClient(port);
  s.pause();
  const big = { text: 'v'.repeat(4000) }; // ~4 KB replies to ~4 KB requests
  const req = ttheaderCall(Kitchen.methods.echo!, 1, { e: big });
  let sent = 0;
  const pump = () => { while (sent < 200000 && !s.destroyed) { sent++; if (!s.write(req)) { s.once('drain', pump); return; } } };
  pump();
  await until(() => srv.server.connectionCount === 1);
  const c = [...srv.server.connections][0]!;
  let last = -1;
  await until(() => { const r = c.bytesRead; const still = r === last; last = r; return still && r > 0; }, 20000, 'reading to stop');
  assert.ok(c.bytesRead < 64 * 1024 * 1024, `read ${c.bytesRead}`);
  assert.ok(c.writableLength < 2 * 1024 * 1024, `backlog ${c.writableLength}`);
  s.destroy();
  await srv.close();
});

test('a client that takes no reply for writeTimeout is closed', async () => {
  const { srv, port } = await kitchen({ writeTimeout: 300 });
  const s = await rawClient(port);
  s.pause();
  s.on('error', () => {});
  const req = ttheaderCall(Kitchen.methods.echo!, 1, { e: { text: 'w'.repeat(60000) } });
  let sent = 0;
  const pump = () => { while (sent < 2000 && !s.destroyed) { sent++; if (!s.write(req)) { s.once('drain', pump); return; } } };
  pump();
  await until(() => srv.server.connectionCount === 1);
  const c = [...srv.server.connections][0]!;
  const reason = await c.closed();
  assert.is((reason as NodeJS.ErrnoException | undefined)?.code, 'ETIMEDOUT');
  s.destroy();
  await srv.close();
});

test('graceful close under load: every request sent is answered (with crrst), the client moves away, then the server closes', async () => {
  const { srv, port } = await kitchen();
  const s = await rawClient(port);
  const st = crrstClient(s, (seq) => ttheaderCall(slowSpec, seq, { ms: 1 }), 64); // 64 in flight, refilled as answered
  await until(() => st.answered > 500, 10000, 'load');
  const t0 = Date.now();
  await srv.close({ timeout: 5000 });
  assert.ok(Date.now() - t0 < 3000, 'closed once the client left, not at the deadline');
  await until(() => s.destroyed || s.readableEnded, 2000, 'the client connection to end');
  assert.is(st.answered, st.sent, `answered ${st.answered} of ${st.sent}`);
  assert.ok(st.crrst > 0, 'replies sent while closing carry crrst');
  s.destroy();
});

test('graceful close: a client that ignores crrst is served until 3/4 of the timeout; nothing read is left unanswered', async () => {
  const { srv, port } = await kitchen();
  const s = await rawClient(port);
  let seq = 0, answered = 0;
  const send = () => { if (!s.destroyed && s.writable) s.write(ttheaderCall(slowSpec, ++seq, { ms: 1 })); };
  s.on('error', () => {});
  onFrames(s, () => { answered++; send(); });
  for (let i = 0; i < 16; i++) send();
  await until(() => answered > 200, 10000, 'load');
  const t0 = Date.now();
  const before = answered;
  await srv.close({ timeout: 800 });
  const took = Date.now() - t0;
  assert.ok(took >= 500 && took < 2000, `closed after ${took} ms`);
  assert.ok(answered > before + 50, 'requests kept being answered while closing');
  s.destroy();
});

test('first bytes that cannot be a request are refused at once, not after the read timeout', async () => {
  const errors: string[] = [];
  const { srv, port } = await kitchen({ maxFrameSize: 1 << 20, readTimeout: 10000 });
  srv.on('protocolError', (e: Error) => errors.push(e.message));
  const cases: [string, Buffer][] = [
    ['a zero-length frame', Buffer.from([0, 0, 0, 0])],
    ['a frame header over maxFrameSize', Buffer.from([0x7f, 0xff, 0xff, 0xf0])],
    ['a framed body that begins like zlib', Buffer.from([0, 0, 0, 0x40, 0x78, 0xda, 0x63, 0x60])],
    ['random text', Buffer.from('hello, is this thing on?')],
  ];
  for (const [what, bytes] of cases) {
    const s = await rawClient(port);
    const t0 = Date.now();
    s.write(bytes);
    await new Promise((r) => s.once('close', r));
    assert.ok(Date.now() - t0 < 1000, `${what}: closed after ${Date.now() - t0} ms`);
  }
  assert.is(errors.length, cases.length);
  assert.match(errors[0]!, /empty frame/);
  assert.match(errors[1]!, /exceeded maxFrameSize/);
  await srv.close();
});

test('protocol error offsets count from the start of each message, not of the buffer', async () => {
  const errors: string[] = [];
  const { srv, port } = await kitchen();
  srv.on('protocolError', (e: Error) => errors.push(e.message));
  // Framed echo calls whose struct claims a string longer than the frame: three alike, one write.
  const bad = (seq: number) => {
    const w = new rpc.ThriftWriter(Buffer.alloc(0));
    w.messageBegin('echo', rpc.MessageType.CALL, seq);
    const body = Buffer.concat([Buffer.from(w.buf.subarray(0, w.pos)), Buffer.from([12, 0, 1, 11, 0, 1, 0, 0, 0, 50, 0x41])]);
    const f = Buffer.alloc(4 + body.length);
    f.writeUInt32BE(body.length, 0);
    body.copy(f, 4);
    return f;
  };
  const s = await rawClient(port);
  s.write(Buffer.concat([bad(1), bad(2), bad(3)]));
  await until(() => errors.length === 3, 3000, 'three errors');
  const at = errors.map((m) => /at (\d+)/.exec(m)?.[1]);
  assert.ok(at[0] !== undefined, errors[0]);
  assert.equal(at, [at[0], at[0], at[0]], errors.join(' | '));
  s.destroy();
  await srv.close();
});

test('a method the IDL declares but no handler implements: register() says which, a call is answered "not implemented" by name', async () => {
  const logs: string[] = [];
  const srv = new rpc.RpcServer({ logger: { warn: (m) => logs.push(m) } });
  srv.register(Kitchen, { echo: (a) => a.e });
  assert.equal(logs, ['linkpoll rpc: Kitchen has no handler for nothing, fail, fire, slow: calls to them are answered "not implemented"']);
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${port}` });
  try {
    await c.call('slow', { ms: 1 });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, rpc.TApplicationException);
    assert.is((e as Error).message, 'Kitchen.slow is not implemented');
    assert.is((e as rpc.TApplicationException).type, rpc.AppExceptionType.UNKNOWN_METHOD);
  }
  c.close();
  await srv.close();
});

test('an unframed message arriving in pieces is walked once, not again from its start at every piece', () => {
  // Echo args with a list of 400,000 strings (~4.4 MB), fed to the cutter 64 KiB at a time.
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  w.messageBegin('echo', rpc.MessageType.CALL, 1);
  w.struct(Kitchen.methods.echo!.args, { e: { tags: new Set(Array.from({ length: 400000 }, (_, i) => `t${i}`)) } });
  const msg = Buffer.from(w.buf.subarray(0, w.pos));
  const lb = new LinkBuffer();
  let looked = 0; // bytes the cutter asked the reader for
  const peek = lb.peek.bind(lb);
  lb.peek = (n: number) => { looked += n; return peek(n); };
  const cutter = new rpc.UnframedCutter(16 << 20);
  let got: Buffer | null = null;
  for (let at = 0; at < msg.length && got === null; at += 65536) {
    lb.write(msg.subarray(at, Math.min(msg.length, at + 65536)));
    lb.flush();
    got = cutter.next(lb);
  }
  assert.ok(got !== null, 'the message was cut');
  assert.is(got!.length, msg.length);
  assert.ok(got!.equals(msg));
  assert.ok(looked < 3 * msg.length, `looked at ${looked} bytes for a message of ${msg.length}`);
});

test('an unframed message that stops arriving is closed at the read deadline', async () => {
  const { srv, port } = await kitchen({ readTimeout: 300 });
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  w.messageBegin('echo', rpc.MessageType.CALL, 1);
  w.struct(Kitchen.methods.echo!.args, { e: { text: 'x'.repeat(200000) } });
  const s = await rawClient(port);
  s.on('error', () => {});
  const t0 = Date.now();
  s.write(Buffer.from(w.buf.subarray(0, 150000))); // three quarters of it, then nothing
  await new Promise((r) => s.once('close', r));
  const took = Date.now() - t0;
  assert.ok(took >= 250 && took < 2000, `closed after ${took} ms`);
  await srv.close();
});

test("the RPC client's queued calls to a server that takes none of them: the connection closes at writeTimeout", async () => {
  // A server that accepts and never reads.
  const held: net.Socket[] = [];
  const srv = net.createServer((s) => { s.pause(); held.push(s); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const c = new rpc.RpcClient({ service: Kitchen, targets: `127.0.0.1:${port}`, timeout: 0, writeTimeout: 300 });
  const big = { text: 'q'.repeat(1 << 20) };
  const calls = Array.from({ length: 40 }, () => c.call('echo', { e: big }).then(() => 'answered', (e: NodeJS.ErrnoException & { timeout?: string }) => `${e.code}/${e.timeout}`));
  const t0 = Date.now();
  const outcomes = await Promise.all(calls);
  assert.ok(Date.now() - t0 < 5000, 'the calls failed at the write timeout, not never');
  assert.ok(outcomes.every((o) => o === 'ETIMEDOUT/write'), outcomes.join(' '));
  c.close();
  for (const s of held) s.destroy();
  srv.close();
});

test.run();
