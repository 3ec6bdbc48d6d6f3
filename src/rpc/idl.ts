// Thrift IDL -> service and struct descriptions the codec runs on. Covers what services use:
// namespace/include/cpp_include (ignored), typedef, const (skipped), enum (as i32), struct,
// union, exception, service (extends, oneway, void, throws), containers, annotations (skipped).
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

/** Parses Thrift IDL text. Named types resolve after the whole file is read (any order). */
export function parseIdl(src: string): Idl {
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

  while (i < t.length) {
    const kw = next();
    if (kw === 'namespace') { next(); next(); continue; }
    if (kw === 'include' || kw === 'cpp_include') { next(); continue; }
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

  const resolve = (ty: TypeSpec | string, seen = 0): TypeSpec => {
    if (seen > 32) throw new SyntaxError('IDL: typedef cycle');
    if (typeof ty === 'string') {
      if (!ty.startsWith('@')) return ty as TypeSpec;
      const n = ty.slice(1).replace(/^.*\./, '');
      if (typedefs[n] !== undefined) return resolve(typedefs[n], seen + 1);
      if (enums[n]) return 'i32';
      if (structs[n]) return structs[n];
      throw new SyntaxError(`IDL: unknown type ${ty.slice(1)}`);
    }
    if ('fields' in ty) return ty;
    if ('list' in ty) return { list: resolve(ty.list as TypeSpec | string, seen) };
    if ('set' in ty) return { set: resolve(ty.set as TypeSpec | string, seen) };
    return { map: [resolve(ty.map[0] as TypeSpec | string, seen), resolve(ty.map[1] as TypeSpec | string, seen)] };
  };
  for (const s of Object.values(structs)) for (const f of s.fields) f.type = resolve(f.type);
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
  for (const { svc, base } of extendsOf) {
    const b = services[base.replace(/^.*\./, '')];
    if (!b) throw new SyntaxError(`IDL: service ${svc.name} extends unknown ${base}`);
    svc.methods = { ...b.methods, ...svc.methods };
  }
  return { structs, services, enums };
}
