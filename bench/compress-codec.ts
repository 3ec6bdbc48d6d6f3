// What compressing one payload costs and saves: zlib at levels 1 and 6 (node:zlib, the THeader
// zlib transform), and snappy / lz4 where those npm packages are installed (they are not
// dependencies: this row decides whether they would pay). Payload sizes 64 B to 256 KiB,
// text-like and random (bench/payloads.ts).
//   node dist/bench/compress-codec.js
import * as zlib from 'node:zlib';
import { randomBytes, textLike } from './payloads';

type Codec = { name: string; pack(b: Buffer): Buffer; unpack(b: Buffer, n: number): Buffer };
const codecs: Codec[] = [
  { name: 'zlib-1', pack: (b) => zlib.deflateSync(b, { level: 1 }), unpack: (b) => zlib.inflateSync(b) },
  { name: 'zlib-6', pack: (b) => zlib.deflateSync(b), unpack: (b) => zlib.inflateSync(b) },
];
for (const [pkg, name] of [['snappy', 'snappy'], ['lz4-napi', 'lz4']] as const) {
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const m = require(pkg);
    codecs.push(pkg === 'snappy'
      ? { name, pack: (b) => m.compressSync(b), unpack: (b) => m.uncompressSync(b) }
      : { name, pack: (b) => m.compressSync(b), unpack: (b) => m.uncompressSync(b) });
  } catch { console.log(`# ${pkg}: not installed (npm install ${pkg} to compare)`); }
}

function timeUs(fn: () => void, minMs = 200): number {
  let n = 0;
  const t0 = process.hrtime.bigint();
  let t = t0;
  do { for (let i = 0; i < 16; i++) fn(); n += 16; t = process.hrtime.bigint(); } while (Number(t - t0) < minMs * 1e6);
  return Number(t - t0) / 1e3 / n;
}

console.log('| payload | codec | size after | ratio | compress µs | inflate µs | compress MB/s |');
console.log('|---|---|---:|---:|---:|---:|---:|');
for (const size of [64, 256, 1024, 4096, 16384, 262144]) {
  for (const [kind, data] of [['text', textLike(size)], ['random', randomBytes(size)]] as const) {
    for (const c of codecs) {
      const packed = c.pack(data);
      const tc = timeUs(() => c.pack(data));
      const tu = timeUs(() => c.unpack(packed, size));
      console.log(`| ${size} B ${kind} | ${c.name} | ${packed.length} | ${(packed.length / size).toFixed(2)} | ${tc.toFixed(1)} | ${tu.toFixed(1)} | ${(size / tc).toFixed(0)} |`);
    }
  }
}
