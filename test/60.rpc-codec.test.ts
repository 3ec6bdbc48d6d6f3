import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inspect, isDeepStrictEqual } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as rpc from '../src/rpc/internal';
import { seededRandom } from './helpers';

const fixtures = path.join(__dirname, '..', '..', 'test', 'fixtures');
const idl = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'everything.thrift'), 'utf8'));
const gee = rpc.parseIdl(fs.readFileSync(path.join(fixtures, 'geecache.thrift'), 'utf8'));
const E = idl.structs.Everything;

const sample = {
  flag: true, small: -5, mid: -30000, int32: 2147483647, big: -9007199254740993n, ratio: 3.25,
  text: 'héllo wörld ✓', blob: Buffer.from([0, 1, 2, 255]),
  inner: { s: 'in', b: Buffer.from('bytes') },
  nums: [1, -2, 3], tags: new Set(['a', 'b']),
  byName: new Map([['x', { s: 'X' }], ['y', { s: 'Y', b: Buffer.alloc(0) }]]),
  color: 7, matrix: [[1n, 2n], [], [3n]],
  nested: new Map([[1, new Set(['p'])], [-1, new Set<string>()]]),
};

function encode(spec: rpc.StructSpec, v: Record<string, unknown>): Buffer {
  const w = new rpc.ThriftWriter(Buffer.alloc(16));
  w.struct(spec, v);
  return w.buf.subarray(0, w.pos);
}

test('IDL: enums, typedefs, containers, exceptions, oneway and void are understood', () => {
  assert.equal(idl.enums.Color, { RED: 1, GREEN: 2, BLUE: 7 });
  const k = idl.services.Kitchen.methods;
  assert.is(k.fire.oneway, true);
  assert.equal(k.nothing.result.fields, []);
  assert.equal(k.fail.result.fields.map((f) => [f.id, f.name]), [[0, 'success'], [1, 'nf']]);
  assert.is(E.fields.find((f) => f.name === 'big')!.type, 'i64');
  assert.is(E.fields.find((f) => f.name === 'color')!.type, 'i32');
});

test('IDL number literals as Apache\'s compiler reads them: hex (enum values, field ids, consts), signs, .5', () => {
  const t = rpc.parseIdl('enum E { A = 0x10, B, C = -0x2, D = +3 }\nstruct S { 0x1: i32 a = 0xff; +2: i64 b = -0x7fffffffffffffff; 3: double c = .5 }\nconst double X = -1.5e3');
  assert.equal(t.enums.E, { A: 16, B: 17, C: -2, D: 3 });
  assert.equal(t.structs.S!.fields.map((f) => [f.id, f.default]), [[1, 255], [2, -0x7fffffffffffffffn], [3, 0.5]]);
  assert.is(t.consts.X, -1500);
  assert.throws(() => rpc.parseIdl('enum E { 5 }'), /enum E: expected a value name, got 5/);
});

test('IDL mistakes are refused with ERR_LINKPOLL_IDL and where they are (file:line:column)', () => {
  const err = (src: string) => { try { rpc.parseIdl(src); } catch (e) { return `${(e as NodeJS.ErrnoException).code} ${(e as Error).message}`; } return 'accepted'; };
  assert.is(err('struct A {\n  1: i32 a\n  2: Missing b\n}'), 'ERR_LINKPOLL_IDL IDL <idl>:3:6: unknown type Missing');
  assert.is(err('struct A { 1: i32 a'), 'ERR_LINKPOLL_IDL IDL <idl>:1:20: unexpected end of input');
  // Two fields with one id, or one name, could not be told apart: Apache's compiler refuses them too.
  assert.is(err('struct A { 1: i32 a; 1: string b }'), 'ERR_LINKPOLL_IDL IDL <idl>:1:22: struct A: field id 1 is used twice');
  assert.is(err('service S { void f(1: i32 x, 2: i32 x) }'), 'ERR_LINKPOLL_IDL IDL <idl>:1:30: S.f arguments: field name x is used twice');
  assert.is(err('struct A {}\nexception A {}'), 'ERR_LINKPOLL_IDL IDL <idl>:2:11: exception A is defined twice (first at <idl>:1:8)');
  assert.is(err('service S { void f(); oneway void f() }'), 'ERR_LINKPOLL_IDL IDL <idl>:1:35: service S: method f is defined twice');
  assert.is(err('enum E { A, B, A }'), 'ERR_LINKPOLL_IDL IDL <idl>:1:16: enum E: A is defined twice');
  assert.is(err('enum E { A = x }'), 'ERR_LINKPOLL_IDL IDL <idl>:1:14: enum E: A = x is not an i32');
  assert.is(err('struct A { 1: list<> a }'), "ERR_LINKPOLL_IDL IDL <idl>:1:20: expected a type, got '>'");
  assert.is(err('struct A { 1: i32 a } @'), "ERR_LINKPOLL_IDL IDL <idl>:1:23: unexpected character '@'");
  const files = { 'svc.thrift': 'include "base.thrift"\nstruct R { 1: base.Nope n }', 'base.thrift': 'struct Base {}' };
  assert.throws(() => rpc.parseIdlFiles(files, 'svc.thrift'), /^IDL svc\.thrift:2:15: unknown type base\.Nope$/);
});

test('every type round-trips', () => {
  const b = encode(E, sample);
  const back = new rpc.ThriftReader(b).struct(E);
  assert.equal(back, sample);
});

test('bytes match Apache Thrift\'s TBinaryProtocol for the same struct', () => {
  // Request{group:"scores", key:"Tom"} as the rig's C load generator writes it.
  const want = Buffer.concat([
    Buffer.from([11, 0, 1, 0, 0, 0, 6]), Buffer.from('scores'),
    Buffer.from([11, 0, 2, 0, 0, 0, 3]), Buffer.from('Tom'), Buffer.from([0]),
  ]);
  assert.ok(encode(gee.structs.Request, { group: 'scores', key: 'Tom' }).equals(want));
});

test('every type: bytes match Apache Thrift for Node (npm thrift TBinaryProtocol), and it reads ours', () => {
  // Apache's own encoder writes `sample` field by field (its write API, as its generated code
  // calls it); ours must produce the same bytes, and Apache's reader must walk ours to the end.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const thrift = require('thrift');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const Int64 = require('node-int64');
  const T = thrift.Thrift.Type;
  const out: Buffer[] = [];
  const trans = new thrift.TBufferedTransport(undefined, (b: Buffer) => out.push(Buffer.from(b)));
  const p = new thrift.TBinaryProtocol(trans);
  const i64 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(v); return new Int64(b); };
  const field = (name: string, type: number, id: number, write: () => void) => { p.writeFieldBegin(name, type, id); write(); p.writeFieldEnd(); };
  const inner = (v: { s: string; b?: Buffer }) => {
    p.writeStructBegin('Inner');
    field('s', T.STRING, 1, () => p.writeString(v.s));
    if (v.b !== undefined) field('b', T.STRING, 2, () => p.writeBinary(v.b));
    p.writeFieldStop(); p.writeStructEnd();
  };
  p.writeStructBegin('Everything');
  field('flag', T.BOOL, 1, () => p.writeBool(sample.flag));
  field('small', T.BYTE, 2, () => p.writeByte(sample.small));
  field('mid', T.I16, 3, () => p.writeI16(sample.mid));
  field('int32', T.I32, 4, () => p.writeI32(sample.int32));
  field('big', T.I64, 5, () => p.writeI64(i64(sample.big)));
  field('ratio', T.DOUBLE, 6, () => p.writeDouble(sample.ratio));
  field('text', T.STRING, 7, () => p.writeString(sample.text));
  field('blob', T.STRING, 8, () => p.writeBinary(sample.blob));
  field('inner', T.STRUCT, 9, () => inner(sample.inner));
  field('nums', T.LIST, 10, () => { p.writeListBegin(T.I32, sample.nums.length); for (const n of sample.nums) p.writeI32(n); p.writeListEnd(); });
  field('tags', T.SET, 11, () => { p.writeSetBegin(T.STRING, sample.tags.size); for (const t of sample.tags) p.writeString(t); p.writeSetEnd(); });
  field('byName', T.MAP, 12, () => {
    p.writeMapBegin(T.STRING, T.STRUCT, sample.byName.size);
    for (const [k, v] of sample.byName) { p.writeString(k); inner(v); }
    p.writeMapEnd();
  });
  field('color', T.I32, 13, () => p.writeI32(sample.color));
  field('matrix', T.LIST, 14, () => {
    p.writeListBegin(T.LIST, sample.matrix.length);
    for (const row of sample.matrix) { p.writeListBegin(T.I64, row.length); for (const x of row) p.writeI64(i64(x)); p.writeListEnd(); }
    p.writeListEnd();
  });
  field('nested', T.MAP, 15, () => {
    p.writeMapBegin(T.I32, T.SET, sample.nested.size);
    for (const [k, set] of sample.nested) { p.writeI32(k); p.writeSetBegin(T.STRING, set.size); for (const x of set) p.writeString(x); p.writeSetEnd(); }
    p.writeMapEnd();
  });
  p.writeFieldStop(); p.writeStructEnd();
  trans.flush();
  const apache = Buffer.concat(out);
  const ours = encode(E, sample);
  assert.is(ours.toString('hex'), apache.toString('hex'));
  assert.equal(new rpc.ThriftReader(apache).struct(E), sample);
  // Apache's reader over our bytes: skipping the struct consumes exactly all of them.
  const rt = new thrift.TFramedTransport(ours);
  new thrift.TBinaryProtocol(rt).skip(T.STRUCT);
  assert.is(rt.readPos, ours.length);
});

test('unknown fields are skipped', () => {
  const b = encode(E, sample);
  const narrow: rpc.StructSpec = { name: 'Narrow', fields: [{ id: 7, name: 'text', type: 'string' }, { id: 13, name: 'color', type: 'i32' }] };
  assert.equal(new rpc.ThriftReader(b).struct(narrow), { text: sample.text, color: 7 });
});

test('every length is checked: truncations and lies give ERR_LINKPOLL_PROTOCOL, never a crash', () => {
  const b = encode(E, sample);
  for (let cut = 0; cut < b.length; cut++) {
    assert.throws(() => new rpc.ThriftReader(b.subarray(0, cut)).struct(E), (e: NodeJS.ErrnoException) => e.code === 'ERR_LINKPOLL_PROTOCOL');
  }
  // A string claiming 2 GB, a list claiming a billion elements.
  const lie = Buffer.from([11, 0, 7, 0x7f, 0xff, 0xff, 0xff, 0]);
  assert.throws(() => new rpc.ThriftReader(lie).struct(E), /truncated/);
  const many = Buffer.from([15, 0, 10, 8, 0x3f, 0xff, 0xff, 0xff, 0]);
  assert.throws(() => new rpc.ThriftReader(many).struct(E), /does not fit/);
  // Random bytes: only protocol errors or values.
  const rnd = seededRandom(1);
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(Array.from({ length: 1 + (i % 64) }, () => rnd(256)));
    try { new rpc.ThriftReader(junk).struct(E); } catch (e) { assert.is((e as NodeJS.ErrnoException).code, 'ERR_LINKPOLL_PROTOCOL'); }
  }
});

test('message headers in Thrift\'s old binary format (no version word) are read, as Apache servers read them', () => {
  // name length, name, type byte, seqid: what TBinaryProtocol(strictWrite=False) writes
  const old = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('Get'), Buffer.from([1, 0, 0, 0, 42, 0])]);
  assert.equal(new rpc.ThriftReader(old).messageBegin(), { name: 'Get', type: rpc.MessageType.CALL, seqid: 42 });
  const badType = Buffer.from(old); badType[7] = 9;
  assert.throws(() => new rpc.ThriftReader(badType).messageBegin(), /unknown message type 9/);
  // A first word that is neither: a negative one with another version, or a name over 64 KiB.
  assert.throws(() => new rpc.ThriftReader(Buffer.from([0x80, 0x02, 0, 1, 0, 0, 0, 0])).messageBegin(), /not a binary Thrift message \(first word 0x80020001\)/);
  assert.throws(() => new rpc.ThriftReader(Buffer.from([0, 1, 0, 0, 0x41])).messageBegin(), /not a binary Thrift message/);
  // Per connection, from the first bytes: unframed (the name follows) or framed (the name's length follows).
  assert.is(rpc.detectTransport(old.subarray(0, 8)), 'binary');
  assert.is(rpc.detectTransport(Buffer.concat([Buffer.from([0, 0, 0, old.length]), old]).subarray(0, 8)), 'framed');
  assert.is(rpc.detectTransport(old.subarray(0, 6)), null); // not yet told apart
  assert.equal(rpc.detectTransport(Buffer.from([0, 0, 0, 3, 0x10, 0x20, 0x30, 0x40])), { unsupported: 'unknown protocol (first bytes 000000031020)' });
});

test('recursive structs, negative field ids, odd field names and wrong wire types', () => {
  const t = rpc.parseIdl(`
    struct Node { 1: string label; 2: optional Node next; -3: i32 neg; 4: list<Node> kids }
    struct Odd { 1: i32 constructor; 2: string toString }
  `);
  const Node = t.structs.Node!;
  const v = { label: 'a', neg: -7, next: { label: 'b', next: { label: 'c', kids: [{ label: 'd' }] } } };
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  w.struct(Node, v);
  assert.equal(new rpc.ThriftReader(w.buf.subarray(0, w.pos)).struct(Node), v);
  const odd = { constructor: 5, toString: 'x' };
  w.reset(Buffer.alloc(0));
  w.struct(t.structs.Odd!, odd);
  const back = new rpc.ThriftReader(w.buf.subarray(0, w.pos)).struct(t.structs.Odd!);
  assert.is(back.constructor, 5);
  assert.is(back.toString, 'x');
  // Field 1 (a string) sent as an i32: skipped, not misread.
  const wrong = Buffer.from([8, 0, 1, 0, 0, 0, 9, 0]);
  assert.equal(new rpc.ThriftReader(wrong).struct(Node), {});
  assert.throws(() => new rpc.ThriftWriter(Buffer.alloc(0)).struct({ name: 'P', fields: [{ id: 1, name: '__proto__', type: 'i32' }] }, {}), /__proto__/);
});

test('short strings are reused across messages, and slot collisions never return the wrong one', () => {
  const S: rpc.StructSpec = { name: 'S', fields: [{ id: 1, name: 's', type: 'string' }] };
  const words = Array.from({ length: 5000 }, (_, i) => `k${(i * 7919) % 100000}`.slice(0, 1 + (i % 16)));
  for (let round = 0; round < 2; round++) {
    for (const wd of words) assert.is(new rpc.ThriftReader(encode(S, { s: wd })).struct(S).s, wd);
  }
  for (const wd of ['é', 'ünï', 'ab\u00ff', '\u0000x']) assert.is(new rpc.ThriftReader(encode(S, { s: wd })).struct(S).s, wd);
  // Strings are matched by their bytes packed into words: ones that pack alike but for their
  // length (NULs), or that differ only in a word's last byte, stay apart.
  const tricky: string[] = [];
  for (let n = 0; n <= 17; n++) tricky.push('\u0000'.repeat(n), 'abcdefghijklmnopq'.slice(0, n), `${'abcdefghijklmnopq'.slice(0, n - 1)}\u0000`, `\u0000${'abcdefghijklmnopq'.slice(0, n - 1)}`);
  for (let round = 0; round < 2; round++) {
    for (const wd of tricky) assert.is(new rpc.ThriftReader(encode(S, { s: wd })).struct(S).s, wd);
  }
  // A NUL that starts the last, partial word packs to the same words as the string without it;
  // strings that differ in one 4-byte word only.
  for (let i = 0; i < 4000; i++) {
    const wd = `w${i.toString(36)}`.repeat(4).slice(0, 1 + (i % 15));
    if (wd.length % 4 === 0) continue;
    const at = wd.length & ~3;
    for (const v of [wd, `${wd.slice(0, at)}\u0000${wd.slice(at)}`]) assert.is(new rpc.ThriftReader(encode(S, { s: v })).struct(S).s, v);
  }
  for (let j = 0; j < 4; j++) {
    for (let i = 0; i < 3000; i++) {
      const v = `abcdefghijklmnop`.slice(0, j * 4) + (i + 1000).toString(36).padStart(4, '0') + 'abcdefghijklmnop'.slice(j * 4 + 4);
      assert.is(new rpc.ThriftReader(encode(S, { s: v })).struct(S).s, v);
    }
  }
});

test('integers out of their type\'s range are refused before anything is written', () => {
  const S: rpc.StructSpec = { name: 'N', fields: [{ id: 1, name: 'a', type: 'i16' }, { id: 2, name: 'b', type: 'i32' }, { id: 3, name: 'c', type: 'i64' }] };
  for (const v of [{ a: 70000 }, { a: -32769 }, { b: 2 ** 31 }, { b: 1.5 }, { b: NaN }, { c: 3.5 }, { c: NaN }, { c: 2n ** 63n }]) {
    assert.throws(() => encode(S, v), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE', String(Object.entries(v)));
  }
  assert.equal(new rpc.ThriftReader(encode(S, { a: -32768, b: -(2 ** 31) })).struct(S), { a: -32768, b: -(2 ** 31) });
  assert.equal(new rpc.ThriftReader(encode(S, { a: 32767, b: 2 ** 31 - 1 })).struct(S), { a: 32767, b: 2 ** 31 - 1 });
  assert.equal(new rpc.ThriftReader(encode(S, { c: -(2 ** 53) })).struct(S), { c: -(2n ** 53n) });
});

test('IDL field defaults: written when a value leaves the field undefined (null writes nothing), given to decoded structs as fresh copies', () => {
  const d = rpc.parseIdl(`enum Color { RED = 1, BLUE = 7 }
    struct D { 1: i32 n = 5, 2: Color c = Color.BLUE, 3: list<string> tags = ["a"], 4: string s }`).structs.D!;
  const noDefaults: rpc.StructSpec = { name: 'D', fields: d.fields.map(({ id, name, type }) => ({ id, name, type })) };
  const read = (spec: rpc.StructSpec, v: Record<string, unknown>) => new rpc.ThriftReader(encode(d, v)).struct(spec);
  assert.equal(read(noDefaults, { s: 'x' }), { n: 5, c: 7, tags: ['a'], s: 'x' }, 'defaults go on the wire');
  assert.equal(read(noDefaults, { n: 1, c: null }), { n: 1, tags: ['a'] }, 'a value wins; null sends nothing');
  const a = new rpc.ThriftReader(Buffer.from([0])).struct(d), b = new rpc.ThriftReader(Buffer.from([0])).struct(d);
  assert.equal(a, { n: 5, c: 7, tags: ['a'] });
  (a.tags as string[]).push('b');
  assert.equal(b.tags, ['a'], 'each decoded struct gets its own copy');
  // binary values are Buffers, as decoded binary fields are (a const, a default, and its copies).
  const bin = rpc.parseIdl('const binary MAGIC = "ab"\nstruct B { 1: binary b = "xy" }');
  assert.ok(Buffer.isBuffer(bin.consts.MAGIC) && (bin.consts.MAGIC as Buffer).toString() === 'ab');
  const bd = new rpc.ThriftReader(Buffer.from([0])).struct(bin.structs.B!);
  assert.ok(Buffer.isBuffer(bd.b) && (bd.b as Buffer).toString() === 'xy');
  assert.match(rpc.generateTypeScript('const binary MAGIC = "ab"'), `export const MAGIC = Buffer.from("6162", 'hex');`);
  // A const used in another is typed again as that one's type.
  assert.equal(rpc.parseIdl('const i32 A = 5\nconst i64 B = A\nconst list<i64> L = [A]').consts, { A: 5, B: 5n, L: [5n] });
  assert.throws(() => rpc.parseIdl('const i32 A = 500\nconst byte B = A'), /const B: 500 is not a byte/);
  assert.throws(() => rpc.parseIdl('struct X { 1: i16 a = 70000 }'), (e: NodeJS.ErrnoException) => e.code === 'ERR_LINKPOLL_IDL' && /default of a: 70000 is not an i16/.test(e.message));
});

test('a value without a required field, or with a field of the wrong type, is refused as the caller\'s mistake, saying where', () => {
  const Inner: rpc.StructSpec = { name: 'Inner', fields: [{ id: 1, name: 'key', type: 'string', required: true }] };
  const Outer: rpc.StructSpec = { name: 'Outer', fields: [{ id: 1, name: 'req', type: Inner }] };
  assert.throws(() => encode(Outer, { req: {} }), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE' && e.message === 'Outer.req.key is required');
  // A value of the wrong type names the struct type and the field.
  const idl = rpc.parseIdl('struct I { 1: string key; 2: i32 n; 3: list<i64> xs }\nstruct O { 1: I req; 2: list<I> items }');
  for (const [v, msg] of [
    [{ req: { key: 5 } }, 'I.key: expected string, got number'],
    [{ req: { n: '1' } }, 'I.n: expected number, got string'],
    [{ req: { xs: [1n, 'a'] } }, 'I.xs: expected bigint, got string'],
    [{ items: [{ key: null }, { key: 1 }] }, 'I.key: expected string, got number'],
    [{ req: 5 }, 'O.req: expected I, got number'],
  ] as const) {
    assert.throws(() => encode(idl.structs.O!, v as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE' && e.message === msg, msg);
  }
  // Bytes without it are the wire's fault: a protocol error.
  assert.throws(() => new rpc.ThriftReader(Buffer.from([12, 0, 1, 0, 0])).struct(Outer),
    (e: NodeJS.ErrnoException) => e.code === 'ERR_LINKPOLL_PROTOCOL' && /Inner.key is required/.test(e.message));
});

test('containers whose elements are not of the declared type are a protocol error, not holes (found by fuzzing)', () => {
  const t = rpc.parseIdl('struct C { 1: list<i64> nums; 2: map<string, i32> m; 3: set<string> s }').structs.C!;
  // list<i64> field carrying two i32 elements
  const list = Buffer.from([15, 0, 1, 8, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0]);
  assert.throws(() => new rpc.ThriftReader(list).struct(t), (e: NodeJS.ErrnoException) => e.code === 'ERR_LINKPOLL_PROTOCOL' && /wire type 8/.test(e.message));
  // map<string, i32> whose values are bytes
  const map = Buffer.from([13, 0, 2, 11, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0x61, 7, 0]);
  assert.throws(() => new rpc.ThriftReader(map).struct(t), /container elements/);
  // Empty containers may name any element type (some writers put 0 there).
  const empty = Buffer.from([15, 0, 1, 0, 0, 0, 0, 0, 13, 0, 2, 0, 0, 0, 0, 0, 0, 14, 0, 3, 8, 0, 0, 0, 0, 0]);
  assert.equal(new rpc.ThriftReader(empty).struct(t), { nums: [], m: new Map(), s: new Set() });
});

test('nesting depth is capped', () => {
  // A recursive struct (Node.next: Node) 200 deep, and lists of lists 200 deep.
  const Node = rpc.parseIdl('struct Node { 1: string label; 2: Node next }').structs.Node!;
  const deep = Buffer.from([...Array.from({ length: 200 }, () => [12, 0, 2]).flat(), ...Array(201).fill(0)]);
  assert.throws(() => new rpc.ThriftReader(deep).struct(Node), /nesting deeper/);
  let t: rpc.TypeSpec = 'i64';
  for (let k = 0; k < 70; k++) t = { list: t };
  const Lists: rpc.StructSpec = { name: 'L', fields: [{ id: 1, name: 'x', type: t }] };
  const levels = Array.from({ length: 70 }, () => [15, 0, 0, 0, 1]).flat();
  assert.throws(() => new rpc.ThriftReader(Buffer.from([15, 0, 1, ...levels, 10, 0, 0, 0, 0, 0])).struct(Lists), /nesting deeper/);
  const skipDeep = Buffer.from(Array.from({ length: 300 }, () => [12, 0, 1]).flat());
  assert.throws(() => new rpc.ThriftReader(skipDeep).struct({ name: 'X', fields: [] }), /nesting deeper/);
});

test('TTHeader golden bytes: a Kitex-style request with int and string KV headers', () => {
  const w = new rpc.ThriftWriter(Buffer.alloc(8));
  const ints: [number, string][] = [[3, 'loadgen'], [20, ''], [6, 'geecache'], [9, 'Get'], [22, '1'], [12, '5000'], [1, 'unframed']];
  const start = rpc.beginTTHeader(w, 7, ints, [['isn', 'GroupCache']]);
  w.messageBegin('Get', rpc.MessageType.CALL, 7);
  w.struct(gee.services.GroupCache.methods.Get.args, { req: { group: 'scores', key: 'Tom' } });
  rpc.endFrame(w, start);
  const got = w.buf.subarray(0, w.pos);
  // Built by hand from the layout (as the rig's load generator builds it with -x).
  const s16 = (s: string) => { const b = Buffer.alloc(2 + s.length); b.writeUInt16BE(s.length); b.write(s, 2); return b; };
  const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
  let hdr = Buffer.concat([Buffer.from([0, 0, 0x10]), u16(ints.length), ...ints.flatMap(([k, v]) => [u16(k), s16(v)]),
    Buffer.from([0x01]), u16(1), s16('isn'), s16('GroupCache')]);
  hdr = Buffer.concat([hdr, Buffer.alloc((4 - (hdr.length % 4)) % 4)]);
  const msg = Buffer.concat([Buffer.from([0x80, 1, 0, 1, 0, 0, 0, 3]), Buffer.from('Get'), Buffer.from([0, 0, 0, 7, 12, 0, 1]),
    Buffer.from([11, 0, 1, 0, 0, 0, 6]), Buffer.from('scores'), Buffer.from([11, 0, 2, 0, 0, 0, 3]), Buffer.from('Tom'), Buffer.from([0, 0])]);
  const body = Buffer.concat([Buffer.from([0x10, 0x00, 0, 0, 0, 0, 0, 7]), u16(hdr.length / 4), hdr, msg]); // FLAGS 0
  const want = Buffer.concat([Buffer.alloc(4), body]);
  want.writeUInt32BE(body.length, 0);
  assert.is(got.toString('hex'), want.toString('hex'));
  const info = rpc.parseTTHeader(got);
  assert.is(info.seqid, 7);
  assert.is(info.intKV.get(rpc.IntKey.ToMethod), 'Get');
  assert.is(info.intKV.get(rpc.IntKey.RPCTimeout), '5000');
  assert.is(info.strKV.get('isn'), 'GroupCache');
  assert.is(info.payloadStart, 14 + hdr.length);
});

test('TTHeader: what is not understood is refused with a reason', () => {
  const base = Buffer.from('00000014100000000000000100010000800100010000000000000000', 'hex');
  const bad = (mut: (b: Buffer) => void) => { const b = Buffer.from(base); mut(b); return b; };
  assert.throws(() => rpc.parseTTHeader(bad((b) => b.writeUInt16BE(0x0ffe, 4))), /magic/);
  assert.throws(() => rpc.parseTTHeader(bad((b) => { b[14] = 2; })), /compact/);
  assert.throws(() => rpc.parseTTHeader(bad((b) => { b[15] = 1; b[16] = 3; })), /transform 3 is not supported \(zlib, 1, is\)/);
  assert.throws(() => rpc.parseTTHeader(bad((b) => { b[15] = 9; })), /9 transforms/);
  assert.throws(() => rpc.parseTTHeader(bad((b) => { b[16] = 0x42; })), /unknown TTHeader info id/);
  assert.throws(() => rpc.parseTTHeader(bad((b) => b.writeUInt16BE(200, 12))), /does not fit/);
});

test('Apache THeader golden bytes: varint string KV headers, read back, answered in kind', () => {
  const long = 'v'.repeat(200); // a length that needs a two-byte varint
  const w = new rpc.ThriftWriter(Buffer.alloc(8));
  const start = rpc.beginTTHeader(w, 9, [[rpc.IntKey.ToMethod, 'Get']], [['x-key', 'Tom'], ['long', long]], undefined, 0, rpc.APACHE_THEADER_MAGIC);
  w.messageBegin('Get', rpc.MessageType.CALL, 9);
  w.struct(gee.services.GroupCache.methods.Get.args, { req: { group: 'scores', key: 'Tom' } });
  rpc.endFrame(w, start);
  const got = w.buf.subarray(0, w.pos);
  // From Apache Thrift's doc/specs/HeaderFormat.md: protocol id, transform count, info id 1,
  // count, then varint-length strings; no integer keys in this format (ToMethod is not sent).
  let hdr = Buffer.concat([Buffer.from([0, 0, 1, 2, 5]), Buffer.from('x-key'), Buffer.from([3]), Buffer.from('Tom'),
    Buffer.from([4]), Buffer.from('long'), Buffer.from([200 & 0x7f | 0x80, 1]), Buffer.from(long)]);
  hdr = Buffer.concat([hdr, Buffer.alloc((4 - (hdr.length % 4)) % 4)]);
  const msg = Buffer.concat([Buffer.from([0x80, 1, 0, 1, 0, 0, 0, 3]), Buffer.from('Get'), Buffer.from([0, 0, 0, 9, 12, 0, 1]),
    Buffer.from([11, 0, 1, 0, 0, 0, 6]), Buffer.from('scores'), Buffer.from([11, 0, 2, 0, 0, 0, 3]), Buffer.from('Tom'), Buffer.from([0, 0])]);
  const size = Buffer.alloc(2);
  size.writeUInt16BE(hdr.length / 4);
  const body = Buffer.concat([Buffer.from([0x0f, 0xff, 0, 0, 0, 0, 0, 9]), size, hdr, msg]);
  const want = Buffer.concat([Buffer.alloc(4), body]);
  want.writeUInt32BE(body.length, 0);
  assert.is(got.toString('hex'), want.toString('hex'));
  const info = rpc.parseTTHeader(got);
  assert.ok(info.apache);
  assert.is(info.seqid, 9);
  assert.equal([...info.strKV], [['x-key', 'Tom'], ['long', long]]);
  assert.is(info.intKV.size, 0);
  assert.is(info.payloadStart, 14 + hdr.length);
  assert.is(rpc.detectTransport(got), 'theader');
});

test('Apache THeader: unknown info ids are skipped as Apache readers do; bad varints and unknown transforms refused', () => {
  const frame = (header: number[], ntrans = 0) => {
    const h = [0, ntrans, ...header];
    while (h.length % 4) h.push(0);
    const msg = [0x80, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    const b = Buffer.from([0, 0, 0, 0, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, h.length / 4, ...h, ...msg]);
    b.writeUInt32BE(b.length - 4, 0);
    return b;
  };
  const kv = [1, 1, 1, 0x6b, 1, 0x76]; // {k: v}
  assert.equal([...rpc.parseTTHeader(frame(kv)).strKV], [['k', 'v']]);
  assert.equal([...rpc.parseTTHeader(frame([...kv, 7, 1, 2])).strKV], [['k', 'v']]); // id 7: the rest skipped
  assert.throws(() => rpc.parseTTHeader(frame([1, 1, 0x85])), /THeader varint runs past|THeader string runs past/);
  assert.throws(() => rpc.parseTTHeader(frame([1, 1, 0x7f])), /THeader string runs past/);
  assert.throws(() => rpc.parseTTHeader(frame([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), /longer than 32 bits/);
  // Transforms: zlib (id 1) is listed for the reader to inflate; any other id is refused by name.
  assert.throws(() => rpc.parseTTHeader(frame([], 1)), /THeader transform 0 is not supported \(zlib, 1, is\)/);
  assert.throws(() => rpc.parseTTHeader(frame([2], 1)), /THeader transform 2 is not supported/);
  const zipped = rpc.parseTTHeader(frame([1, ...kv], 1));
  assert.is(zipped.transforms, 1);
  assert.equal([...zipped.strKV], [['k', 'v']]); // the info blocks after the transform list
});

test('decoded binary values are plain Buffers: strictly deep-equal to Buffer.from, printed as Buffers, independent copies', () => {
  const w = new rpc.ThriftWriter(Buffer.alloc(64));
  w.struct(gee.services.GroupCache.methods.Get.result, { success: { value: Buffer.from('630') } });
  const frame = Buffer.from(w.buf.subarray(0, w.pos));
  const a = (new rpc.ThriftReader(frame).struct(gee.services.GroupCache.methods.Get.result).success as { value: Buffer }).value;
  const b = (new rpc.ThriftReader(frame).struct(gee.services.GroupCache.methods.Get.result).success as { value: Buffer }).value;
  assert.ok(isDeepStrictEqual(a, Buffer.from('630')));
  assert.is(inspect(a), '<Buffer 36 33 30>');
  assert.ok(a.subarray(1) instanceof Buffer);
  a[0] = 0x39; // a copy: neither the frame nor another decoded value changes
  assert.is(b.toString(), '630');
  assert.ok(frame.includes(Buffer.from('630')));
});

test('uuid (Thrift 0.19+, type 16): 16 bytes on the wire, a canonical string in JavaScript; in containers, consts and defaults', () => {
  const idl = rpc.parseIdl([
    "const uuid ROOT = '00000000-0000-0000-0000-00000000000A'",
    "struct U { 1: uuid id, 2: list<uuid> more, 3: map<uuid, string> names, 4: uuid dflt = '6ba7b810-9dad-11d1-80b4-00c04fd430c8' }",
  ].join('\n'));
  assert.is(idl.consts.ROOT, '00000000-0000-0000-0000-00000000000a');
  const U = idl.structs.U!;
  const v = { id: '123e4567-e89b-12d3-a456-426614174000', more: ['00112233-4455-6677-8899-aabbccddeeff'], names: new Map([['ffffffff-ffff-ffff-ffff-ffffffffffff', 'max']]) };
  const w = new rpc.ThriftWriter(Buffer.alloc(0));
  w.struct(U, v);
  const bytes = Buffer.from(w.buf.subarray(0, w.pos));
  // Field 1: type 16, id 1, then the 16 bytes.
  assert.is(bytes.subarray(0, 19).toString('hex'), '100001' + '123e4567e89b12d3a456426614174000');
  const back = new rpc.ThriftReader(bytes).struct(U);
  assert.equal(back, { ...v, dflt: '6ba7b810-9dad-11d1-80b4-00c04fd430c8' });
  // Skipped whole when a reader does not know the field.
  const r = new rpc.ThriftReader(bytes);
  r.skip(12);
  assert.is(r.pos, bytes.length);
  assert.is(new rpc.MessageScanner(1 << 20).scan(Buffer.concat([Buffer.from([0x80, 1, 0, 1, 0, 0, 0, 1, 0x78, 0, 0, 0, 1]), bytes]), bytes.length + 13), bytes.length + 13);
  assert.throws(() => { const x = new rpc.ThriftWriter(Buffer.alloc(0)); x.struct(U, { id: 'not-a-uuid' }); }, /U\.id: expected uuid string/);
  assert.match(rpc.generateTypeScript('struct U { 1: uuid id }'), /id\??: string/);
});

test.run();
