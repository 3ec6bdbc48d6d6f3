#!/usr/bin/env node
// linkpoll-thrift: Thrift IDL -> TypeScript (see codegen.ts).
//   linkpoll-thrift service.thrift [-I dir]... [--import linkpoll] > service.ts
import { generateTypeScript } from './codegen';
import { readIdlFiles } from './idl';

const USAGE = 'usage: linkpoll-thrift service.thrift [-I dir]... [--import linkpoll] > service.ts\n' +
  '  Writes TypeScript for the IDL file (and the files it includes, found relative to it, then in each -I dir).';
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const includeDirs: string[] = [];
let importFrom = 'linkpoll';
let file: string | undefined;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '-I' || a === '--include') includeDirs.push(args[++i] ?? '');
  else if (a.startsWith('-I') && a.length > 2) includeDirs.push(a.slice(2));
  else if (a === '--import') importFrom = args[++i] ?? importFrom;
  else if (!a.startsWith('-') && file === undefined) file = a;
  else {
    console.error(`linkpoll-thrift: unknown argument ${a}\n${USAGE}`);
    process.exit(2);
  }
}
if (!file) {
  console.error(USAGE);
  process.exit(2);
}
try {
  process.stdout.write(generateTypeScript(readIdlFiles(file, includeDirs), importFrom));
} catch (e) {
  console.error(`linkpoll-thrift: ${file}: ${(e as Error).message}`);
  process.exit(1);
}
