// GeeCache: the cache pieces in-process, then a real 3-node cluster in child processes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as path from 'node:path';
import * as net from 'node:net';
import * as http from 'node:http';
import * as zlib from 'node:zlib';
import { recordValue } from '../examples/geecache/main';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { LRU } from '../examples/geecache/lru';
import { HashRing, crc32 } from '../examples/geecache/consistenthash';
import { Registry } from '../examples/geecache/geecache';
import { ByteView } from '../examples/geecache/byteview';
import { queryHttp, queryRpc } from '../examples/geecache/client';
import { until, seededRandom, rawClient, readFrames, ttheaderCall, crrstClient } from './helpers';
import * as rpc from '../src/rpc/internal';
import { groupCacheService, PeerPool } from '../examples/geecache/peers';
import { CacheNodeServer } from '../examples/geecache/node-server';

test('LRU evicts by bytes (key + value length), oldest first, and calls back', () => {
  const evicted: string[] = [];
  const lru = new LRU<Buffer>(20, (k) => evicted.push(k));
  lru.add('k1', Buffer.alloc(6)); // 8 bytes
  lru.add('k2', Buffer.alloc(6)); // 16
  lru.get('k1'); // k1 is now the most recent
  lru.add('k3', Buffer.alloc(6)); // 24 > 20: k2 goes
  assert.equal(evicted, ['k2']);
  assert.ok(lru.get('k1') && lru.get('k3'));
  assert.is(lru.usedBytes, 16);
  lru.add('k1', Buffer.alloc(2)); // update shrinks
  assert.is(lru.usedBytes, 12);
  const unlimited = new LRU<Buffer>(0);
  for (let i = 0; i < 1000; i++) unlimited.add(`k${i}`, Buffer.alloc(100));
  assert.is(unlimited.size, 1000);
});

test('consistent hashing: the Go original\'s own test, and CRC-32 IEEE', () => {
  // geecache day 4 consistenthash_test.go: hash = atoi, 3 replicas, nodes 6, 4, 2.
  const ring = new HashRing(3, (d) => Number(d.toString()));
  ring.add('6', '4', '2');
  const cases: Record<string, string> = { 2: '2', 11: '2', 23: '4', 27: '2' };
  for (const [k, v] of Object.entries(cases)) assert.is(ring.get(k), v, `key ${k}`);
  ring.add('8');
  assert.is(ring.get('27'), '8');
  assert.is(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.is(new HashRing().get('x'), '');
});

test('groups: empty key is an error, values are copies, singleflight loads once, two registries are separate', async () => {
  const a = new Registry();
  const b = new Registry();
  let loads = 0;
  const g = a.newGroup('scores', 1024, async (k) => { loads++; await new Promise((r) => setTimeout(r, 20)); return `v-${k}`; }, { log: () => {} });
  b.newGroup('other', 0, (k) => k, { log: () => {} });
  assert.ok(a.getGroup('scores'));
  assert.not.ok(a.getGroup('other'));
  await g.get('').then(() => assert.unreachable(), (e) => assert.match(e.message, /key is required/));
  const views = await Promise.all(Array.from({ length: 50 }, () => g.get('x')));
  assert.is(loads, 1);
  assert.is(g.stats().loadsDeduped, 49);
  const copy = views[0].byteSlice();
  copy.fill(0);
  assert.is((await g.get('x')).toString(), 'v-x');
  assert.instance(views[0], ByteView);
});

// ---- a real cluster ----

const mainJs = path.join(__dirname, '..', 'examples', 'geecache', 'main.js');

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<net.Server>((r) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => r(s)); })));
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

interface Node { port: number; child: ChildProcess; out: string[] }

async function startNode(port: number, peers: string, extra: string[]): Promise<Node> {
  const child = spawn(process.execPath, [mainJs, '--port', String(port), '--peers', peers, '--db-delay-ms', '30', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!; // a line can arrive in two chunks
      out.push(...lines.filter(Boolean));
      if (out.some((l) => l.includes('is running at'))) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
    child.once('exit', (code) => reject(new Error(`node ${port} exited with ${code}: ${out.join('\n')}`)));
  });
  return { port, child, out };
}

function stop(nodes: Node[]): Promise<unknown> {
  return Promise.all(nodes.map((n) => new Promise((r) => { if (n.child.exitCode !== null || n.child.signalCode !== null) r(null); else { n.child.once('exit', r); n.child.kill('SIGTERM'); } })));
}

for (const transport of ['http', 'rpc'] as const) {
  test(`cluster over ${transport}: every key through any node; one DB miss under 100 concurrent gets; errors; owner killed`, async () => {
    const ports = await freePorts(3);
    const peers = ports.map((p) => `127.0.0.1:${p}`).join(',');
    const extra = transport === 'rpc' ? ['--rpc'] : [];
    const nodes = await Promise.all(ports.map((p) => startNode(p, peers, extra)));
    const keepAlive = setInterval(() => {}, 1000); // a hung step then fails by timeout, visibly
    try {
      const expect: Record<string, string> = { Tom: '630', Jack: '589', Sam: '567' };
      for (const n of nodes) {
        for (const [k, v] of Object.entries(expect)) {
          assert.is((await queryHttp(`127.0.0.1:${n.port}`, 'scores', k)).toString(), v, `HTTP ${k} via ${n.port}`);
          assert.is((await queryRpc(`127.0.0.1:${n.port}`, 'scores', k)).toString(), v, `RPC ${k} via ${n.port}`);
        }
      }
      // Each key reached the database once, on its owner, for the whole cluster.
      const dbLines = () => nodes.flatMap((n) => n.out.filter((l) => l.startsWith('[SlowDB]')));
      await until(() => dbLines().length >= 3); // the children's stdout arrives on its own time
      await new Promise((r) => setTimeout(r, 100));
      assert.is(dbLines().length, 3, dbLines().join('\n'));

      // 100 concurrent gets of one new key through one node: one DB search.
      const key = 'concurrent key/with space';
      const res = await Promise.allSettled(Array.from({ length: 100 }, () => queryHttp(`127.0.0.1:${nodes[0].port}`, 'scores', key)));
      assert.ok(res.every((r) => r.status === 'rejected' && /500 concurrent key\/with space not exist/.test(String(r.reason))), String((res[0] as PromiseRejectedResult).reason));
      const searches = () => dbLines().filter((l) => l === `[SlowDB] search key ${key}`);
      await until(() => searches().length >= 1);
      await new Promise((r) => setTimeout(r, 300)); // later (duplicate) searches would show by now
      // The owner searches once; a non-owner front node falls back to a local load once, too.
      assert.ok(searches().length >= 1 && searches().length <= 2, `searches: ${searches().length}`);

      // Documented errors over both transports.
      await queryHttp(`127.0.0.1:${nodes[1].port}`, 'nope', 'Tom').then(() => assert.unreachable(), (e) => assert.is(e.message, '404 no such group: nope'));
      await queryRpc(`127.0.0.1:${nodes[1].port}`, 'nope', 'Tom').then(() => assert.unreachable(), (e) => assert.is(e.message, 'no such group: nope'));
      await queryRpc(`127.0.0.1:${nodes[1].port}`, 'scores', 'Nobody').then(() => assert.unreachable(), (e) => {
        assert.is(e.message, 'Nobody not exist');
        assert.is(e.code, 'ERR_LINKPOLL_REMOTE'); // a loader error, not a transport failure
      });

      // Kill the owner of Tom: the others load locally and keep answering.
      const ownerOfTom = nodes.find((n) => n.out.some((l) => l === '[SlowDB] search key Tom'))!;
      ownerOfTom.child.kill('SIGKILL');
      await until(() => ownerOfTom.child.signalCode !== null);
      for (const n of nodes.filter((x) => x !== ownerOfTom)) {
        const got = await Promise.race([queryHttp(`127.0.0.1:${n.port}`, 'scores', 'Tom'), new Promise((_, rej) => setTimeout(() => rej(new Error(`node ${n.port} did not answer`)), 5000))]);
        assert.is(String(got), '630');
      }
    } finally {
      clearInterval(keepAlive);
      await stop(nodes);
    }
  });
}

/** GET `path` from a node with `headers`: status, headers and the body as sent (not decoded). */
function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  });
}

for (const transport of ['http', 'rpc'] as const) {
  test(`--compress zlib over ${transport}: 16 KiB values cross between peers compressed and arrive whole; HTTP clients get gzip only when they ask`, async () => {
    const [apiPort, ...ports] = await freePorts(4);
    const peers = ports.map((p) => `127.0.0.1:${p}`).join(',');
    // 'zlib': compressed whatever the path ('auto' leaves loopback plain: test 74).
    const common = ['--compress', 'zlib', '--value-bytes', '16384', '--db-delay-ms', '0', ...(transport === 'rpc' ? ['--rpc'] : [])];
    const nodes = await Promise.all(ports.map((p, i) => startNode(p, peers, [...common, ...(i === 0 ? ['--api', '--api-port', String(apiPort)] : [])])));
    try {
      const front = nodes[0]!.port;
      for (let i = 0; i < 30; i++) {
        const key = `key${i}`;
        assert.is((await queryHttp(`127.0.0.1:${front}`, 'scores', key)).toString(), recordValue(key, 16384), key);
      }
      const stats = await Promise.all(nodes.map(async (n) => JSON.parse((await rawGet(n.port, '/_stats')).body.toString()) as { gzippedResponses: number; rpc: rpc.RpcServerStats }));
      // Keys the front node does not own came from their owners compressed: gzip (HTTP peers ask
      // for it) or the zlib transform (RPC peers). The test's own queries did not ask for gzip.
      const owners = stats.slice(1);
      if (transport === 'rpc') assert.ok(owners.every((s) => s.rpc.compressedReplies > 0 && s.gzippedResponses === 0), JSON.stringify(owners.map((s) => s.rpc)));
      else assert.ok(owners.every((s) => s.gzippedResponses > 0 && s.rpc.compressedReplies === 0), JSON.stringify(owners.map((s) => s.gzippedResponses)));
      assert.is(stats[0]!.gzippedResponses, 0, 'plain to clients that did not ask');
      const path = '/_geecache/scores/key3';
      const gz = await rawGet(front, path, { 'Accept-Encoding': 'br, gzip;q=0.8' });
      assert.is(gz.headers['content-encoding'], 'gzip');
      assert.is(gz.headers.vary, 'Accept-Encoding');
      assert.ok(gz.body.length < 16384 / 2, `gzipped to ${gz.body.length} bytes`);
      assert.is(zlib.gunzipSync(gz.body).toString(), recordValue('key3', 16384));
      const refused = await rawGet(front, path, { 'Accept-Encoding': 'gzip;q=0, identity' });
      assert.is(refused.headers['content-encoding'], undefined);
      assert.is(refused.body.toString(), recordValue('key3', 16384));
      // The front-end API server (node:http) likewise.
      await until(() => nodes[0]!.out.some((l) => l.includes('frontend server is running')));
      const api = await rawGet(apiPort!, '/api?key=key5', { 'Accept-Encoding': 'gzip' });
      assert.is(api.headers['content-encoding'], 'gzip');
      assert.is(zlib.gunzipSync(api.body).toString(), recordValue('key5', 16384));
      assert.is((await rawGet(apiPort!, '/api?key=key5')).body.toString(), recordValue('key5', 16384));
    } finally {
      await stop(nodes);
    }
  });
}

test('a node keeps serving while 300 connections send it garbage, oversize and malformed requests', async () => {
  const [port] = await freePorts(1);
  const node = await startNode(port, `127.0.0.1:${port}`, ['--rpc']);
  try {
    const rnd = seededRandom(7);
    const shapes = [
      () => Buffer.from(Array.from({ length: 1 + rnd(2000) }, () => rnd(256))),
      () => Buffer.concat([Buffer.from([0, 0, 0, 40, 0x10, 0, 0, 0]), Buffer.from(Array.from({ length: rnd(100) }, () => rnd(256)))]),
      () => Buffer.from(`GET /_geecache/${'a'.repeat(70000)} HTTP/1.1\r\n`),
      () => Buffer.from('GET /_geecache/scores/Tom HTTP/1.1\r\nContent-Length: -5\r\n\r\n'),
      () => Buffer.from('GET /_geecache/%E0%A4%A/x HTTP/1.1\r\n\r\n'),
      () => Buffer.from([0x80, 0x01, 0, 1, 0x7f, 0xff, 0xff, 0xff]),
      () => Buffer.from([0xff, 0xff, 0xff, 0xff]),
      () => Buffer.from('POST /_geecache/scores/Tom HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789'),
    ];
    const socks: net.Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('data', () => {});
      s.write(shapes[i % shapes.length]());
      if (i % 3 === 0) setTimeout(() => s.destroy(), rnd(50)); else socks.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.is((await queryHttp(`127.0.0.1:${port}`, 'scores', 'Tom')).toString(), '630');
    assert.is((await queryRpc(`127.0.0.1:${port}`, 'scores', 'Sam')).toString(), '567');
    const stats = JSON.parse((await queryStats(port)).toString());
    assert.ok(stats.rpc.protocolErrors > 30, `protocol errors counted: ${stats.rpc.protocolErrors}`);
    assert.ok(stats.reactor.poolLiveBytes < 32 * 1024 * 1024, `pool ${stats.reactor.poolLiveBytes}`);
    assert.is(node.child.exitCode, null);
    for (const s of socks) s.destroy();
  } finally {
    await stop([node]);
  }
});

test('a request that arrives a few bytes at a time is still told HTTP and answered (HEAD, GET, bare-LF lines); conflicting lengths and bare CRs are refused', async () => {
  const [port] = await freePorts(1);
  const node = await startNode(port, `127.0.0.1:${port}`, ['--rpc']);
  try {
    const slowly = async (pieces: string[]): Promise<string> => {
      const s = net.connect(port, '127.0.0.1');
      s.setNoDelay(true);
      let got = '';
      s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
      await once(s, 'connect');
      for (const p of pieces) { s.write(p); await new Promise((r) => setTimeout(r, 30)); }
      await until(() => got.includes('\r\n\r\n'));
      s.destroy();
      return got;
    };
    // "HEAD" alone first: four bytes that are a whole method, with no space yet.
    const head = await slowly(['HEAD', ' /_geecache/scores/Tom HTTP/1.1\r\n', 'Host: x\r\n\r\n']);
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /Content-Length: 3\r\n/);
    const get = await slowly([...'GET /_geecache/scores/Sam HTTP/1.1\r\n\r\n']);
    assert.match(get, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n567$/);
    const del = await slowly(['DEL', 'ETE /_geecache/scores/Sam HTTP/1.1\r\n\r\n']);
    assert.match(del, /^HTTP\/1\.1 405 /);
    // Two different lengths (a smuggling attempt) or a length that is not digits: 400, and closed.
    const two = await slowly(['GET /_geecache/scores/Tom HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello']);
    assert.match(two, /^HTTP\/1\.1 400 [^]*Connection: close\r\n/);
    assert.match(await slowly(['GET /_geecache/scores/Tom HTTP/1.1\r\nContent-Length: 0x1\r\n\r\nh']), /^HTTP\/1\.1 400 /);
    // Bare LF line ends (`printf ... | nc`), split after the first LF of the blank line; a bare CR is refused.
    assert.match(await slowly(['GET /_geecache/scores/Jack HTTP/1.1\nHost: x\n', '\n']), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n589$/);
    assert.match(await slowly(['GET /_geecache/scores/Jack HTTP/1.1\r\nHost: x\ry: z\r\n\r\n']), /^HTTP\/1\.1 400 /);
  } finally {
    await stop([node]);
  }
});

test("'Connection: close' while the client still sends: it gets the one answer and a clean close (no reset, no 30 s linger)", async () => {
  const [port] = await freePorts(1);
  const node = await startNode(port, `127.0.0.1:${port}`, []);
  try {
    for (const bad of [false, true]) {
      const s = net.connect(port, '127.0.0.1');
      let got = '';
      let error: Error | undefined;
      s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
      s.on('error', (e) => { error = e; });
      await once(s, 'connect');
      const t0 = Date.now();
      // One request that closes (or a bad one), then 20 MB more (past the kernel's buffers): pipelined requests the node must
      // read past (its input cap is a few KB) to see our FIN after them.
      s.write(bad ? 'GET /x HTTP/1.1\r\nContent-Length: zz\r\n\r\n' : 'GET /_geecache/scores/Tom HTTP/1.1\r\nConnection: close\r\n\r\n');
      const more = Buffer.from('GET /_geecache/scores/Sam HTTP/1.1\r\n\r\n'.repeat(500000));
      s.end(more);
      await once(s, 'close');
      assert.is(error, undefined, 'no ECONNRESET');
      assert.match(got, bad ? /^HTTP\/1\.1 400 / : /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n630$/);
      assert.is(got.split('HTTP/1.1').length - 1, 1, 'one answer only');
      assert.ok(Date.now() - t0 < 10000, `closed after ${Date.now() - t0} ms`);
    }
  } finally {
    await stop([node]);
  }
});

test('pipelined HTTP requests cut at random byte boundaries: every one answered, in order (model check)', async () => {
  const [port] = await freePorts(1);
  const node = await startNode(port, `127.0.0.1:${port}`, ['--rpc']);
  try {
    const rnd = seededRandom(2024);
    const keys = ['Tom', 'Jack', 'Sam', 'Nobody', 'with space', 'sl/ash'];
    const expected = (k: string) => ({ Tom: '630', Jack: '589', Sam: '567' } as Record<string, string>)[k];
    for (let round = 0; round < 4; round++) {
      const asked: { method: string; key: string }[] = [];
      let wire = '';
      for (let i = 0; i < 40; i++) {
        const key = keys[rnd(keys.length)]!;
        const method = rnd(5) === 0 ? 'HEAD' : 'GET';
        const extra = rnd(3) === 0 ? 'X-Pad: ' + 'p'.repeat(rnd(500)) + '\r\n' : '';
        wire += `${method} /_geecache/scores/${encodeURIComponent(key)} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
        asked.push({ method, key });
      }
      const s = net.connect(port, '127.0.0.1');
      s.setNoDelay(true);
      let got = Buffer.alloc(0);
      s.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); });
      await once(s, 'connect');
      const bytes = Buffer.from(wire);
      for (let off = 0; off < bytes.length;) {
        const n = 1 + rnd(300);
        s.write(bytes.subarray(off, off + n));
        off += n;
        if (rnd(3) === 0) await new Promise((r) => setTimeout(r, 1));
      }
      // Parse the responses: status line, headers, Content-Length body (none for HEAD).
      const parsed: { status: number; body: string }[] = [];
      await until(() => {
        parsed.length = 0;
        let p = 0;
        while (parsed.length < asked.length) {
          const end = got.indexOf('\r\n\r\n', p);
          if (end < 0) return false;
          const head = got.toString('latin1', p, end);
          const len = Number(/Content-Length: (\d+)/i.exec(head)?.[1] ?? 0);
          const bodyLen = asked[parsed.length]!.method === 'HEAD' ? 0 : len;
          if (got.length < end + 4 + bodyLen) return false;
          parsed.push({ status: Number(head.split(' ')[1]), body: got.toString('utf8', end + 4, end + 4 + bodyLen) });
          p = end + 4 + bodyLen;
        }
        return p === got.length;
      }, 5000, `${asked.length} responses`);
      asked.forEach((a, i) => {
        const want = expected(a.key);
        assert.is(parsed[i]!.status, want ? 200 : 500, `round ${round} request ${i} (${a.method} ${a.key})`);
        if (a.method === 'GET') assert.is(parsed[i]!.body, want ?? `${a.key} not exist\n`, `round ${round} request ${i} body`);
      });
      s.destroy();
    }
  } finally {
    await stop([node]);
  }
});

function queryStats(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/_stats`, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    }).on('error', reject);
  });
}

// ---- a node against clients that misbehave ----

/** Resolves with how long (ms) the node took to close a connection that sent `bytes` (and stays open). */
async function closedAfter(port: number, bytes: Buffer): Promise<number> {
  const s = await rawClient(port);
  s.on('error', () => {});
  const t0 = Date.now();
  s.write(bytes);
  await new Promise((r) => s.once('close', r));
  return Date.now() - t0;
}

test('a node: slow heads and partial requests meet the read deadline; what cannot be a request is refused at once', async () => {
  const [port] = await freePorts(1);
  const node = await startNode(port!, `127.0.0.1:${port}`, ['--read-timeout-ms', '600']);
  try {
    // 20 clients trickling an HTTP head, a byte every 100 ms (an idle timer would restart each time).
    const trickle = await Promise.all(Array.from({ length: 20 }, async () => {
      const s = await rawClient(port!);
      s.on('error', () => {});
      const t0 = Date.now();
      const head = Buffer.from('GET /_geecache/scores/Tom HTTP/1.1\r\nHost: x\r\n');
      let i = 0;
      const timer = setInterval(() => { if (i < head.length && !s.destroyed) s.write(head.subarray(i, ++i)); }, 100);
      await new Promise((r) => s.once('close', r));
      clearInterval(timer);
      return Date.now() - t0;
    }));
    for (const t of trickle) assert.ok(t >= 500 && t < 2500, `a trickling head was closed after ${t} ms`);
    // A partial RPC frame is held no longer either.
    const partial = await closedAfter(port!, Buffer.from([0, 0, 0x10, 0, 0x10, 0, 0, 0]));
    assert.ok(partial >= 500 && partial < 2500, `partial frame: ${partial} ms`);
    for (const [what, bytes] of [
      ['a lone zero-length frame', Buffer.from([0, 0, 0, 0])],
      ['a frame header over the size cap', Buffer.from([0x7f, 0xff, 0xff, 0xff, 0, 0])],
      ['random bytes', Buffer.from('8f3a61c2d94e07b5a1', 'hex')],
    ] as const) {
      const t = await closedAfter(port!, bytes);
      assert.ok(t < 400, `${what}: closed after ${t} ms`);
    }
    // The node still serves.
    assert.is((await queryHttp(`127.0.0.1:${port}`, 'scores', 'Tom')).toString(), '630');
  } finally {
    await stop([node]);
  }
});

test('a node: an unframed RPC message over 64 KiB is answered; requests before a FIN are answered (HTTP and RPC)', async () => {
  const [port] = await freePorts(1);
  const node = await startNode(port!, `127.0.0.1:${port}`, []);
  try {
    const Get = groupCacheService().methods.Get!;
    // Unframed binary (Apache TBufferedTransport): a 100 KB key, an answer (the loader's error).
    const w = new rpc.ThriftWriter(Buffer.alloc(0));
    w.messageBegin('Get', rpc.MessageType.CALL, 7);
    w.struct(Get.args, { req: { group: 'scores', key: 'k'.repeat(100000) } });
    const s = await rawClient(port!);
    const reply = new Promise<Buffer>((resolve) => { let acc = Buffer.alloc(0); s.on('data', (d: Buffer) => { acc = Buffer.concat([acc, d]); if (acc.length > 20) resolve(acc); }); });
    s.write(Buffer.from(w.buf.subarray(0, w.pos)));
    const r = await Promise.race([reply, new Promise<null>((res) => setTimeout(() => res(null), 3000))]);
    assert.ok(r !== null, 'an unframed message over 64 KiB got an answer');
    s.destroy();
    // HTTP: a GET, then FIN at once: the response comes, then the close.
    const h = await rawClient(port!);
    let text = '';
    h.on('data', (d: Buffer) => { text += d.toString(); });
    h.end('GET /_geecache/scores/Jack HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((res) => h.once('close', res));
    assert.match(text, /^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\n589$/);
    // RPC: pipelined Gets (the loader is asynchronous), then FIN: every reply.
    const c = await rawClient(port!);
    const got = readFrames(c, 20);
    c.end(Buffer.concat(Array.from({ length: 20 }, (_, i) => ttheaderCall(Get, i + 1, { req: { group: 'scores', key: ['Tom', 'Jack', 'Sam'][i % 3] } }))));
    const frames = await got;
    assert.equal(frames.map((f) => rpc.parseTTHeader(f).seqid), Array.from({ length: 20 }, (_, i) => i + 1));
  } finally {
    await stop([node]);
  }
});

test('a node on SIGTERM under load: every RPC request sent is answered (with crrst), then it exits', async () => {
  const [port] = await freePorts(1);
  const node = await startNode(port!, `127.0.0.1:${port}`, []);
  const Get = groupCacheService().methods.Get!;
  const s = await rawClient(port!);
  const st = crrstClient(s, (seq) => ttheaderCall(Get, seq, { req: { group: 'scores', key: 'Tom' } }), 64);
  await until(() => st.answered > 300, 10000, 'load');
  const exited = new Promise((r) => node.child.once('exit', r));
  node.child.kill('SIGTERM');
  await exited;
  assert.is(st.answered, st.sent, `answered ${st.answered} of ${st.sent}`);
  assert.ok(st.crrst > 0, 'replies carried crrst');
  s.destroy();
});

test('a peer that leaves the ring (setPeers): the pool closes its idle connections to it, HTTP keep-alive and RPC alike, and sends it nothing more', async () => {
  const registry = new Registry();
  registry.newGroup('scores', 0, (key) => `v:${key}`, { log: () => {} });
  const owner = new CacheNodeServer(registry);
  const { port } = await owner.listen(0);
  // A TCP proxy in front of the owner counts the connections open to it.
  let open = 0, opened = 0;
  const proxy = net.createServer((a) => {
    open++; opened++;
    const b = net.connect(port, '127.0.0.1');
    a.pipe(b); b.pipe(a);
    const done = () => { a.destroy(); b.destroy(); };
    a.on('close', () => { open--; done(); });
    a.on('error', done); b.on('error', done); b.on('close', done);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const peer = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  try {
    for (const transport of ['http', 'rpc'] as const) {
      const pool = new PeerPool('127.0.0.1:1', [peer], { transport });
      let key = '';
      for (let i = 0; !key; i++) if (pool.pickPeer(`k${i}`)) key = `k${i}`;
      assert.is((await pool.pickPeer(key)!.get('scores', key)).toString(), `v:${key}`);
      await until(() => open === 1, 2000, `${transport}: one connection open`);
      assert.ok(pool.setPeers([]));
      assert.equal(pool.peers(), ['127.0.0.1:1']);
      await until(() => open === 0, 3000, `${transport}: the idle connection closed`);
      assert.is(pool.pickPeer(key), null, 'keys the peer owned are this node\'s now');
      const before = opened;
      await new Promise((r) => setTimeout(r, 100));
      assert.is(opened, before);
      pool.close();
    }
  } finally {
    proxy.close();
    await owner.close(200);
  }
});

test.run();
