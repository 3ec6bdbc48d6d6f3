// Thrift IDL -> service and struct descriptions the codec runs on. Covers what services use:
// include (types, enums and services of included files, named with or without their prefix),
// namespace/cpp_include (ignored), typedef, const (skipped), enum (as i32), struct, union,
// exception, service (extends, oneway, void, throws), containers, annotations (skipped).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FieldSpec, StructSpec, TypeSpec } from './thrift';
import type { MethodSpec, ServiceSpec } from './protocol';

export interface Idl {
  structs: Record<string, StructSpec>;
  services: Record<string, ServiceSpec>;
  enums: Record<string, Record<string, number>>;
}

type Tok = string;

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  const re = /\s+|\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\/|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_][\w.]*)|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|0x[0-9a-fA-F]+)|([{}()<>,;:=\[\]*])/y;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < src.length) {
    re.lastIndex = pos;
    m = re.exec(src);
    if (!m) throw new SyntaxError(`IDL: unexpected character '${src[pos]}' at offset ${pos}`);
    pos = re.lastIndex;
    const t = m[1] ?? m[2] ?? m[3] ?? m[4];
    if (t !== undefined) out.push(t);
  }
  return out;
}

const BASE: Record<string, TypeSpec> = {
  bool: 'bool', byte: 'byte', i8: 'byte', i16: 'i16', i32: 'i32', i64: 'i64', double: 'double',
  string: 'string', binary: 'binary',
};

/** Finds an included file: its text and the name its own includes are resolved from. */
type IncludeLoader = (include: string, from: string) => { name: string; text: string } | undefined;

interface Parsed extends Idl { typedefs: Record<string, TypeSpec> }

/**
 * Parses Thrift IDL text. Named types resolve after the whole file is read (any order). Files it
 * includes are not read: use parseIdlFile (from disk) or parseIdlFiles (from text you hold) when
 * it uses types or services of another file.
 */
export function parseIdl(src: string): Idl {
  return parseOne(src, '', () => undefined, new Map());
}

/**
 * Parses IDL spread over files: `files` maps names to text; `main` is the one to parse. An
 * include is looked up relative to the including file's name, then as written.
 */
export function parseIdlFiles(files: Record<string, string>, main: string): Idl {
  if (files[main] === undefined) throw new SyntaxError(`IDL: no file ${main}`);
  const load: IncludeLoader = (inc, from) => {
    for (const name of [path.posix.normalize(path.posix.join(path.posix.dirname(from), inc)), inc]) {
      if (files[name] !== undefined) return { name, text: files[name] };
    }
    return undefined;
  };
  return parseOne(files[main], main, load, new Map([[main, null]]));
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
    for (const inc of includesOf(files[from]!)) {
      const rel = path.posix.normalize(path.posix.join(path.posix.dirname(from), inc));
      if (files[rel] !== undefined || files[inc] !== undefined) continue;
      if (fs.existsSync(path.join(base, rel))) {
        files[rel] = fs.readFileSync(path.join(base, rel), 'utf8');
        pending.push(rel);
        continue;
      }
      const dir = includeDirs.find((d) => fs.existsSync(path.join(d, inc)));
      if (dir === undefined) throw new SyntaxError(`IDL: ${from} includes "${inc}", which is not in ${[path.dirname(path.join(base, rel)), ...includeDirs].join(', ')}`);
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

function includesOf(src: string): string[] {
  const t = tokenize(src);
  const out: string[] = [];
  for (let i = 0; i < t.length - 1; i++) if (t[i] === 'include') out.push(unquote(t[i + 1]!));
  return out;
}

function unquote(s: string): string {
  return /^["']/.test(s) ? s.slice(1, -1) : s;
}

function parseOne(src: string, filename: string, load: IncludeLoader, loading: Map<string, Parsed | null>): Parsed {
  const t = tokenize(src);
  let i = 0;
  const peek = () => t[i];
  const next = () => {
    if (i >= t.length) throw new SyntaxError('IDL: unexpected end of input');
    return t[i++];
  };
  const expect = (s: string) => {
    const got = next();
    if (got !== s) throw new SyntaxError(`IDL: expected '${s}', got '${got}'`);
  };
  const skipAnnotations = () => {
    if (peek() !== '(') return;
    let depth = 0;
    do {
      const x = next();
      if (x === '(') depth++;
      else if (x === ')') depth--;
    } while (depth > 0);
  };
  const sep = () => { if (peek() === ',' || peek() === ';') i++; };

  const structs: Record<string, StructSpec> = {};
  const services: Record<string, ServiceSpec> = {};
  const enums: Record<string, Record<string, number>> = {};
  const typedefs: Record<string, TypeSpec | string> = {};

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
      ty = BASE[n] ?? `@${n}`; // resolved later
    }
    skipAnnotations();
    return ty;
  };
  const skipValue = () => {
    const x = next();
    if (x === '{' || x === '[') {
      const close = x === '{' ? '}' : ']';
      let depth = 1;
      while (depth > 0) {
        const y = next();
        if (y === x) depth++;
        else if (y === close) depth--;
      }
    }
  };
  const parseFields = (close: string): FieldSpec[] => {
    const fields: FieldSpec[] = [];
    while (peek() !== close) {
      let id: number;
      if (/^-?\d+$/.test(peek()) || /^0x/.test(peek())) {
        id = Number(next());
        expect(':');
      } else {
        id = -(fields.length + 1); // implicit ids, as the Apache compiler assigns them
      }
      let required = false;
      if (peek() === 'required') { required = true; i++; } else if (peek() === 'optional') i++;
      const type = parseType();
      const name = next();
      if (peek() === '=') { i++; skipValue(); }
      skipAnnotations();
      sep();
      const f: FieldSpec = { id, name, type: type as TypeSpec };
      if (required) f.required = true;
      fields.push(f);
    }
    expect(close);
    return fields;
  };

  const methods: { svc: ServiceSpec; name: string; ret: TypeSpec | string | null; args: FieldSpec[]; throws: FieldSpec[]; oneway: boolean }[] = [];
  const extendsOf: { svc: ServiceSpec; base: string }[] = [];
  const includes: string[] = [];

  while (i < t.length) {
    const kw = next();
    if (kw === 'namespace') { next(); next(); continue; }
    if (kw === 'include') { includes.push(unquote(next())); continue; }
    if (kw === 'cpp_include') { next(); continue; }
    if (kw === 'typedef') { const ty = parseType(); typedefs[next()] = ty; skipAnnotations(); sep(); continue; }
    if (kw === 'const') { parseType(); next(); expect('='); skipValue(); sep(); continue; }
    if (kw === 'enum') {
      const name = next();
      expect('{');
      const values: Record<string, number> = {};
      let v = 0;
      while (peek() !== '}') {
        const k = next();
        if (peek() === '=') { i++; v = Number(next()); }
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
      skipAnnotations();
      expect('{');
      const s: StructSpec = { name, fields: parseFields('}') };
      if (kw === 'exception') s.exception = true;
      skipAnnotations();
      structs[name] = s;
      continue;
    }
    if (kw === 'service') {
      const name = next();
      const svc: ServiceSpec = { name, methods: {} };
      if (peek() === 'extends') { i++; extendsOf.push({ svc, base: next() }); }
      skipAnnotations();
      expect('{');
      while (peek() !== '}') {
        let oneway = false;
        if (peek() === 'oneway') { oneway = true; i++; }
        const retTok = peek();
        const ret = retTok === 'void' ? (i++, null) : parseType();
        const mname = next();
        expect('(');
        const args = parseFields(')');
        let throws: FieldSpec[] = [];
        if (peek() === 'throws') { i++; expect('('); throws = parseFields(')'); }
        skipAnnotations();
        sep();
        methods.push({ svc, name: mname, ret, args, throws, oneway });
      }
      expect('}');
      skipAnnotations();
      services[name] = svc;
      continue;
    }
    throw new SyntaxError(`IDL: unexpected '${kw}'`);
  }

  // What included files define is known here by its own name and by `prefix.name` (the prefix is
  // the included file's base name); this file's own definitions win a clash of plain names.
  const missing: string[] = [];
  for (const inc of includes) {
    const found = load(inc, filename);
    if (!found) { missing.push(inc); continue; }
    let sub = loading.get(found.name);
    if (sub === null) throw new SyntaxError(`IDL: include cycle through ${found.name}`);
    if (sub === undefined) {
      loading.set(found.name, null);
      sub = parseOne(found.text, found.name, load, loading);
      loading.set(found.name, sub);
    }
    for (const [n, v] of Object.entries(sub.structs)) structs[n] ??= v;
    for (const [n, v] of Object.entries(sub.enums)) enums[n] ??= v;
    for (const [n, v] of Object.entries(sub.services)) services[n] ??= v;
    for (const [n, v] of Object.entries(sub.typedefs)) typedefs[n] ??= v;
  }
  const unknown = (what: string) => new SyntaxError(`IDL: unknown ${what}` +
    (missing.length ? ` (this file includes ${missing.map((m) => `"${m}"`).join(', ')}, which were not read: parse with parseIdlFile or parseIdlFiles)` : ''));

  const resolve = (ty: TypeSpec | string, seen = 0): TypeSpec => {
    if (seen > 32) throw new SyntaxError('IDL: typedef cycle');
    if (typeof ty === 'string') {
      if (!ty.startsWith('@')) return ty as TypeSpec;
      const n = ty.slice(1).replace(/^.*\./, '');
      if (typedefs[n] !== undefined) return resolve(typedefs[n], seen + 1);
      if (enums[n]) return 'i32';
      if (structs[n]) return structs[n];
      throw unknown(`type ${ty.slice(1)}`);
    }
    if ('fields' in ty) return ty;
    if ('list' in ty) return { list: resolve(ty.list as TypeSpec | string, seen) };
    if ('set' in ty) return { set: resolve(ty.set as TypeSpec | string, seen) };
    return { map: [resolve(ty.map[0] as TypeSpec | string, seen), resolve(ty.map[1] as TypeSpec | string, seen)] };
  };
  for (const s of Object.values(structs)) for (const f of s.fields) f.type = resolve(f.type);
  const resolvedTypedefs: Record<string, TypeSpec> = {};
  for (const [n, v] of Object.entries(typedefs)) resolvedTypedefs[n] = resolve(v);
  for (const m of methods) {
    for (const f of [...m.args, ...m.throws]) f.type = resolve(f.type);
    const resultFields: FieldSpec[] = [];
    if (m.ret !== null) resultFields.push({ id: 0, name: 'success', type: resolve(m.ret) });
    resultFields.push(...m.throws);
    const spec: MethodSpec = {
      name: m.name,
      args: { name: `${m.svc.name}_${m.name}_args`, fields: m.args },
      result: { name: `${m.svc.name}_${m.name}_result`, fields: resultFields },
    };
    if (m.oneway) spec.oneway = true;
    m.svc.methods[m.name] = spec;
  }
  // A service gets its base's methods after the base has got its own (chains in any order).
  const complete = new Set<ServiceSpec>();
  const inherit = (svc: ServiceSpec, depth: number): void => {
    if (complete.has(svc)) return;
    if (depth > 32) throw new SyntaxError(`IDL: services extend each other in a cycle (through ${svc.name})`);
    const e = extendsOf.find((x) => x.svc === svc);
    if (e) {
      const b = services[e.base.replace(/^.*\./, '')];
      if (!b) throw unknown(`service ${e.base} (extended by ${svc.name})`);
      inherit(b, depth + 1);
      svc.methods = { ...b.methods, ...svc.methods };
    }
    complete.add(svc);
  };
  for (const { svc } of extendsOf) inherit(svc, 0);
  return { structs, services, enums, typedefs: resolvedTypedefs };
}
