import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { seededRandom } from './helpers';
import { LinkBuffer, linkBufferPoolStats } from '../src';

function filled(n: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

test('reads across node boundaries: next() copies only when the bytes span nodes', () => {
  const lb = new LinkBuffer();
  const a = filled(5000, 1);
  const b = filled(8192, 2); // 8 KiB blocks: a + b spans two nodes
  lb.write(a);
  lb.write(b);
  assert.is(lb.length, a.length + b.length);
  const first = lb.next(4000);
  assert.ok(first.equals(a.subarray(0, 4000)));
  const span = lb.next(3000); // 1000 from a's tail + 2000 of b
  assert.ok(span.equals(Buffer.concat([a.subarray(4000), b.subarray(0, 2000)])));
  assert.is(lb.length, 8192 - 2000);
  const rest = lb.next(lb.length);
  assert.ok(rest.equals(b.subarray(2000)));
  lb.release();
  assert.is(lb.length, 0);
});

test('views are Buffers in every respect: isBuffer, methods, subarray, toString', () => {
  const lb = new LinkBuffer();
  lb.write(Buffer.from('hello, linkpoll'));
  const v = lb.peek(5);
  assert.ok(Buffer.isBuffer(v));
  assert.ok(v instanceof Buffer);
  assert.is(v.toString('latin1'), 'hello');
  assert.is(v.readUInt8(0), 0x68);
  const sub = v.subarray(1, 3);
  assert.ok(Buffer.isBuffer(sub));
  assert.is(sub.toString(), 'el');
  assert.ok(Buffer.isBuffer(v.slice(1)));
  assert.is(Buffer.concat([v, lb.next(lb.length).subarray(5)]).toString(), 'hello, linkpoll');
  lb.release();
});

test('peek does not consume and a second peek of spanning bytes returns the same bytes', () => {
  const lb = new LinkBuffer();
  lb.write(filled(8000, 3));
  lb.write(filled(8000, 4));
  const p1 = lb.peek(9000);
  const p2 = lb.peek(9000);
  assert.ok(p1.equals(p2));
  assert.is(lb.length, 16000);
  assert.ok(lb.next(9000).equals(p1));
});

test('until finds a delimiter across nodes', () => {
  const lb = new LinkBuffer();
  const a = Buffer.alloc(8190, 0x61);
  lb.write(a);
  lb.write(Buffer.from('bc\nrest'));
  const line = lb.until('\n');
  assert.ok(line);
  assert.is(line!.length, 8193);
  assert.is(line!.subarray(8190).toString(), 'bc\n');
  assert.is(lb.until('\n'), null);
  assert.is(lb.readString(4), 'rest');
});

test('empty and out-of-range reads give clear errors, not garbage', () => {
  const lb = new LinkBuffer();
  assert.is(lb.next(0).length, 0);
  assert.throws(() => lb.next(1), (e: NodeJS.ErrnoException) => e.code === 'ERR_BUFFER_OUT_OF_BOUNDS');
  lb.write('abc');
  assert.throws(() => lb.peek(4), (e: NodeJS.ErrnoException) => e.code === 'ERR_BUFFER_OUT_OF_BOUNDS');
  assert.throws(() => lb.skip(4), /needs 4 bytes/);
  assert.throws(() => lb.next(-1), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE');
  // Misuse is refused with Node's codes, and nothing is written or consumed.
  assert.throws(() => lb.next('2' as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE' && /'2' \(a string\)/.test(e.message));
  for (const bad of [5, null, {}]) {
    assert.throws(() => lb.write(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
    assert.throws(() => lb.writeBinary(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_TYPE');
  }
  for (const bad of ['', 'ab', 256, -1, 1.5]) {
    assert.throws(() => lb.until(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_INVALID_ARG_VALUE', String(bad));
  }
  // The same with a read window in hand (the fast path checks its argument too).
  assert.is(lb.peek(1).toString(), 'a');
  for (const bad of ['2', 1.5, NaN, true]) {
    for (const op of ['peek', 'next', 'skip', 'readBinary'] as const) {
      assert.throws(() => lb[op](bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE', `${op}(${String(bad)})`);
    }
    assert.throws(() => lb.malloc(bad as never), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE', `malloc(${String(bad)})`);
  }
  lb.malloc(2); // a write window in hand
  assert.throws(() => lb.malloc(0.5), (e: NodeJS.ErrnoException) => e.code === 'ERR_OUT_OF_RANGE');
  assert.is(lb.pendingLength, 2);
  lb.mallocAck(0);
  assert.is(lb.length, 3);
  assert.is(lb.readString(3), 'abc');
  // Zero-length reads of a buffer holding no node (never written, or read and released) crashed
  // the process (a null node in native Skip).
  for (const empty of [new LinkBuffer(), lb]) {
    empty.release();
    empty.skip(0);
    assert.is(empty.readBinary(0).length, 0);
    assert.is(empty.slice(0).length, 0);
    assert.is(empty.until('x'), null);
    assert.is(empty.peek(0).length, 0);
  }
});

test('large messages: 16 MiB written and read back intact', () => {
  const lb = new LinkBuffer();
  const big = filled(16 * 1024 * 1024, 7);
  lb.writeBinary(big); // linked without copy
  lb.write(Buffer.from('tail'));
  assert.is(lb.length, big.length + 4);
  const got = lb.next(big.length);
  assert.ok(got.equals(big));
  assert.is(lb.readString(4), 'tail');
  lb.release();
});

test('helpers read big-endian numbers across nodes', () => {
  const lb = new LinkBuffer();
  lb.write(Buffer.alloc(8190));
  const n = Buffer.alloc(14);
  n.writeUInt32BE(0xdeadbeef, 0);
  n.writeBigInt64BE(-5n, 4);
  n.writeUInt16BE(513, 12);
  lb.write(n);
  lb.skip(8190);
  assert.is(lb.readUInt32BE(), 0xdeadbeef);
  assert.is(lb.readBigInt64BE(), -5n);
  assert.is(lb.readUInt16BE(), 513);
});

test('slice shares nodes and reads the same bytes', () => {
  const lb = new LinkBuffer();
  const data = filled(20000, 9);
  lb.write(data);
  const s = lb.slice(12000);
  assert.is(s.length, 12000);
  assert.is(lb.length, 8000);
  assert.ok(s.next(12000).equals(data.subarray(0, 12000)));
  assert.ok(lb.next(8000).equals(data.subarray(12000)));
});

test('malloc fills native memory in place; mallocAck trims; flush makes it readable', () => {
  const lb = new LinkBuffer();
  const m = lb.malloc(10);
  m.write('helloworld');
  assert.is(lb.length, 0);
  assert.is(lb.pendingLength, 10);
  lb.mallocAck(5);
  lb.flush();
  assert.is(lb.length, 5);
  assert.is(lb.readString(5), 'hello');
  assert.throws(() => lb.mallocAck(1), /bytes/);
});

test('after release, views of recycled memory are detached: JS never sees reused bytes', () => {
  const views: Buffer[] = [];
  for (let round = 0; round < 50; round++) {
    const lb = new LinkBuffer();
    lb.write(Buffer.alloc(6000, round));
    const v = lb.next(6000);
    assert.is(v[0], round);
    views.push(v);
    lb.release(); // the block goes back to the pool and is reused by the next round
    lb.dispose();
  }
  // Every earlier view is either still showing its own bytes or detached (length 0).
  for (let i = 0; i < views.length; i++) {
    const v = views[i];
    assert.ok(v.length === 0 || v.every((x) => x === i), `view ${i} shows foreign bytes`);
  }
  assert.ok(views.slice(0, -1).some((v) => v.length === 0), 'recycled views should be detached');
});

test('random operations agree with a plain byte array (model check, 3 x 20,000 steps)', () => {
  for (const start of [12345, 777, 424242]) modelCheck(start);
});

function modelCheck(start: number): void {
  const rnd = seededRandom(start);
  const lb = new LinkBuffer();
  let model = Buffer.alloc(0);
  let pending: Buffer | undefined; // malloc()ed (as filled), not flushed
  const kept: { view: Buffer; copy: Buffer }[] = []; // views taken since the last release()
  const bytes = (n: number) => filled(n, rnd(256));
  const len = () => model.length;
  for (let step = 0; step < 20000; step++) {
    const op = rnd(15);
    const n = rnd(8) === 0 ? rnd(70000) : rnd(300);
    try {
      switch (op) {
        case 0: { const b = bytes(n); lb.write(b); model = Buffer.concat([model, b]); break; }
        case 1: { const b = bytes(n); lb.writeBinary(b); model = Buffer.concat([model, b]); break; } // large: linked
        case 2: {
          // Several mallocs before a flush (small ones share a write window), sometimes trimmed.
          for (let j = 1 + rnd(4); j > 0; j--) {
            const k = rnd(3) === 0 ? n : rnd(80);
            const m = lb.malloc(k);
            m.set(bytes(k));
            pending = Buffer.concat([pending ?? Buffer.alloc(0), Buffer.from(m)]);
          }
          if (rnd(3) === 0) {
            const keep = rnd(pending!.length + 1);
            lb.mallocAck(keep);
            pending = pending!.subarray(0, keep);
          }
          assert.is(lb.pendingLength, pending!.length, 'pendingLength');
          break;
        }
        case 3: {
          if (pending) { model = Buffer.concat([model, pending]); pending = undefined; }
          lb.flush();
          assert.is(lb.pendingLength, 0);
          break;
        }
        case 4: { const k = rnd(len() + 1); const v = lb.peek(k); assert.ok(v.equals(model.subarray(0, k)), `peek ${k}`); break; }
        case 5: {
          const k = rnd(len() + 1);
          const v = lb.next(k);
          assert.ok(v.equals(model.subarray(0, k)), `next ${k}`);
          kept.push({ view: v, copy: Buffer.from(v) });
          model = model.subarray(k);
          break;
        }
        case 6: { const k = rnd(len() + 1); lb.skip(k); model = model.subarray(k); break; }
        case 7: {
          const d = model.length ? model[rnd(model.length)]! : rnd(256);
          const got = lb.until(d);
          const i = model.indexOf(d);
          if (i < 0) assert.is(got, null); else { assert.ok(got!.equals(model.subarray(0, i + 1)), 'until'); model = model.subarray(i + 1); }
          break;
        }
        case 8: {
          const k = rnd(len() + 1);
          const sl = lb.slice(k);
          assert.is(sl.length, k);
          assert.ok(sl.readBinary(k).equals(model.subarray(0, k)), `slice ${k}`);
          sl.release();
          model = model.subarray(k);
          break;
        }
        case 9: {
          if (len() >= 4) { assert.is(lb.readUInt32BE(), model.readUInt32BE(0)); model = model.subarray(4); }
          else assert.throws(() => lb.readUInt32BE(), (e: NodeJS.ErrnoException) => e.code === 'ERR_BUFFER_OUT_OF_BOUNDS');
          break;
        }
        case 10: {
          lb.release();
          // Every view taken before: zeros, or detached (empty) once its memory was reused; never
          // its old bytes, never other bytes.
          for (const k of kept) assert.ok(k.view.length === 0 || k.view.every((b) => b === 0), 'a released view shows neither its old bytes nor others');
          kept.length = 0;
          break;
        }
        case 11: { const k = len() + 1 + rnd(10); assert.throws(() => lb.next(k), (e: NodeJS.ErrnoException) => e.code === 'ERR_BUFFER_OUT_OF_BOUNDS'); break; }
        case 12: { const k = rnd(len() + 1); assert.ok(lb.readBinary(k).equals(model.subarray(0, k)), `readBinary ${k}`); model = model.subarray(k); break; }
        // Small reads and searches, as a parser makes them: mostly answered from the read window.
        case 13: {
          for (let j = rnd(20); j > 0 && len() > 0; j--) {
            const k = Math.min(len(), 1 + rnd(8));
            if (rnd(2) === 0) { assert.ok(lb.peek(k).equals(model.subarray(0, k)), `small peek ${k}`); continue; }
            const v = lb.next(k);
            assert.ok(v.equals(model.subarray(0, k)), `small next ${k}`);
            kept.push({ view: v, copy: Buffer.from(v) });
            model = model.subarray(k);
          }
          break;
        }
        case 14: {
          const d = model.length && rnd(4) > 0 ? model[rnd(model.length)]! : rnd(256);
          assert.is(lb.indexOf(d), model.indexOf(d), `indexOf ${d}`);
          break;
        }
      }
    } catch (e) {
      throw new Error(`seed ${start} step ${step} op ${op} n ${n} len ${len()}: ${(e as Error).message}`);
    }
    assert.is(lb.length, len(), `length after step ${step} (op ${op})`);
    if (model.length > 1 << 20) { lb.skip(model.length); model = Buffer.alloc(0); }
  }
  lb.release();
  lb.dispose();
}

test('memory returns to the pool when buffers are released', () => {
  const before = linkBufferPoolStats().liveBytes;
  const lb = new LinkBuffer();
  for (let i = 0; i < 100; i++) lb.write(Buffer.alloc(1000, i));
  assert.ok(linkBufferPoolStats().liveBytes > before);
  lb.skip(lb.length);
  lb.release();
  assert.is(linkBufferPoolStats().liveBytes, before);
});

test('a view kept past release() never shows the old bytes (zeros until its memory is reused, then detached); what is unread, and slices, are untouched', () => {
  const lb = new LinkBuffer();
  lb.write('first:second:third');
  lb.flush();
  const first = lb.next(6);
  assert.is(first.toString(), 'first:');
  const sl = lb.slice(7); // 'second:' now belongs to the slice
  lb.release();
  assert.not.ok(first.toString().includes('first'), `a released view reads ${JSON.stringify(first.toString())}`);
  assert.ok(first.length === 0 || first.every((b) => b === 0), 'zeros (or detached)');
  assert.is(sl.next(7).toString(), 'second:', 'a slice keeps its bytes when its source releases');
  assert.is(lb.next(5).toString(), 'third', 'unread bytes are untouched');
  lb.release();
  sl.release();
});

test.run();
