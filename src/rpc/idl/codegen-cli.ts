#!/usr/bin/env node
// linkpoll-thrift: Thrift IDL -> TypeScript (see codegen.ts).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generate, generateTypeScript } from './codegen';
import { readIdlFiles } from './idl';

const USAGE = 'usage: linkpoll-thrift service.thrift [-I dir]... [--import linkpoll] [--out dir [--per-file] [--watch]]\n' +
  '  Writes TypeScript for the IDL file and the files it includes (found relative to it, then in each -I dir):\n' +
  '  to stdout, or under --out dir (service.ts; with --per-file one module per IDL file, includes as imports).\n' +
  '  --watch (with --out): regenerates whenever an IDL file under the IDL\'s folder or an -I dir changes.';
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const includeDirs: string[] = [];
let importFrom = 'linkpoll';
let outDir: string | undefined;
let perFile = false;
let watch = false;
let file: string | undefined;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '-I' || a === '--include') includeDirs.push(args[++i] ?? '');
  else if (a.startsWith('-I') && a.length > 2) includeDirs.push(a.slice(2));
  else if (a === '--import') importFrom = args[++i] ?? importFrom;
  else if (a === '--out') outDir = args[++i];
  else if (a === '--per-file') perFile = true;
  else if (a === '--watch') watch = true;
  else if (!a.startsWith('-') && file === undefined) file = a;
  else fail(`unknown argument ${a}`);
}
if (!file) fail('an IDL file is needed');
if ((perFile || watch) && outDir === undefined) fail(`${perFile ? '--per-file' : '--watch'} needs --out dir`);

function fail(why: string): never {
  console.error(`linkpoll-thrift: ${why}\n${USAGE}`);
  process.exit(2);
}

function run(): boolean {
  try {
    if (outDir === undefined) process.stdout.write(generateTypeScript(readIdlFiles(file!, includeDirs), importFrom));
    else {
      const written = generate(file!, { includeDirs, importFrom, perFile, outDir });
      console.error(`linkpoll-thrift: ${Object.keys(written).length} module${Object.keys(written).length === 1 ? '' : 's'} in ${outDir}`);
    }
    return true;
  } catch (e) {
    console.error(`linkpoll-thrift: ${file}: ${(e as Error).message}`);
    return false;
  }
}

if (!run() && !watch) process.exit(1);
if (watch) {
  // A bad edit is reported and waited out: the next save regenerates.
  let timer: NodeJS.Timeout | undefined;
  for (const dir of [path.dirname(path.resolve(file!)), ...includeDirs]) {
    fs.watch(dir, { recursive: true }, (_event, name) => {
      if (name === null || !String(name).endsWith('.thrift')) return;
      clearTimeout(timer);
      timer = setTimeout(run, 100);
    });
  }
  console.error(`linkpoll-thrift: watching ${file} and its includes`);
}
