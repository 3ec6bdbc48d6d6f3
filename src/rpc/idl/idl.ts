// Thrift IDL -> service and struct descriptions the codec runs on. Covers what services use:
// include (types, enums and services of included files, named with or without their prefix),
// namespace/cpp_include (ignored), typedef, const (values typed as the codec types them), enum
// (as i32), struct, union,
// exception, service (extends, oneway, void, throws), containers, annotations (skipped).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Buffer } from 'node:buffer';
import type { FieldSpec, IdlType, StructSpec, TypeSpec } from '../codec/thrift';

export type { IdlType } from '../codec/thrift';
import type { MethodSpec, ServiceSpec } from '../transport/protocol';

/** What parseIdl() reads from an IDL: structs, enums, constants, typedefs and services, by name. */
export interface Idl {
  structs: Record<string, StructSpec>;
  services: Record<string, ServiceSpec>;
  enums: Record<string, Record<string, number>>;
  /** `const` definitions, as the codec represents their types (i64 bigint, set Set, map Map, struct object). */
  consts: Record<string, unknown>;
  /** Typedefs as the IDL writes them (`typedef i64 UserId`: UserId -> 'i64'), for code generators. */
  aliases: Record<string, IdlType>;
  /** Each const's type as the IDL writes it. */
  constTypes: Record<string, IdlType>;
  /**
   * Doc comments (`/** ... *\/` before a definition) of enums, their values (`Enum.VALUE`),
   * consts and typedefs, by name; structs, fields, services and methods carry theirs as `doc`.
   */
  docs: Record<string, string>;
  /** The names this file defines itself (the others came with its includes). */
  own: string[];
  /**
   * Every file read, by name, the main one included: each its own Idl, sharing the descriptions
   * the main file's types point to (parseIdlFiles and parseIdlFile; {} from parseIdl).
   */
  files: Record<string, Idl>;
}



type Tok = string;

/** An IDL that cannot be used: SyntaxError with code ERR_LINKPOLL_IDL, at file:line:column where known. */
function idlError(message: string, where?: string): SyntaxError {
  return Object.assign(new SyntaxError(`IDL${where ? ` ${where}` : ''}: ${message}`), { code: 'ERR_LINKPOLL_IDL' });
}

/** "file:line:column" of offset `at` of `src`. */
function location(file: string, src: string, at: number): string {
  let line = 1, col = 1;
  for (let k = 0; k < at && k < src.length; k++) {
    if (src.charCodeAt(k) === 10) { line++; col = 1; } else col++;
  }
  return `${file || '<idl>'}:${line}:${col}`;
}

/** The tokens of `src`; `offsets` (when given) receives where each starts. */
// Integer literals as Apache's compiler reads them: decimal or 0x hex, either with a sign.
const INT_LITERAL = /^[+-]?(\d+|0x[0-9a-fA-F]+)$/;
function intLiteral(v: string): number {
  const n = Number(v.replace(/^[+-]/, ''));
  return v.startsWith('-') ? -n : n;
}

function tokenize(src: string, offsets?: number[], file = '', docs?: Map<number, string>): Tok[] {
  const out: Tok[] = [];
  let doc: string | undefined;
  const re = /\s+|\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_][\w.]*)|([+-]?0x[0-9a-fA-F]+|[+-]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?)|([{}()<>,;:=\[\]*])/y;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < src.length) {
    re.lastIndex = pos;
    m = re.exec(src);
    if (!m) throw idlError(`unexpected character '${src[pos]}'`, location(file, src, pos));
    const t = m[1] ?? m[2] ?? m[3] ?? m[4];
    if (t !== undefined) {
      if (doc !== undefined) { docs?.set(out.length, doc); doc = undefined; }
      out.push(t); offsets?.push(pos);
    } else if (m[0].startsWith('/**') && m[0].length > 4) {
      doc = docText(m[0]);
    }
    pos = re.lastIndex;
  }
  return out;
}

/** The text of a `/** ... *\/` comment: its lines without the leading stars, trimmed. */
function docText(c: string): string {
  return c.slice(3, -2).split('\n').map((l) => l.replace(/^\s*\*?\s?/, '').trimEnd()).join('\n').trim();
}

const BASE: Record<string, TypeSpec> = {
  bool: 'bool', byte: 'byte', i8: 'byte', i16: 'i16', i32: 'i32', i64: 'i64', double: 'double',
  string: 'string', binary: 'binary', uuid: 'uuid',
};

/** Finds an included file: its text and the name its own includes are resolved from. */
type IncludeLoader = (include: string, from: string) => { name: string; text: string } | undefined;

interface Parsed extends Idl {
  typedefs: Record<string, TypeSpec>;
  /** The file each include prefix names (its own includes' too). */
  prefixFiles: Map<string, string>;
  /** Definitions of its includes by `prefix.Name` (transitively: a file's includes' names are known to whoever includes it). */
  qualified: Qualified;
}
interface Qualified { structs: Record<string, StructSpec>; enums: Record<string, Record<string, number>>; services: Record<string, ServiceSpec>; typedefs: Record<string, TypeSpec | string>; consts: Record<string, unknown> }

/**
 * Parses Thrift IDL text. Named types resolve after the whole file is read (any order). Files it
 * includes are not read: use parseIdlFile (from disk) or parseIdlFiles (from text you hold) when
 * it uses types or services of another file.
 */
export function parseIdl(src: string): Idl {
  return parseOne(src, '', () => undefined, new Map());
}

/** The Idl of `main` with `files`: every file parsed (in `loading`), by name. */
function withFiles(idl: Parsed, main: string, loading: Map<string, Parsed | null>): Idl {
  for (const [name, sub] of loading) if (sub) idl.files[name] = sub;
  idl.files[main] = idl;
  return idl;
}

/**
 * Parses IDL spread over files: `files` maps names to text; `main` is the one to parse. An
 * include is looked up relative to the including file's name, then as written.
 */
export function parseIdlFiles(files: Record<string, string>, main: string): Idl {
  if (files[main] === undefined) throw idlError(`no file ${main}`);
  const load: IncludeLoader = (inc, from) => {
    for (const name of [path.posix.normalize(path.posix.join(path.posix.dirname(from), inc)), inc]) {
      if (files[name] !== undefined) return { name, text: files[name] };
    }
    return undefined;
  };
  const loading = new Map<string, Parsed | null>([[main, null]]);
  return withFiles(parseOne(files[main], main, load, loading), main, loading);
}

/**
 * Reads an IDL file and every file it includes (found relative to the including file, then in
 * `includeDirs`, as the Apache compiler's -I does): their texts by name, for parseIdlFiles and
 * for generated code that embeds them.
 */
export function readIdlFiles(file: string, includeDirs: string[] = []): { main: string; files: Record<string, string> } {
  const base = path.dirname(path.resolve(file));
  const main = path.basename(file);
  const files: Record<string, string> = { [main]: fs.readFileSync(file, 'utf8') };
  const pending = [main];
  while (pending.length > 0) {
    const from = pending.pop()!;
    for (const inc of includesOf(files[from]!, from)) {
      const rel = path.posix.normalize(path.posix.join(path.posix.dirname(from), inc));
      if (files[rel] !== undefined || files[inc] !== undefined) continue;
      if (fs.existsSync(path.join(base, rel))) {
        files[rel] = fs.readFileSync(path.join(base, rel), 'utf8');
        pending.push(rel);
        continue;
      }
      const dir = includeDirs.find((d) => fs.existsSync(path.join(d, inc)));
      if (dir === undefined) throw idlError(`${from} includes "${inc}", which is not in ${[path.dirname(path.join(base, rel)), ...includeDirs].join(', ')}`);
      files[inc] = fs.readFileSync(path.join(dir, inc), 'utf8');
      pending.push(inc);
    }
  }
  return { main, files };
}

/** Parses an IDL file and the files it includes (see readIdlFiles). */
export function parseIdlFile(file: string, includeDirs: string[] = []): Idl {
  const { main, files } = readIdlFiles(file, includeDirs);
  return parseIdlFiles(files, main);
}

function includesOf(src: string, file = ''): string[] {
  const t = tokenize(src, undefined, file);
  const out: string[] = [];
  for (let i = 0; i < t.length - 1; i++) if (t[i] === 'include') out.push(unquote(t[i + 1]!));
  return out;
}

function unquote(s: string): string {
  return /^["']/.test(s) ? s.slice(1, -1) : s;
}

function parseOne(src: string, filename: string, load: IncludeLoader, loading: Map<string, Parsed | null>): Parsed {
  const offsets: number[] = [];
  const docAt = new Map<number, string>();
  const t = tokenize(src, offsets, filename, docAt);
  const docs: Record<string, string> = {};
  /** Keeps the doc comment before token k on `o` (as `doc`), or in `docs` under `name`. */
  const document = (k: number, o?: { doc?: string }, name?: string) => {
    const d = docAt.get(k);
    if (d === undefined) return;
    if (o) o.doc = d;
    if (name !== undefined) docs[name] = d;
  };
  let i = 0;
  /** Where token k is (the end of the text past the last). */
  const at = (k: number) => location(filename, src, k < offsets.length ? offsets[k]! : src.length);
  const peek = () => t[i];
  const next = () => {
    if (i >= t.length) throw idlError('unexpected end of input', at(i));
    return t[i++];
  };
  const expect = (s: string) => {
    const got = next();
    if (got !== s) throw idlError(`expected '${s}', got '${got}'`, at(i - 1));
  };
  // Named types used, checked once every definition (and include) is known.
  const refs: { name: string; tok: number }[] = [];
  const defined = new Map<string, number>();
  const define = (kind: string, name: string, tok: number) => {
    if (defined.has(name)) throw idlError(`${kind} ${name} is defined twice (first at ${at(defined.get(name)!)})`, at(tok));
    defined.set(name, tok);
  };
  // Annotations in parentheses, `(go.tag = 'json:"id"', api.get = "/user", cpp.virtual)`: kept
  // (key -> value, '' for a bare key) where a description has room for them, read past elsewhere.
  const readAnnotations = (into?: Record<string, string>): Record<string, string> | undefined => {
    if (peek() !== '(') return into;
    const start = i;
    next();
    const out = into ?? {};
    while (peek() !== ')') {
      const k = next();
      if (!/^[A-Za-z_]/.test(k)) throw idlError(`expected an annotation name, got '${k}'`, at(i - 1));
      let v = '';
      if (peek() === '=') { i++; v = unquote(next()); }
      out[k] = v;
      if (peek() === ',' || peek() === ';') i++;
      if (i >= t.length) throw idlError('unclosed annotations', at(start));
    }
    next();
    return out;
  };
  const skipAnnotations = () => { readAnnotations(); };
  const keep = (o: { annotations?: Record<string, string> }, a: Record<string, string> | undefined) => { if (a && Object.keys(a).length > 0) o.annotations = a; };
  const sep = () => { if (peek() === ',' || peek() === ';') i++; };

  const structs: Record<string, StructSpec> = {};
  const services: Record<string, ServiceSpec> = {};
  const enums: Record<string, Record<string, number>> = {};
  const typedefs: Record<string, TypeSpec | string> = {};
  const consts: Record<string, unknown> = {};
  // A const's value as written: converted once the types are all known.
  type Raw = { tok: number; v: string } | { tok: number; list: Raw[] } | { tok: number; map: [Raw, Raw][] };
  const constDefs: { name: string; type: TypeSpec | string; raw: Raw }[] = [];
  const fieldDefaults: { f: FieldSpec; raw: Raw; owner: string }[] = [];
  const parseValue = (): Raw => {
    const tok = i;
    const x = next();
    if (x === '[') {
      const list: Raw[] = [];
      while (peek() !== ']') { list.push(parseValue()); sep(); }
      expect(']');
      return { tok, list };
    }
    if (x === '{') {
      const map: [Raw, Raw][] = [];
      while (peek() !== '}') { const k = parseValue(); expect(':'); map.push([k, parseValue()]); sep(); }
      expect('}');
      return { tok, map };
    }
    if (x === undefined || /^[\]\[{}(),;:=<>]$/.test(x)) throw idlError(`expected a value, got '${x}'`, at(tok));
    return { tok, v: x };
  };

  const parseType = (): TypeSpec | string => {
    const n = next();
    let ty: TypeSpec | string;
    if (n === 'list' || n === 'set') {
      expect('<');
      const e = parseType();
      expect('>');
      ty = n === 'list' ? { list: e as TypeSpec } : { set: e as TypeSpec };
    } else if (n === 'map') {
      expect('<');
      const k = parseType();
      expect(',');
      const v = parseType();
      expect('>');
      ty = { map: [k as TypeSpec, v as TypeSpec] };
    } else {
      ty = BASE[n];
      if (ty === undefined) {
        if (!/^[A-Za-z_]/.test(n)) throw idlError(`expected a type, got '${n}'`, at(i - 1));
        refs.push({ name: n, tok: i - 1 });
        ty = `@${n}`; // resolved later
      }
    }
    skipAnnotations();
    return ty;
  };
  const parseFields = (close: string, owner: string): FieldSpec[] => {
    const fields: FieldSpec[] = [];
    while (peek() !== close) {
      const start = i;
      let id: number;
      if (INT_LITERAL.test(peek())) {
        id = intLiteral(next());
        expect(':');
      } else {
        id = -(fields.length + 1); // implicit ids, as the Apache compiler assigns them
      }
      let required = false;
      if (peek() === 'required') { required = true; i++; } else if (peek() === 'optional') i++;
      const type = parseType();
      const name = next();
      const dflt = peek() === '=' ? (i++, parseValue()) : undefined;
      const ann = readAnnotations();
      sep();
      // Two fields with one id (or name) could not be told apart on the wire (or in the value).
      const clash = fields.find((x) => x.id === id || x.name === name);
      if (clash) throw idlError(`${owner}: field ${clash.id === id ? `id ${id}` : `name ${name}`} is used twice`, at(start));
      const f: FieldSpec = { id, name, type: type as TypeSpec };
      if (required) f.required = true;
      document(start, f);
      keep(f, ann);
      if (dflt !== undefined) fieldDefaults.push({ f, raw: dflt, owner });
      fields.push(f);
    }
    expect(close);
    return fields;
  };

  const methods: { svc: ServiceSpec; name: string; ret: TypeSpec | string | null; args: FieldSpec[]; throws: FieldSpec[]; oneway: boolean; annotations: Record<string, string> | undefined; doc: string | undefined }[] = [];
  const extendsOf: { svc: ServiceSpec; base: string }[] = [];
  const includes: string[] = [];

  while (i < t.length) {
    const kwTok = i;
    const kw = next();
    if (kw === 'namespace') { next(); next(); skipAnnotations(); continue; } // (`namespace xsd test (uri = '...')`)
    if (kw === 'senum' || kw === 'slist') throw idlError(`'${kw}' is deprecated and not supported (Apache's compiler dropped it too): use an enum, or list<string>`, at(i - 1));
    if (kw === 'include') { includes.push(unquote(next())); continue; }
    if (kw === 'cpp_include') { next(); continue; }
    if (kw === 'typedef') { const ty = parseType(); const n = next(); define('typedef', n, i - 1); typedefs[n] = ty; document(kwTok, undefined, n); skipAnnotations(); sep(); continue; }
    if (kw === 'const') {
      const type = parseType();
      const name = next();
      define('const', name, i - 1);
      document(kwTok, undefined, name);
      expect('=');
      constDefs.push({ name, type, raw: parseValue() });
      sep();
      continue;
    }
    if (kw === 'enum') {
      const name = next();
      define('enum', name, i - 1);
      document(kwTok, undefined, name);
      expect('{');
      const values: Record<string, number> = {};
      let v = 0;
      while (peek() !== '}') {
        document(i, undefined, `${name}.${peek()}`);
        const k = next();
        if (!/^[A-Za-z_]\w*$/.test(k)) throw idlError(`enum ${name}: expected a value name, got ${k}`, at(i - 1));
        if (values[k] !== undefined) throw idlError(`enum ${name}: ${k} is defined twice`, at(i - 1));
        if (peek() === '=') {
          i++;
          v = INT_LITERAL.test(peek()) ? intLiteral(next()) : (i++, NaN);
          if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw idlError(`enum ${name}: ${k} = ${t[i - 1]} is not an i32`, at(i - 1));
        }
        values[k] = v++;
        skipAnnotations();
        sep();
      }
      expect('}');
      skipAnnotations();
      enums[name] = values;
      continue;
    }
    if (kw === 'struct' || kw === 'union' || kw === 'exception') {
      const name = next();
      define(kw, name, i - 1);
      const before = readAnnotations();
      expect('{');
      const s: StructSpec = { name, fields: parseFields('}', `${kw} ${name}`) };
      if (kw === 'exception') s.exception = true;
      if (kw === 'union') s.union = true;
      document(kwTok, s);
      keep(s, readAnnotations(before));
      structs[name] = s;
      continue;
    }
    if (kw === 'service') {
      const name = next();
      define('service', name, i - 1);
      const svc: ServiceSpec = { name, methods: {} };
      document(kwTok, svc);
      if (peek() === 'extends') { i++; extendsOf.push({ svc, base: next() }); }
      const svcAnn = readAnnotations();
      expect('{');
      while (peek() !== '}') {
        const methodTok = i;
        let oneway = false;
        if (peek() === 'oneway') { oneway = true; i++; }
        const retTok = peek();
        const ret = retTok === 'void' ? (i++, null) : parseType();
        const mname = next();
        if (methods.some((m) => m.svc === svc && m.name === mname)) throw idlError(`service ${name}: method ${mname} is defined twice`, at(i - 1));
        expect('(');
        const args = parseFields(')', `${name}.${mname} arguments`);
        let throws: FieldSpec[] = [];
        if (peek() === 'throws') { i++; expect('('); throws = parseFields(')', `${name}.${mname} throws`); }
        const annotations = readAnnotations();
        sep();
        methods.push({ svc, name: mname, ret, args, throws, oneway, annotations, doc: docAt.get(methodTok) });
      }
      expect('}');
      keep(svc, readAnnotations(svcAnn));
      services[name] = svc;
      continue;
    }
    throw idlError(`unexpected '${kw}'`, at(i - 1));
  }

  // What an included file defines is known here as `prefix.Name` (the prefix is the included
  // file's base name), always that file's; and by its bare name when this file does not define it
  // and no other include does (a bare name two includes define is an error that says so).
  const missing: string[] = [];
  const own = new Set(defined.keys());
  const ambiguousBare = new Map<string, string[]>();
  const qualified: Qualified = { structs: {}, enums: {}, services: {}, typedefs: {}, consts: {} };
  const bareFrom = new Map<string, string>();
  const bareFile = new Map<string, string>();
  const prefixFiles = new Map<string, string>();
  /** The file (of those read) that defines `n` itself as this very definition. */
  const definer = (kind: 'structs' | 'enums' | 'services' | 'typedefs' | 'consts', n: string, v: unknown): string | undefined => {
    for (const [name, p] of loading) if (p && p.own.includes(n) && (p[kind] as Record<string, unknown>)[n] === v) return name;
    return undefined;
  };
  for (const inc of includes) {
    const found = load(inc, filename);
    if (!found) { missing.push(inc); continue; }
    let sub = loading.get(found.name);
    if (sub === null) throw idlError(`include cycle through ${found.name}`, filename || undefined);
    if (sub === undefined) {
      loading.set(found.name, null);
      sub = parseOne(found.text, found.name, load, loading);
      loading.set(found.name, sub);
    }
    const prefix = path.posix.basename(inc).replace(/\.thrift$/, '');
    prefixFiles.set(prefix, found.name);
    for (const [p, f] of sub.prefixFiles) if (!prefixFiles.has(p)) prefixFiles.set(p, f);
    for (const kind of ['structs', 'enums', 'services', 'typedefs', 'consts'] as const) {
      for (const [n, v] of Object.entries(sub.qualified[kind])) (qualified[kind] as Record<string, unknown>)[n] ??= v;
    }
    for (const kind of ['structs', 'enums', 'services', 'typedefs', 'consts'] as const) {
      const into = qualified[kind] as Record<string, unknown>;
      const bare = (kind === 'structs' ? structs : kind === 'enums' ? enums : kind === 'services' ? services : kind === 'typedefs' ? typedefs : consts) as Record<string, unknown>;
      for (const [n, v] of Object.entries(sub[kind] as Record<string, unknown>)) {
        into[`${prefix}.${n}`] = v;
        if (own.has(n)) continue;
        const from = bareFrom.get(`${kind}:${n}`);
        if (from === undefined) { bareFrom.set(`${kind}:${n}`, inc); bareFile.set(`${kind}:${n}`, definer(kind, n, v) ?? found.name); bare[n] = v; } else if (from !== inc) ambiguousBare.set(n, [...(ambiguousBare.get(n) ?? [from]), inc]);
      }
    }
  }
  const unknown = (what: string, where?: string) => idlError(`unknown ${what}` +
    (missing.length ? ` (this file includes ${missing.map((m) => `"${m}"`).join(', ')}, which were not read: parse with parseIdlFile or parseIdlFiles)` : ''), where);
  /** The definition a name in this file means: `prefix.Name` from that include, a bare name from here or its one include. */
  const lookup = <T>(kind: keyof typeof qualified, name: string, where?: string): T | undefined => {
    const table = (kind === 'structs' ? structs : kind === 'enums' ? enums : kind === 'services' ? services : kind === 'typedefs' ? typedefs : consts) as Record<string, unknown>;
    if (name.includes('.')) return (qualified[kind] as Record<string, unknown>)[name] as T | undefined ?? (own.has(name) ? table[name] as T : undefined);
    const amb = ambiguousBare.get(name);
    if (amb && !own.has(name) && table[name] !== undefined) throw idlError(`${name} is defined by ${amb.map((a) => `"${a}"`).join(' and ')}: write it with its file's prefix (${amb.map((a) => `${path.posix.basename(a).replace(/\.thrift$/, '')}.${name}`).join(' or ')})`, where);
    return table[name] as T | undefined;
  };
  for (const r of refs) {
    if (lookup('typedefs', r.name, at(r.tok)) === undefined && !lookup('enums', r.name, at(r.tok)) && !lookup('structs', r.name, at(r.tok))) throw unknown(`type ${r.name}`, at(r.tok));
  }

  const resolve = (ty: TypeSpec | string, seen = 0): TypeSpec => {
    if (seen > 32) throw idlError('typedef cycle', filename || undefined);
    if (typeof ty === 'string') {
      if (!ty.startsWith('@')) return ty as TypeSpec;
      const n = ty.slice(1);
      const td = lookup<TypeSpec | string>('typedefs', n);
      if (td !== undefined) return resolve(td, seen + 1);
      if (lookup('enums', n)) return 'i32';
      const st = lookup<StructSpec>('structs', n);
      if (st) return st;
      throw unknown(`type ${n}`);
    }
    if ('fields' in ty) return ty;
    if ('list' in ty) return { list: resolve(ty.list as TypeSpec | string, seen) };
    if ('set' in ty) return { set: resolve(ty.set as TypeSpec | string, seen) };
    return { map: [resolve(ty.map[0] as TypeSpec | string, seen), resolve(ty.map[1] as TypeSpec | string, seen)] };
  };
  // The type as written, each name with its kind, for code generators (before resolve() replaces it).
  const declare = (ty: TypeSpec | string): IdlType => {
    if (typeof ty === 'string') {
      if (!ty.startsWith('@')) return ty as IdlType;
      const n = ty.slice(1);
      const dot = n.lastIndexOf('.');
      const bare = n.slice(dot + 1);
      const kind = lookup('typedefs', n) !== undefined ? 'typedef' : lookup('enums', n) ? 'enum' : 'struct';
      // Which file defines it: this one, the include its prefix names, or the include its bare name came with.
      const file = dot >= 0 ? prefixFiles.get(n.slice(0, dot)) : own.has(bare) ? undefined : bareFile.get(`${kind}s:${bare}`);
      return file === undefined ? { kind, name: bare } : { kind, name: bare, file };
    }
    if ('fields' in ty) return { kind: 'struct', name: ty.name };
    if ('list' in ty) return { list: declare(ty.list as TypeSpec | string) };
    if ('set' in ty) return { set: declare(ty.set as TypeSpec | string) };
    return { map: [declare(ty.map[0] as TypeSpec | string), declare(ty.map[1] as TypeSpec | string)] };
  };
  const typed = (f: FieldSpec) => { f.declared = declare(f.type); f.type = resolve(f.type); };
  for (const s of Object.values(structs)) for (const f of s.fields) typed(f);
  // A const's value, as the codec types it; names are enum values (Enum.NAME) or earlier consts.
  const valueOf = (raw: Raw, ty: TypeSpec, what: string): unknown => {
    const bad = (why: string): never => { throw idlError(`${what}: ${why}`, at(raw.tok)); };
    if ('v' in raw && /^[A-Za-z_]/.test(raw.v) && raw.v !== 'true' && raw.v !== 'false') {
      const parts = raw.v.split('.');
      const name = parts[parts.length - 1]!, owner = parts[parts.length - 2];
      const en = owner !== undefined ? lookup<Record<string, number>>('enums', parts.slice(0, -1).join('.')) ?? enums[owner] : undefined;
      if (en?.[name] !== undefined) return valueOf({ tok: raw.tok, v: String(en[name]) }, ty, what);
      const c = consts[name];
      // A number is typed again as this one's type (an i32 const in an i64 is a bigint here).
      if (typeof c === 'number' || typeof c === 'bigint') return valueOf({ tok: raw.tok, v: String(c) }, ty, what);
      if (c !== undefined) return c;
      return bad(`unknown name ${raw.v}`);
    }
    if (typeof ty === 'string') {
      const a = `${/^[aeiou]/.test(ty) ? 'an' : 'a'} ${ty}`;
      if (!('v' in raw)) return bad(`${a} cannot be a list or a map`);
      const v = raw.v;
      if (ty === 'uuid') {
        if (!/^["'][0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}["']$/.test(v)) return bad(`expected a uuid string, got ${v}`);
        return unquote(v).toLowerCase();
      }
      if (ty === 'string' || ty === 'binary') {
        if (!/^["']/.test(v)) return bad(`expected a string, got ${v}`);
        return ty === 'binary' ? Buffer.from(unquote(v)) : unquote(v); // binary decodes as a Buffer: so is its value
      }
      if (ty === 'bool') return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : bad(`expected a bool, got ${v}`);
      if (!/^[+-]?(0x[0-9a-fA-F]|\.?\d)/.test(v)) return bad(`expected a number, got ${v}`);
      if (ty === 'double') return INT_LITERAL.test(v) ? intLiteral(v) : Number(v);
      if (ty === 'i64') {
        if (!INT_LITERAL.test(v)) return bad(`expected an integer, got ${v}`);
        const n = v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v.replace(/^\+/, ''));
        return n >= -(2n ** 63n) && n < 2n ** 63n ? n : bad(`${v} is not an i64`);
      }
      const n = INT_LITERAL.test(v) ? intLiteral(v) : NaN;
      const bits = ty === 'byte' ? 8 : ty === 'i16' ? 16 : 32;
      return Number.isInteger(n) && n >= -(2 ** (bits - 1)) && n < 2 ** (bits - 1) ? n : bad(`${v} is not ${a}`);
    }
    if ('fields' in ty) {
      if (!('map' in raw)) return bad(`a struct ${ty.name} is written { "field": value, ... }`);
      const o: Record<string, unknown> = {};
      for (const [k, x] of raw.map) {
        const key = 'v' in k ? unquote(k.v) : bad('field names are strings');
        const f = ty.fields.find((ff) => ff.name === key) ?? bad(`${ty.name} has no field ${key}`);
        o[key] = valueOf(x, f.type, what);
      }
      return o;
    }
    if ('map' in ty) {
      if (!('map' in raw)) return bad('a map is written { key: value, ... }');
      return new Map(raw.map.map(([k, x]) => [valueOf(k, ty.map[0], what), valueOf(x, ty.map[1], what)]));
    }
    if ('map' in raw && raw.map.length === 0) return 'set' in ty ? new Set() : []; // `= {}`, as Apache's compiler takes it
    if (!('list' in raw)) return bad('a list or set is written [ value, ... ]');
    const items = raw.list.map((x) => valueOf(x, 'list' in ty ? ty.list : ty.set, what));
    return 'set' in ty ? new Set(items) : items;
  };
  const constTypes: Record<string, IdlType> = {};
  for (const c of constDefs) { consts[c.name] = valueOf(c.raw, resolve(c.type), `const ${c.name}`); constTypes[c.name] = declare(c.type); }
  const aliases: Record<string, IdlType> = {};
  for (const [n, v] of Object.entries(typedefs)) aliases[n] = declare(v);
  const resolvedTypedefs: Record<string, TypeSpec> = {};
  for (const [n, v] of Object.entries(typedefs)) resolvedTypedefs[n] = resolve(v);
  for (const m of methods) {
    for (const f of [...m.args, ...m.throws]) typed(f);
    const resultFields: FieldSpec[] = [];
    if (m.ret !== null) resultFields.push({ id: 0, name: 'success', type: resolve(m.ret), declared: declare(m.ret) });
    resultFields.push(...m.throws);
    const spec: MethodSpec = {
      name: m.name,
      args: { name: `${m.svc.name}_${m.name}_args`, fields: m.args },
      result: { name: `${m.svc.name}_${m.name}_result`, fields: resultFields },
    };
    if (m.oneway) spec.oneway = true;
    if (m.doc !== undefined) spec.doc = m.doc;
    keep(spec, m.annotations);
    m.svc.methods[m.name] = spec;
  }
  // A service gets its base's methods after the base has got its own (chains in any order).
  const complete = new Set<ServiceSpec>();
  const inherit = (svc: ServiceSpec, depth: number): void => {
    if (complete.has(svc)) return;
    if (depth > 32) throw idlError(`services extend each other in a cycle (through ${svc.name})`, filename || undefined);
    const e = extendsOf.find((x) => x.svc === svc);
    if (e) {
      const b = lookup<ServiceSpec>('services', e.base);
      if (!b) throw unknown(`service ${e.base} (extended by ${svc.name})`);
      inherit(b, depth + 1);
      svc.methods = { ...b.methods, ...svc.methods };
    }
    complete.add(svc);
  };
  for (const { svc } of extendsOf) inherit(svc, 0);
  // (After the methods: their argument fields are resolved there.)
  for (const d of fieldDefaults) d.f.default = valueOf(d.raw, resolve(d.f.type), `${d.owner}: default of ${d.f.name}`);
  return { structs, services, enums, consts, aliases, constTypes, docs, own: [...own], files: {}, typedefs: resolvedTypedefs, qualified, prefixFiles };
}
