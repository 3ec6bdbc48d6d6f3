#!/usr/bin/env node
// linkpoll-thrift: Thrift IDL -> TypeScript (see codegen.ts).
//   linkpoll-thrift service.thrift [--import linkpoll] > service.ts
import * as fs from 'node:fs';
import { generateTypeScript } from './codegen';

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
const i = args.indexOf('--import');
if (!file) {
  console.error('usage: linkpoll-thrift service.thrift [--import linkpoll] > service.ts');
  process.exit(2);
}
try {
  process.stdout.write(generateTypeScript(fs.readFileSync(file, 'utf8'), i >= 0 ? args[i + 1] : 'linkpoll'));
} catch (e) {
  console.error(`linkpoll-thrift: ${file}: ${(e as Error).message}`);
  process.exit(1);
}
