#!/usr/bin/env node
// linkpoll-thrift: Thrift IDL -> TypeScript (see codegen.ts).
//   linkpoll-thrift service.thrift [-I dir]... [--import linkpoll] > service.ts
import { generateTypeScript } from './codegen';
import { readIdlFiles } from './idl';

const args = process.argv.slice(2);
const includeDirs: string[] = [];
let importFrom = 'linkpoll';
let file: string | undefined;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '-I' || a === '--include') includeDirs.push(args[++i] ?? '');
  else if (a.startsWith('-I') && a.length > 2) includeDirs.push(a.slice(2));
  else if (a === '--import') importFrom = args[++i] ?? importFrom;
  else if (!a.startsWith('-') && file === undefined) file = a;
}
if (!file) {
  console.error('usage: linkpoll-thrift service.thrift [-I dir]... [--import linkpoll] > service.ts');
  process.exit(2);
}
try {
  process.stdout.write(generateTypeScript(readIdlFiles(file, includeDirs), importFrom));
} catch (e) {
  console.error(`linkpoll-thrift: ${file}: ${(e as Error).message}`);
  process.exit(1);
}
