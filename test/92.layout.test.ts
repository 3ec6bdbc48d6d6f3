// The source layout: dependencies between src/ modules point one way. An import circle (type
// imports included) means two modules cannot be read, tested or moved apart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

const src = path.join(__dirname, '..', '..', 'src');

function modules(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? modules(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]/gm)) {
    const base = path.resolve(path.dirname(file), m[1]!);
    const target = [base + '.ts', path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
    if (target) out.push(target);
  }
  return out;
}

/** Every import circle, each as the list of files around it. */
function circles(files: string[]): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const found: string[][] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 1);
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 1) found.push(stack.slice(stack.indexOf(g)).map((x) => path.relative(src, x)));
      else if (!state.has(g)) visit(g);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of files) if (!state.has(f)) visit(f);
  return found;
}

test('src/ has no import circle', () => {
  const found = circles(modules(src).filter((f) => !f.endsWith('index.ts')));
  assert.equal(found.map((c) => c.join(' -> ')), []);
});

test('the circle finder finds a circle', () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'linkpoll-layout-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b';\nexport type A = B;\n");
    fs.writeFileSync(path.join(dir, 'b.ts'), "import { a } from './a';\nexport type B = number;\n");
    assert.equal(circles(modules(dir)).length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
