// Generated TypeScript: it type-checks, and its typed client and handler registration work
// against a real server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as ts from 'typescript';
import { rpc } from '../src';

const root = path.join(__dirname, '..', '..');

/** Type-checks a file as strictly as a user's project may (tsc --init's noUncheckedIndexedAccess, exactOptionalPropertyTypes too; throws with tsc's output on errors). */
function typeCheck(file: string): void {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--noUncheckedIndexedAccess', '--exactOptionalPropertyTypes', '--target', 'ES2022', '--module', 'commonjs', '--moduleResolution', 'node',
    '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), '--skipLibCheck', file], { stdio: 'pipe' });
}

/** Compiles generated TypeScript to `jsFile` and loads it. */
function load(src: string, jsFile: string) {
  fs.writeFileSync(jsFile, ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText);
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(jsFile);
}

test('generated code type-checks and works end to end', async () => {
  const idlText = fs.readFileSync(path.join(root, 'test', 'fixtures', 'everything.thrift'), 'utf8');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-gen-'));
  const src = rpc.generateTypeScript(idlText, path.join(root, 'dist', 'src'));
  fs.writeFileSync(path.join(dir, 'kitchen.ts'), src);
  // A user of the generated module, type-checked with it: wrong types must be errors.
  fs.writeFileSync(path.join(dir, 'use.ts'), [
    "import { KitchenClient, Everything, Color, MAX_ITEMS, BIG_ID, BY_NAME } from './kitchen';",
    'export const sized: number = MAX_ITEMS + Number(BIG_ID > 0n) + (BY_NAME.get(\'blue\') ?? 0);',
    'export async function use(c: KitchenClient): Promise<number> {',
    "  const e: Everything = { text: 'x', big: 1n, color: Color.BLUE, tags: new Set(['a']) };",
    '  const back = await c.echo(e);',
    '  return (back.int32 ?? 0) + (await c.fail(1));',
    '}',
    '// @ts-expect-error: i64 fields are bigint',
    "export const wrong: Everything = { big: 1 };",
  ].join('\n'));
  typeCheck(path.join(dir, 'use.ts'));

  const gen = load(src, path.join(dir, 'kitchen.js'));
  const server = new rpc.RpcServer({ logger: null });
  gen.registerKitchen(server, {
    echo: ({ e }: { e: Record<string, unknown> }) => e,
    nothing: () => undefined,
    fail: ({ how }: { how: number }) => how * 2,
    fire: () => undefined,
    slow: async ({ ms }: { ms: number }) => `slept ${ms}`,
  });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const client = new gen.KitchenClient({ targets: [`127.0.0.1:${port}`] });
  assert.equal(await client.echo({ text: 'typed', big: 7n }), { text: 'typed', big: 7n });
  assert.is(await client.fail(21), 42);
  assert.is(await client.slow(1), 'slept 1');
  assert.is(gen.Color.GREEN, 2);
  // IDL constants, typed as the codec types values (i64 bigint, set Set, map Map, struct object).
  assert.is(gen.MAX_ITEMS, 100);
  assert.is(gen.BIG_ID, 9007199254740993n);
  assert.is(gen.RATIO, -0.25);
  assert.is(gen.GREETING, 'hello');
  assert.is(gen.ENABLED, true);
  assert.equal(gen.SIZES, [1, 2, 100]);
  assert.equal(gen.KINDS, new Set(['a', 'b']));
  assert.equal(gen.BY_NAME, new Map([['blue', 7], ['red', 1]]));
  assert.equal(gen.DEFAULT_INNER, { s: 'x' });
  client.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the CLI prints the module, and explains a bad IDL', () => {
  const cli = path.join(root, require(path.join(root, 'package.json')).bin['linkpoll-thrift']);
  const out = execFileSync(process.execPath, [cli, path.join(root, 'examples', 'geecache', 'geecache.thrift')], { encoding: 'utf8' });
  assert.match(out, /export class GroupCacheClient/);
  assert.match(out, /import \{ rpc \} from 'linkpoll';/);
  const bad = path.join(os.tmpdir(), `bad-${process.pid}.thrift`);
  fs.writeFileSync(bad, 'struct X { 1: Missing m }');
  try {
    execFileSync(process.execPath, [cli, bad], { stdio: 'pipe' });
    assert.unreachable();
  } catch (e) {
    assert.match(String((e as { stderr: Buffer }).stderr), /unknown type Missing/);
  }
  fs.rmSync(bad);
});

test('IDL over several files: includes (relative, nested, -I dirs), prefixed types, extends; generated code works', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-inc-'));
  const shared = path.join(dir, 'shared-idl');
  fs.mkdirSync(path.join(dir, 'svc', 'common'), { recursive: true });
  fs.mkdirSync(shared);
  // Kitex projects keep Base/BaseResp in a base.thrift that every service includes.
  fs.writeFileSync(path.join(dir, 'svc', 'common', 'base.thrift'), [
    'include "types.thrift"',
    'struct Base { 1: string LogID = "", 2: string Caller = "" }',
    'struct BaseResp { 1: string StatusMessage = "", 2: i32 StatusCode = 0 }',
    'service Health { string ping() }',
  ].join('\n'));
  fs.writeFileSync(path.join(dir, 'svc', 'common', 'types.thrift'), 'typedef i64 UserId\nenum Level { LOW = 1, HIGH = 2 }');
  fs.writeFileSync(path.join(shared, 'tags.thrift'), 'struct Tag { 1: string name }');
  fs.writeFileSync(path.join(dir, 'svc', 'user.thrift'), [
    'include "common/base.thrift"',
    'include "tags.thrift"',
    'struct GetUserReq { 1: types.UserId id, 2: types.Level level, 3: list<tags.Tag> tags, 255: base.Base Base }',
    'struct GetUserResp { 1: string name, 255: base.BaseResp BaseResp }',
    'service UserService extends base.Health { GetUserResp GetUser(1: GetUserReq req) }',
  ].join('\n'));
  const main = path.join(dir, 'svc', 'user.thrift');

  assert.throws(() => rpc.parseIdl(fs.readFileSync(main, 'utf8')), /unknown type .*"common\/base.thrift".*parseIdlFile/);
  assert.throws(() => rpc.parseIdlFile(main), /includes "tags.thrift", which is not in/);
  const idl = rpc.parseIdlFile(main, [shared]);
  assert.equal(Object.keys(idl.services.UserService!.methods).sort(), ['GetUser', 'ping']);
  const req = idl.structs.GetUserReq!;
  assert.is(req.fields.find((f) => f.name === 'id')!.type, 'i64');
  assert.is(req.fields.find((f) => f.name === 'level')!.type, 'i32');
  assert.is((req.fields.find((f) => f.name === 'Base')!.type as rpc.StructSpec).name, 'Base');

  const cli = path.join(root, require(path.join(root, 'package.json')).bin['linkpoll-thrift']);
  const src = execFileSync(process.execPath, [cli, main, '-I', shared, '--import', path.join(root, 'dist', 'src')], { encoding: 'utf8' });
  fs.writeFileSync(path.join(dir, 'user.ts'), src);
  fs.writeFileSync(path.join(dir, 'use.ts'), [
    "import { UserServiceClient, GetUserReq, Level } from './user';",
    "export const r: GetUserReq = { id: 1n, level: Level.HIGH, tags: [{ name: 't' }], Base: { LogID: 'x' } };",
    'export const call = (c: UserServiceClient) => c.GetUser(r).then((x) => x.BaseResp?.StatusCode);',
  ].join('\n'));
  typeCheck(path.join(dir, 'use.ts'));
  const gen = load(src, path.join(dir, 'user.js'));
  const server = new rpc.RpcServer({ logger: null });
  gen.registerUserService(server, {
    GetUser: ({ req }: { req: { id: bigint; tags: { name: string }[]; Base: { LogID: string } } }) =>
      ({ name: `u${req.id}:${req.tags.map((t) => t.name).join()}:${req.Base.LogID}`, BaseResp: { StatusCode: 0, StatusMessage: 'ok' } }),
    ping: () => 'pong',
  });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const client = new gen.UserServiceClient({ targets: [`127.0.0.1:${port}`] });
  assert.equal(await client.GetUser({ id: 5n, level: 2, tags: [{ name: 'a' }, { name: 'b' }], Base: { LogID: 'L' } }),
    { name: 'u5:a,b:L', BaseResp: { StatusMessage: 'ok', StatusCode: 0 } });
  assert.is(await client.ping(), 'pong');
  client.close();
  await server.close();

  fs.writeFileSync(path.join(dir, 'a.thrift'), 'include "b.thrift"\nstruct A { 1: b.B b }');
  fs.writeFileSync(path.join(dir, 'b.thrift'), 'include "a.thrift"\nstruct B { 1: i32 x }');
  assert.throws(() => rpc.parseIdlFile(path.join(dir, 'a.thrift')), /include cycle/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('extends chains resolve in any order of declaration; a cycle is refused', () => {
  const i = rpc.parseIdl('service A extends B { void a() } service B extends C { void b() } service C { void c() }');
  assert.equal(Object.keys(i.services.A!.methods).sort(), ['a', 'b', 'c']);
  assert.equal(Object.keys(i.services.B!.methods).sort(), ['b', 'c']);
  assert.throws(() => rpc.parseIdl('service A extends B { void a() } service B extends A { void b() }'), /cycle/);
});

test('IDL grammar as Apache reads it: annotations after namespaces, empty containers written {}, senum refused by name', () => {
  const idl = rpc.parseIdl([
    "namespace xsd test (uri = 'http://thrift.apache.org/ns/ThriftTest')",
    'namespace go test',
    'struct S { 1: set<binary> s = {}, 2: list<i32> l = {}, 3: map<string, i32> m = {} }',
  ].join('\n'));
  const f = idl.structs.S!.fields;
  assert.equal(f[0]!.default, new Set());
  assert.equal(f[1]!.default, []);
  assert.equal(f[2]!.default, new Map());
  assert.throws(() => rpc.parseIdl('senum Names { "a", "b" }'), /'senum' is deprecated and not supported/);
});

test('two included files that each define Base: a.Base and b.Base are their own files\' types; a bare Base is an error that says so', () => {
  const files = {
    'a.thrift': 'struct Base { 1: string fromA }',
    'b.thrift': 'struct Base { 1: i32 fromB }',
    'main.thrift': 'include "a.thrift"\ninclude "b.thrift"\nstruct Req { 1: a.Base x, 2: b.Base y }',
  };
  const idl = rpc.parseIdlFiles(files, 'main.thrift');
  const [x, y] = idl.structs.Req!.fields;
  assert.is((x!.type as rpc.StructSpec).fields[0]!.name, 'fromA');
  assert.is((y!.type as rpc.StructSpec).fields[0]!.name, 'fromB');
  assert.throws(() => rpc.parseIdlFiles({ ...files, 'main.thrift': 'include "a.thrift"\ninclude "b.thrift"\nstruct Req { 1: Base x }' }, 'main.thrift'),
    /Base is defined by "a.thrift" and "b.thrift": write it with its file's prefix \(a.Base or b.Base\)/);
  // A bare name defined here wins, as before.
  const local = rpc.parseIdlFiles({ ...files, 'main.thrift': 'include "a.thrift"\ninclude "b.thrift"\nstruct Base { 1: bool mine }\nstruct Req { 1: Base x }' }, 'main.thrift');
  assert.is((local.structs.Req!.fields[0]!.type as rpc.StructSpec).fields[0]!.name, 'mine');
});

test('annotations are read wherever Apache allows them and kept on fields, structs, services and methods', () => {
  const idl = rpc.parseIdl([
    "typedef i64 (js.type = 'bigint') Id (cpp.type = 'int64_t')",
    'enum E { A = 1 (deprecated = "yes"), B (x) } (e.kind = "flags")',
    'struct S (go.tag.style = "snake") {',
    '  1: Id id (go.tag = \'json:"id"\', api.body = "id")',
    '  2: list<string (t = "1")> (l = "2") names',
    '} (thrift.uuid = "false")',
    'service Svc (svc.ver = "2") {',
    '  S get(1: Id id (api.path = "id")) (api.get = "/s/:id")',
    '} (owner = "team")',
  ].join('\n'));
  const S = idl.structs.S!;
  assert.equal(S.annotations, { 'go.tag.style': 'snake', 'thrift.uuid': 'false' });
  assert.equal(S.fields[0]!.annotations, { 'go.tag': 'json:"id"', 'api.body': 'id' });
  const svc = idl.services.Svc!;
  assert.equal(svc.annotations, { 'svc.ver': '2', owner: 'team' });
  assert.equal(svc.methods.get!.annotations, { 'api.get': '/s/:id' });
  assert.equal(svc.methods.get!.args.fields[0]!.annotations, { 'api.path': 'id' });
  assert.equal(idl.enums.E, { A: 1, B: 2 });
  assert.throws(() => rpc.parseIdl('struct T { 1: i32 x (= "v") }'), /expected an annotation name/);
});

test("the constructs of Apache's ThriftTest.thrift (our own fixture): namespaces of every form, annotated nested containers, empty structs, mixed separators", () => {
  const idl = rpc.parseIdlFile(path.join(__dirname, '..', '..', 'test', 'fixtures', 'apache-constructs.thrift'));
  assert.equal(idl.enums.Level, { LOW: 1, MID: 2, HIGH: 3, TOP: 9, OVER: 10 });
  assert.is(idl.consts.defaultLevel, 2);
  assert.equal(Object.keys(idl.services.Probe!.methods), ['ping', 'echoString', 'echoByte', 'echoMap', 'echoLevel', 'echoId', 'crazy', 'many', 'mayFail', 'mayFail2', 'nap']);
  assert.is(idl.services.Probe!.methods.nap!.oneway, true);
  assert.equal(idl.services.Probe!.methods.mayFail2!.result.fields.map((f) => f.name), ['success', 'err1', 'err2']);
  assert.equal(idl.structs.Frozen!.annotations, { 'python.immutable': '' });
  assert.equal(idl.structs.Nothing!.fields, []);
  const Deep = idl.structs.Deep!;
  assert.is(Deep.fields[2]!.required, true);
  const v = { name: 'd', nest: [new Map([[new Set([1, 2]), new Map([[7, new Set([[new Map([[{ owners: new Map([[1, 5n]]), notes: [{ text: 'n', stars: 3 }] }, 'x']])]])]])]])], raw: Buffer.from([1]) };
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  w.struct(Deep, v);
  assert.equal(new rpc.ThriftReader(Buffer.from(w.buf.subarray(0, w.pos))).struct(Deep), v);
  assert.equal(idl.structs.Defaults!.fields.map((f) => f.default), [true, 'true']);
});

test('names that are reserved words or the client method\'s own `options` generate valid code that still sends the IDL\'s names', async () => {
  const idlText = 'struct S { 1: i32 class, 2: string default }\nservice X { S delete(1: i32 options, 2: S in) }';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-gen-'));
  const src = rpc.generateTypeScript(idlText, path.join(root, 'dist', 'src'));
  fs.writeFileSync(path.join(dir, 'x.ts'), src);
  typeCheck(path.join(dir, 'x.ts'));
  const gen = load(src, path.join(dir, 'x.js'));
  const srv = new rpc.RpcServer({ logger: null });
  srv.register(gen.XService, { delete: (a: { options?: number; in?: { class?: number; default?: string } }) => ({ class: (a.options ?? 0) + (a.in?.class ?? 0), default: a.in?.default }) });
  const { port } = await srv.listen({ port: 0, host: '127.0.0.1' });
  const c = new gen.XClient({ targets: `127.0.0.1:${port}` });
  try {
    assert.equal(await c.delete(40, { class: 2, default: 'd' }), { class: 42, default: 'd' });
  } finally {
    c.close();
    await srv.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Types that say what the IDL says, compiled in every setting a user's project may have.

const TS_VERSIONS = ['5', '7'] as const;
const TS7 = '7.0.2';

/** The compiler of TypeScript `major`: this project's 5.x, or 7.x from the npm registry (cached in the temp dir). */
function tscOf(major: '5' | '7'): { tsc: string } | { skip: string } {
  if (major === '5') return { tsc: path.join(root, 'node_modules', 'typescript', 'bin', 'tsc') };
  const dir = path.join(os.tmpdir(), `linkpoll-typescript-${TS7}`);
  const tsc = path.join(dir, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!fs.existsSync(tsc)) {
    fs.mkdirSync(dir, { recursive: true });
    const r = spawnSync('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--no-save', `typescript@${TS7}`], { encoding: 'utf8', timeout: 300000 });
    if (r.status !== 0 || !fs.existsSync(tsc)) return { skip: `typescript@${TS7} could not be installed from the npm registry: ${(r.stderr || '').trim().split('\n').pop()}` };
  }
  return { tsc };
}

/** The module settings a user's project may use: [name, compilerOptions, package type, import suffix]. */
const SETTINGS: [string, Record<string, string>, 'commonjs' | 'module', string][] = [
  ['CommonJS', { module: 'commonjs' }, 'commonjs', ''],
  ['ES2022 + bundler', { module: 'es2022', moduleResolution: 'bundler' }, 'module', ''],
  ['NodeNext (ESM)', { module: 'nodenext', moduleResolution: 'nodenext' }, 'module', '.js'],
  ['NodeNext (CommonJS)', { module: 'nodenext', moduleResolution: 'nodenext' }, 'commonjs', ''],
];

/** Type-checks `files` (name -> source; '{ext}' in them becomes the import suffix) with linkpoll installed, in every setting and TypeScript version. */
function typeCheckEverywhere(files: Record<string, string>): void {
  for (const major of TS_VERSIONS) {
    const c = tscOf(major);
    if ('skip' in c) { console.log(`  SKIPPED (visible): TypeScript ${major}: ${c.skip}`); continue; }
    for (const [name, options, type, ext] of SETTINGS) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-ts-'));
      try {
        fs.mkdirSync(path.join(dir, 'node_modules'));
        fs.symlinkSync(root, path.join(dir, 'node_modules', 'linkpoll'), 'dir');
        fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user', private: true, type }));
        for (const [f, text] of Object.entries(files)) {
          fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
          fs.writeFileSync(path.join(dir, f), text.replaceAll('{ext}', ext));
        }
        fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
          compilerOptions: { target: 'ES2022', strict: true, noUncheckedIndexedAccess: true, exactOptionalPropertyTypes: true, isolatedModules: true,
            noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')], ...options },
          include: Object.keys(files),
        }));
        const r = spawnSync(process.execPath, [c.tsc, '-p', dir], { encoding: 'utf8', timeout: 120000 });
        assert.is(r.status, 0, `TypeScript ${major}, ${name}:\n${r.stdout}${r.stderr}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}

const TYPED = fs.readFileSync(path.join(root, 'test', 'fixtures', 'typed.thrift'), 'utf8');

test('generated types: real enums, typedef aliases, one-of unions, exception classes, exact constants; under TypeScript 5 and 7 in CommonJS, ES2022 and NodeNext', () => {
  const src = rpc.generateTypeScript(TYPED);
  typeCheckEverywhere({
    'typed.ts': src,
    'use.ts': [
      "import { Status, type UserId, type History, type Pick, type User, NotFound, LIMIT, DEFAULT_STATUS, BY_WORD, UsersClient, registerUsers, type UsersHandlers } from './typed{ext}';",
      "import { RpcServer } from 'linkpoll/rpc';",
      'export const id: UserId = 5n;',
      'export const h: History = [Status.OK, Status.GONE];',
      "export const name: string | undefined = Status[Status.GONE];",
      'export const limit: 100 = LIMIT;',
      'export const missing: Status.MISSING = DEFAULT_STATUS;',
      'export const word: Status | undefined = BY_WORD.get("ok");',
      "export const byName: Pick = { name: 'ann' };",
      'export const byId: Pick = { id: 7n };',
      "export const user: User = { id: 1n, status: Status.OK };",
      '// @ts-expect-error: 42 is not a Status',
      'export const notAStatus: Status = 42;',
      "// @ts-expect-error: a union takes one member",
      "export const both: Pick = { name: 'ann', id: 7n };",
      '// @ts-expect-error: UserId is a bigint',
      'export const wrongId: UserId = 5;',
      'const handlers: UsersHandlers = {',
      "  find: ({ how }) => { if (how?.name === undefined) throw new NotFound({ message: 'no such user', code: 4 }); return { id: 1n, name: how.name }; },",
      '  all: ({ limit }) => Array.from({ length: limit ?? 0 }, (_, i) => ({ id: BigInt(i) })),',
      '};',
      'export async function use(c: UsersClient): Promise<number> {',
      '  registerUsers(new RpcServer(), handlers);',
      '  try { return (await c.find({ id: 1n })).name?.length ?? 0; } catch (e) {',
      '    if (e instanceof NotFound) { const code: number | undefined = e.code; const text: string = e.message; return (code ?? 0) + text.length; }',
      '    throw e;',
      '  }',
      '}',
    ].join('\n'),
  });
});

test('generated exception classes: a handler throws one, the caller catches the same class with its fields; unions are one of; docs become JSDoc', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-gen-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'linkpoll'), 'dir');
  const src = rpc.generateTypeScript(TYPED);
  for (const doc of ['/** How a lookup ended. */', '  /** Found it. */', '/** Users are numbered with i64s. */', '  /** By name. */', '  /** The user\'s number. */',
    '/** Finds users. */', '   * Looks one up.', '   * @throws {NotFound} (nf)']) {
    assert.ok(src.includes(doc), `generated code lacks ${doc}`);
  }
  const gen = load(src, path.join(dir, 'typed.js'));
  assert.is(gen.Status[5], 'GONE');
  assert.is(gen.Status.MISSING, 4);
  const server = new rpc.RpcServer({ logger: null });
  gen.registerUsers(server, {
    find: ({ how }: { how: { name?: string; id?: bigint } }) => {
      if (how.id === 0n) throw new gen.Invalid({ why: 'zero' });
      if (how.name !== 'ann') throw new gen.NotFound({ message: `no user ${how.name ?? how.id}`, code: 4 });
      return { id: 1n, name: 'ann', status: 5 };
    },
    all: ({ limit }: { limit: number }) => Array.from({ length: limit }, (_, i) => ({ id: BigInt(i) })),
  });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const client = new gen.UsersClient({ targets: [`127.0.0.1:${port}`] });
  const found = await client.find({ name: 'ann' }) as { id: bigint; name: string; status: number };
  assert.equal([found.id, found.name, found.status], [1n, 'ann', 5]);
  const e = await client.find({ name: 'bob' }).catch((x: unknown) => x) as Error & { code: number; thriftField: string };
  assert.instance(e, gen.NotFound);
  assert.instance(e, rpc.ThriftException);
  assert.is(e.message, 'no user bob');
  assert.is(e.code, 4);
  assert.is(e.thriftField, 'nf');
  const bad = await client.find({ id: 0n }).catch((x: unknown) => x) as Error & { why: string; thriftField: string };
  assert.instance(bad, gen.Invalid);
  assert.is(bad.why, 'zero');
  assert.is(bad.thriftField, 'bad');
  // The IDL's default (LIMIT) is sent when the argument is left out.
  assert.is((await client.all() as unknown[]).length, 100);
  // One of: two members (or none) is the caller's error, before anything is sent.
  const two = await client.find({ name: 'ann', id: 1n }).catch((x: Error) => x) as Error;
  assert.match(two.message, /how: a union takes exactly one field, got 2 \(name, id\)/);
  const none = await client.find({}).catch((x: Error) => x) as Error;
  assert.match(none.message, /a union takes exactly one field, got 0/);
  client.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('one module per IDL file (generate({ perFile })): includes become imports, descriptions are shared (an included exception class is caught by class); compiles everywhere; --watch regenerates', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'linkpoll-perfile-'));
  const idlDir = path.join(dir, 'idl');
  fs.mkdirSync(path.join(idlDir, 'common'), { recursive: true });
  fs.writeFileSync(path.join(idlDir, 'common', 'base.thrift'), [
    'include "types.thrift"',
    '/** What every response carries. */',
    'struct BaseResp { 1: string StatusMessage = "", 2: i32 StatusCode = 0, 3: types.Level level }',
    'exception BaseError { 1: string message, 2: i32 code }',
  ].join('\n'));
  fs.writeFileSync(path.join(idlDir, 'common', 'types.thrift'), 'typedef i64 UserId\nenum Level { LOW = 1, HIGH = 2 }');
  fs.writeFileSync(path.join(idlDir, 'user.thrift'), [
    'include "common/base.thrift"',
    'include "common/types.thrift"',
    'struct GetUserReq { 1: types.UserId id, 2: types.Level level }',
    'struct GetUserResp { 1: string name, 255: base.BaseResp BaseResp }',
    'service UserService { GetUserResp GetUser(1: GetUserReq req) throws (1: base.BaseError err) }',
  ].join('\n'));
  const out = path.join(dir, 'gen');
  const written = rpc.generate(path.join(idlDir, 'user.thrift'), { perFile: true, outDir: out });
  assert.equal(Object.keys(written).sort(), ['_idl.ts', 'common/base.ts', 'common/types.ts', 'user.ts']);
  assert.match(written['user.ts']!, /import \* as base from '\.\/common\/base\.js';/);
  assert.match(written['user.ts']!, /id\?: types\.UserId;/);
  assert.not.match(written['user.ts']!, /interface BaseResp/);
  const files: Record<string, string> = { 'use.ts': [
    "import { UserServiceClient, registerUserService, type GetUserReq } from './user{ext}';",
    "import { BaseError, type BaseResp } from './common/base{ext}';",
    "import { Level } from './common/types{ext}';",
    "import { RpcServer } from 'linkpoll/rpc';",
    'export const req: GetUserReq = { id: 1n, level: Level.HIGH };',
    "export const resp: BaseResp = { StatusCode: 0, level: Level.LOW };",
    "registerUserService(new RpcServer(), { GetUser: ({ req: r }) => { if (r?.id === 0n) throw new BaseError({ message: 'zero', code: 1 }); return { name: 'n' }; } });",
    'export const call = (c: UserServiceClient) => c.GetUser(req).catch((e: unknown) => (e instanceof BaseError ? e.code : 0));',
  ].join('\n') };
  for (const [f, text] of Object.entries(written)) files[f] = text;
  typeCheckEverywhere(files);

  // Run it: compiled as CommonJS, the classes of one module are the ones the other's client makes.
  fs.mkdirSync(path.join(out, 'node_modules'));
  fs.symlinkSync(root, path.join(out, 'node_modules', 'linkpoll'), 'dir');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--outDir', path.join(out, 'js'), '--module', 'commonjs', '--target', 'ES2022',
    '--skipLibCheck', '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), ...Object.keys(written).map((f) => path.join(out, f))], { stdio: 'pipe' });
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const user = require(path.join(out, 'js', 'user.js'));
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const base = require(path.join(out, 'js', 'common', 'base.js'));
  const server = new rpc.RpcServer({ logger: null });
  user.registerUserService(server, { GetUser: ({ req }: { req: { id: bigint } }) => {
    if (req.id === 0n) throw new base.BaseError({ message: 'zero', code: 7 });
    return { name: `u${req.id}`, BaseResp: { StatusCode: 0, level: 2 } };
  } });
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const client = new user.UserServiceClient({ targets: [`127.0.0.1:${port}`] });
  try {
    assert.equal(await client.GetUser({ id: 5n }), { name: 'u5', BaseResp: { StatusMessage: '', StatusCode: 0, level: 2 } });
    const e = await client.GetUser({ id: 0n }).catch((x: Error) => x);
    assert.instance(e, base.BaseError);
    assert.equal([e.message, e.code], ['zero', 7]);
  } finally {
    client.close();
    await server.close();
  }

  // --watch: an edit to an included file regenerates the modules.
  const cli = path.join(root, require(path.join(root, 'package.json')).bin['linkpoll-thrift']);
  const watchOut = path.join(dir, 'watched');
  const w = spawn(process.execPath, [cli, path.join(idlDir, 'user.thrift'), '--out', watchOut, '--per-file', '--watch'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    let said = '';
    await new Promise<void>((resolve) => w.stderr!.on('data', (d) => { said += d; if (said.includes('watching')) resolve(); }));
    assert.not.match(fs.readFileSync(path.join(watchOut, 'common', 'types.ts'), 'utf8'), /MID/);
    fs.writeFileSync(path.join(idlDir, 'common', 'types.thrift'), 'typedef i64 UserId\nenum Level { LOW = 1, MID = 5, HIGH = 2 }');
    const until = Date.now() + 5000;
    while (!fs.readFileSync(path.join(watchOut, 'common', 'types.ts'), 'utf8').includes('MID = 5') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    assert.match(fs.readFileSync(path.join(watchOut, 'common', 'types.ts'), 'utf8'), /MID = 5/);
  } finally {
    w.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
