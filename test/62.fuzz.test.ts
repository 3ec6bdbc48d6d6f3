// Mutation fuzzing of the TypeScript parsers of network bytes (fixed seeds here; longer runs:
// node dist/test/fuzz/run.js --seconds 300), then the same mutated bytes sent over real sockets
// to an RPC server and to a GeeCache node's HTTP side: they must answer or close, and keep
// serving a well-behaved client.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as net from 'node:net';
import * as rpc from '../src/rpc/internal';
import { fuzz, mutate, Rng } from './fuzz/mutate';
import { targets, ttheaderFrame, thriftMessage } from './fuzz/targets';
import { native } from '../src/native';
import { Registry } from '../examples/geecache/geecache';
import { CacheNodeServer } from '../examples/geecache/node-server';
import { groupCacheService } from '../examples/geecache/peers';

for (const t of targets) {
  test(`fuzz ${t.name}: 40,000 mutated inputs parse or give a protocol error`, () => {
    const rep = fuzz(t, 40000, 12345);
    assert.is(rep.findings.length, 0, `${rep.findings.map((f) => `${f.input}\n${f.error}`).join('\n\n')}`);
    assert.ok(rep.ok > 100 && (t.name === 'detect-transport' || rep.rejected > 100), `mutations reach both outcomes (${rep.ok} ok, ${rep.rejected} rejected)`);
  });
}

test('the native TTHeader check (framer.h) accepts exactly the frames parseTTHeader accepts, and the parse it lets through is the same', () => {
  // Frames that pass it skip parseTTHeader's checks: a frame it passed wrongly would reach code
  // that trusts it. Apache THeader frames and compressed ones (transforms) are left to the
  // JavaScript parser (never passed).
  const acl = Buffer.from([0, 0, 0x11, 0, 5, ...Buffer.from('token'), 0x10, 0, 1, 0, 9, 0, 3, ...Buffer.from('Get'), 0, 0]);
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  const at = rpc.beginTTHeader(w, 9, undefined, undefined, acl.subarray(0, acl.length - (acl.length % 4)));
  w.raw(ttheaderFrame.seeds[0]!.subarray(rpc.parseTTHeader(ttheaderFrame.seeds[0]!).payloadStart));
  rpc.endFrame(w, at);
  const seeds = [...ttheaderFrame.seeds, Buffer.from(w.buf.subarray(0, w.pos))];
  const rng = new Rng(2024);
  let passed = 0, refused = 0;
  for (let i = 0; i < 100000; i++) {
    const f = i < seeds.length ? seeds[i]! : mutate(seeds[rng.below(seeds.length)]!, seeds, rng);
    let js: rpc.HeaderInfo | undefined;
    try { js = rpc.parseTTHeader(f); void js.intKV; } catch { js = undefined; }
    const ok = native.ttheaderWellFormed(f);
    const want = js !== undefined && f.readUInt16BE(4) === rpc.TTHEADER_MAGIC && js.transforms === 0;
    if (ok !== want) assert.unreachable(`native says ${ok}, parseTTHeader ${want} for ${f.toString('hex')}`);
    if (!ok) { refused++; continue; }
    passed++;
    const c = rpc.parseTTHeader(f, 0, f.length, undefined, true);
    const same = c.flags === js!.flags && c.seqid === js!.seqid && c.payloadStart === js!.payloadStart && c.payloadEnd === js!.payloadEnd &&
      JSON.stringify([...c.intKV, ...c.strKV, c.aclToken ?? '']) === JSON.stringify([...js!.intKV, ...js!.strKV, js!.aclToken ?? '']);
    if (!same) assert.unreachable(`a checked parse differs for ${f.toString('hex')}`);
  }
  assert.ok(passed > 5000 && refused > 5000, `mutations reach both outcomes (${passed} passed, ${refused} refused)`);
});

/** Sends `bytes` on a fresh connection; resolves with what came back when the peer closed or went quiet. */
function exchange(port: number, bytes: Buffer, quietMs = 60): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => { clearTimeout(timer); s.destroy(); resolve({ data: Buffer.concat(chunks), closed }); };
    const quiet = () => { clearTimeout(timer); timer = setTimeout(() => done(false), quietMs); };
    s.on('connect', () => { s.write(bytes); quiet(); });
    s.on('data', (d) => { chunks.push(d); quiet(); });
    s.on('close', () => done(true));
    s.on('error', () => {});
  });
}

test('an RPC server fed 300 mutated frames over real sockets keeps serving', async () => {
  const srv = new rpc.RpcServer({ logger: null, maxFrameSize: 1 << 16 });
  srv.register(groupCacheService(), { Get: (a: Record<string, unknown>) => ({ value: Buffer.from(String((a.req as { key?: string } | undefined)?.key)) }) });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const rng = new Rng(99);
  const seeds = [...ttheaderFrame.seeds, ...thriftMessage.seeds.map((m) => Buffer.concat([Buffer.from([0, 0, 0, 0]), m]))];
  for (const s of seeds.slice(ttheaderFrame.seeds.length)) s.writeUInt32BE(s.length - 4, 0); // framed
  for (let i = 0; i < 300; i += 10) {
    await Promise.all(Array.from({ length: 10 }, () => exchange(port, mutate(seeds[rng.below(seeds.length)]!, seeds, rng), 20)));
  }
  const c = new rpc.RpcClient({ service: groupCacheService(), targets: [`127.0.0.1:${port}`] });
  assert.equal(await c.call('Get', { req: { group: 'g', key: 'still here' } }), { value: Buffer.from('still here') });
  assert.ok(srv.stats().protocolErrors > 0, 'the mutations were seen as protocol errors');
  c.close();
  await srv.close({ timeout: 200 });
});

test('a GeeCache node fed 300 mutated HTTP requests answers each with a valid response or closes', async () => {
  const registry = new Registry();
  registry.newGroup('scores', 1 << 12, (key) => { if (key === 'Tom') return '630'; throw new Error(`${key} not exist`); }, { log: () => {} });
  const node = new CacheNodeServer(registry);
  const { port } = await node.listen(0);
  const seeds = [
    'GET /_geecache/scores/Tom HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /_geecache/scores/J%20ack HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nGET /_geecache/nope/x HTTP/1.1\r\n\r\n',
    'HEAD /_stats HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc',
    'GET /_geecache/scores/%E2%9C%93 HTTP/1.1\r\nConnection: close\r\n\r\n',
  ].map((s) => Buffer.from(s, 'latin1'));
  const rng = new Rng(2024);
  let answered = 0;
  for (let i = 0; i < 300; i += 10) {
    const res = await Promise.all(Array.from({ length: 10 }, () => exchange(port, mutate(seeds[rng.below(seeds.length)]!, seeds, rng), 30)));
    for (const r of res) {
      if (r.data.length === 0) continue; // closed, or waiting for the rest of a request
      answered++;
      const text = r.data.toString('latin1');
      assert.match(text, /^HTTP\/1\.1 (200|400|404|405|431|500) /, `not an HTTP response: ${JSON.stringify(text.slice(0, 80))}`);
    }
  }
  assert.ok(answered > 50, `${answered} of 300 got answers`);
  const ok = await exchange(port, seeds[0]!);
  assert.match(ok.data.toString('latin1'), /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\n630$/);
  await node.close();
});

test('a GeeCache node refuses a request larger than it may buffer (400, closed) instead of waiting forever', async () => {
  const registry = new Registry();
  registry.newGroup('scores', 1 << 12, () => '630', { log: () => {} });
  const node = new CacheNodeServer(registry);
  const { port } = await node.listen(0);
  // 20 KB of headers and a 50 KB body: each under the 64 KB limit, together over it.
  const head = `GET /_geecache/scores/Tom HTTP/1.1\r\nX-Pad: ${'p'.repeat(20000)}\r\nContent-Length: 50000\r\n\r\n`;
  const r = await exchange(port, Buffer.concat([Buffer.from(head), Buffer.alloc(50000, 0x61)]), 300);
  assert.match(r.data.toString('latin1'), /^HTTP\/1\.1 400 /);
  assert.ok(r.closed);
  const ok = await exchange(port, Buffer.from('GET /_geecache/scores/Tom HTTP/1.1\r\n\r\n'));
  assert.match(ok.data.toString('latin1'), /^HTTP\/1\.1 200 OK/);
  await node.close();
});

test.run();
