// The published typings, as a user's project sees them: a TypeScript file importing 'linkpoll'
// and 'linkpoll/rpc' through the package's exports is compiled against dist/ with the library's
// .d.ts checked too (skipLibCheck off). Internals are stripped from them; what users call is not.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

const root = path.join(__dirname, '..', '..');

const USER_CODE = `
import { createServer, connect, Connection, LinkBuffer, Reactor, LinkpollError, rpc, type ConnectionOptions } from 'linkpoll';
import { RpcServer, RpcClient, parseIdl, type CallContext } from 'linkpoll/rpc';
const o: ConnectionOptions = { framing: 'u32be', readTimeout: 5, keepAlive: 1000 };
export async function main(): Promise<void> {
  const s = createServer({ ...o, onFrame: (f: Buffer, c: Connection) => { c.write(f); } });
  const a = await s.listen({ port: 0 });
  const c = await connect({ port: a.port, framing: 'u32be', signal: AbortSignal.timeout(1000) });
  c.writer.malloc(4).writeUInt32BE(0);
  c.on('close', (e?: Error) => { if (e instanceof LinkpollError) console.log(e.code); });
  const lb = new LinkBuffer(); lb.write(Buffer.from('x')); lb.release();
  const idl = parseIdl('service S { string E(1: string s) }');
  const srv: rpc.RpcServer = new RpcServer({ maxInFlight: 8 });
  srv.register(idl.services.S!, { E: (args: Record<string, unknown>, ctx: CallContext) => \`\${String(args.s)}\${ctx.remotePort}\` });
  const cl = new RpcClient({ service: idl.services.S!, targets: ['127.0.0.1:1'], writesPerTick: 4 });
  const v: unknown = await cl.call('E', { s: 'x' }, { timeout: 100 });
  void v; void new Reactor({ loops: 2 });
  // node:net's forms
  const s2 = createServer((conn: Connection) => { conn.write('ab', 'latin1', (err) => { if (err) conn.destroy(err); }); conn.end(() => {}); });
  await s2.listen(0, '127.0.0.1', () => {});
  await s2.listen('/tmp/x.sock');
  const c2 = await connect(7000, 'localhost');
  c2.setNoDelay(true).setKeepAlive(true, 1000);
  const port: number | undefined = c2.localPort;
  void port; void c2.writableEnded;
  await connect('/tmp/x.sock', (conn: Connection) => conn.end('bye'));
  await srv.listen(0, () => {});
  cl.setTargets('127.0.0.1:2');
  // Events are typed (an 'any' would not pass NotAny).
  type NotAny<T> = 0 extends 1 & T ? never : T;
  c2.on('data', (d) => { const b: NotAny<typeof d> = d; b.readUInt8(0); });
  c2.once('close', (e) => { const x: NotAny<typeof e> = e; void x; });
  s2.on('connection', (conn) => { const k: NotAny<typeof conn> = conn; k.end(); });
  c2.on('my-own-event', (...anything: unknown[]) => { void anything; });
}
`;

const INTERNALS = `
import { Connection } from 'linkpoll';
declare const c: Connection;
c._frameAt = undefined;
c._commitStaged(1);
const k: import('linkpoll').ConnectionOptions = { frameCheck: 'ttheader' };
`;

function compile(code: string, resolution: 'node16' | 'node10' = 'node16'): { status: number | null; out: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-typings-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(root, path.join(dir, 'node_modules', 'linkpoll'), 'dir');
    fs.writeFileSync(path.join(dir, 'user.ts'), code);
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: resolution === 'node16' ? 'node16' : 'commonjs', moduleResolution: resolution, strict: true, noEmit: true,
        skipLibCheck: false, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
      },
      files: ['user.ts'],
    }));
    const r = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('a user\'s TypeScript compiles against the published typings (exports, rpc subpath, .d.ts checked)', () => {
  const r = compile(USER_CODE);
  assert.is(r.status, 0, r.out);
});

test('the library\'s internals are not in the published typings', () => {
  const r = compile(INTERNALS);
  assert.is.not(r.status, 0);
  for (const name of ['_frameAt', '_commitStaged', 'frameCheck']) assert.match(r.out, name, r.out);
});

test('linkpoll/rpc resolves under moduleResolution node10 too (typesVersions)', () => {
  const r = compile(`import { RpcClient, type CallOptions } from 'linkpoll/rpc';\nconst o: CallOptions = { timeout: 1 };\nexport const k: typeof RpcClient = RpcClient; void o;\n`, 'node10');
  assert.is(r.status, 0, r.out);
});

test('linkpoll/etcd resolves under node16 and node10 (typesVersions), typed with the RpcClient it feeds', () => {
  const src = `import { EtcdResolver, EtcdRegistry, type ResolvedInstance } from 'linkpoll/etcd';\nimport { RpcClient } from 'linkpoll/rpc';\n` +
    `export async function f(c: RpcClient): Promise<ResolvedInstance[]> { const r = new EtcdResolver({ service: 's' }); await r.bind(c); new EtcdRegistry({ ttl: 5 }); return r.instances(); }\n`;
  for (const mode of ['node16', 'node10'] as const) {
    const r = compile(src, mode);
    assert.is(r.status, 0, `${mode}: ${r.out}`);
  }
  const bad = compile(`import { EtcdResolver } from 'linkpoll/etcd';\nnew EtcdResolver({ endpoints: 1 });\n`);
  assert.is.not(bad.status, 0, 'a resolver needs a service name, endpoints are strings');
});

test('linkpoll/rpc exports the public API only: the codec\'s byte helpers and the transports\' internals stay inside', () => {
  const api = require(path.join(root, 'dist', 'src', 'rpc')) as Record<string, unknown>;
  for (const name of ['RpcServer', 'RpcClient', 'CallContext', 'DeclaredException', 'BizStatusError', 'RemoteException', 'ThriftReader', 'ThriftWriter',
    'TApplicationException', 'parseIdl', 'parseIdlFile', 'generateTypeScript', 'ConsistentHash', 'clientAccessLog', 'serverAccessLog', 'IntKey']) {
    assert.ok(name in api, `${name} is missing`);
  }
  for (const name of ['putU32', 'getI32', 'UnframedCutter', 'MessageScanner', 'writePrefixed', 'writeMessage', 'messagePrefix', 'beginTTHeader',
    'endFrame', 'parseTTHeader', 'detectTransport', 'openFrame', 'protocolError', 'createBalancer', 'CircuitBreaker', 'TokenBucket', 'RpcMetrics']) {
    assert.not.ok(name in api, `${name} is exported`);
  }
  const r = compile(`import { putU32 } from 'linkpoll/rpc';\nvoid putU32;\n`);
  assert.is.not(r.status, 0);
  assert.match(r.out, /putU32/);
});

test('the CLIs (linkpoll-thrift and the examples) answer --help on stdout with status 0, and start nothing', () => {
  const root = path.join(__dirname, '..');
  for (const cli of ['src/rpc/idl/codegen-cli.js', 'examples/echo/server.js', 'examples/echo/client.js', 'examples/geecache/main.js', 'examples/geecache/cluster.js', 'examples/geecache/client.js']) {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync(process.execPath, [path.join(root, cli), flag], { encoding: 'utf8', timeout: 5000 });
      assert.is(r.status, 0, `${cli} ${flag}: status ${r.status} ${r.stderr}`);
      assert.match(r.stdout, /^usage: /, `${cli} ${flag}: ${r.stdout}`);
      assert.is(r.stdout.split('\n').filter((l) => l.includes('running') || l.includes('listening')).length, 0, `${cli} started something`);
    }
  }
  const bad = spawnSync(process.execPath, [path.join(root, 'src/rpc/idl/codegen-cli.js'), '--frobnicate', 'x.thrift'], { encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /unknown argument --frobnicate/);
});

test.run();
