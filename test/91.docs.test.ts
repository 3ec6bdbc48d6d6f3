// The documentation's code is code: every ```ts block of README.md and docs/ is compiled as a
// user's file (strict, against the package as published: exports, typings) and run, and must
// exit 0 by itself, printing what its "// → text" comments say. A ```ts generated-from=IDL block must be what linkpoll-thrift writes for it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { generateTypeScript } from '../src/rpc/idl/codegen';
import { readIdlFiles } from '../src/rpc/idl/idl';
import { etcdMissing, startEtcd } from '../examples/etcd-server';

const root = path.join(__dirname, '..', '..');

function markdownFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? (e.name === 'api' ? [] : markdownFiles(p)) : e.name.endsWith('.md') ? [p] : [];
  });
}

interface Block { file: string; line: number; info: string; code: string }

function blocks(file: string): Block[] {
  const out: Block[] = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^```(ts\b.*)$/.exec(lines[i]!);
    if (!m) continue;
    const start = i;
    const body: string[] = [];
    while (++i < lines.length && lines[i] !== '```') body.push(lines[i]!);
    out.push({ file: path.relative(root, file), line: start + 1, info: m[1]!.trim(), code: body.join('\n') + '\n' });
  }
  return out;
}

const all = [path.join(root, 'README.md'), ...markdownFiles(path.join(root, 'docs'))].flatMap(blocks);
const generated = (idl: string) => generateTypeScript(readIdlFiles(path.join(root, idl)));

test('the docs have code to check', () => {
  assert.ok(all.filter((b) => b.info === 'ts').length >= 8, `${all.length} blocks`);
});

test('generated excerpts are what linkpoll-thrift writes', () => {
  for (const b of all.filter((x) => x.info.startsWith('ts generated-from='))) {
    const idl = b.info.slice('ts generated-from='.length);
    assert.ok(generated(idl).includes(b.code.trimEnd()), `${b.file}:${b.line}: not what linkpoll-thrift writes for ${idl}`);
  }
});

test('every TypeScript snippet compiles (strict, the published typings) and runs to its end', async () => {
  // "ts env=etcd" blocks run with ETCD_URL set to an etcd started here (skipped visibly without one).
  const needsEtcd = (b: Block) => b.info === 'ts env=etcd';
  const snippets = all.filter((b) => b.info === 'ts' || needsEtcd(b));
  const why = etcdMissing();
  const etcd = !why && snippets.some(needsEtcd) ? await startEtcd({ logLevel: 'error' }) : undefined;
  if (why) console.log(`  SKIPPED (visible): running the etcd snippets: ${why}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-docs-'));
  try {
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(root, path.join(dir, 'node_modules', 'linkpoll'), 'dir');
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'docs', private: true, type: 'commonjs' }));
    // What the codegen guide tells a user to run first.
    fs.writeFileSync(path.join(dir, 'geecache.ts'), generated('examples/geecache/geecache.thrift'));
    fs.writeFileSync(path.join(dir, 'typed.ts'), generated('test/fixtures/typed.thrift'));
    const names = snippets.map((b, i) => {
      const name = `${path.basename(b.file, '.md')}-${i}`;
      fs.writeFileSync(path.join(dir, `${name}.ts`), `// ${b.file}:${b.line}\n${b.code}`);
      return name;
    });
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'node16', moduleResolution: 'node16', strict: true, outDir: 'out', skipLibCheck: false,
        noUncheckedIndexedAccess: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')],
      },
      include: names.map((n) => `${n}.ts`),
    }));
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    assert.is(tsc.status, 0, `the snippets do not compile:\n${tsc.stdout}${tsc.stderr}`);
    names.forEach((name, i) => {
      const b = snippets[i]!;
      if (needsEtcd(b) && !etcd) return;
      const env = needsEtcd(b) ? { ...process.env, ETCD_URL: etcd!.url } : process.env;
      const r = spawnSync(process.execPath, [path.join(dir, 'out', `${name}.js`)], { cwd: dir, encoding: 'utf8', timeout: 20000, env });
      assert.is(r.status, 0, `${b.file}:${b.line} exited with ${r.status ?? r.signal}:\n${r.stdout}${r.stderr}`);
      assert.ok(r.stdout.length > 0, `${b.file}:${b.line} printed nothing`);
      // "// → text" after a line of the snippet: text (up to a parenthesised remark) is printed, in that order.
      let at = 0;
      for (const m of b.code.matchAll(/\/\/ → (.*?)(?: \(.*\))?$/gm)) {
        const i = r.stdout.indexOf(m[1]!, at);
        assert.ok(i >= 0, `${b.file}:${b.line}: expected output ${JSON.stringify(m[1])}, got:\n${r.stdout}`);
        at = i + m[1]!.length;
      }
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await etcd?.stop();
  }
});

test('the API reference builds from the JSDoc (typedoc): every export documented, no broken link', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-api-'));
  try {
    const r = spawnSync(process.execPath, [path.join(root, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out], { cwd: root, encoding: 'utf8', timeout: 120000 });
    assert.is(r.status, 0, `typedoc: ${r.stdout}${r.stderr}`);
    for (const page of ['classes/index.Connection.html', 'classes/rpc.RpcClient.html', 'interfaces/rpc.RpcServerOptions.html']) {
      assert.ok(fs.existsSync(path.join(out, page)), `${page} is missing`);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test.run();
