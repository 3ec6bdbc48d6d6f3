// LinkBuffer read/write paths against the Buffer patterns Node code uses for the same job:
// accumulating chunks with Buffer.concat, or a list of chunks with an offset.
//   node dist/bench/linkbuffer.js
import { Bench } from 'tinybench';
import { LinkBuffer } from '../src';

const MSG = 64;
const PER_CHUNK = 100; // 100 framed messages arrive per chunk, one split across chunks
const chunkBody = Buffer.alloc((4 + MSG) * PER_CHUNK + 37);
for (let i = 0; i + 4 + MSG <= chunkBody.length; i += 4 + MSG) chunkBody.writeUInt32BE(MSG, i);

function frameStreamLinkBuffer(): number {
  const lb = new LinkBuffer();
  let frames = 0;
  for (let c = 0; c < 10; c++) {
    lb.write(chunkBody);
    while (lb.length >= 4) {
      const n = lb.peek(4).readUInt32BE(0);
      if (lb.length < 4 + n) break;
      lb.next(4 + n);
      frames++;
    }
    lb.release();
  }
  lb.dispose();
  return frames;
}

function frameStreamConcat(): number {
  let acc = Buffer.alloc(0);
  let frames = 0;
  for (let c = 0; c < 10; c++) {
    acc = acc.length ? Buffer.concat([acc, chunkBody]) : chunkBody;
    while (acc.length >= 4) {
      const n = acc.readUInt32BE(0);
      if (acc.length < 4 + n) break;
      acc.subarray(0, 4 + n);
      acc = acc.subarray(4 + n);
      frames++;
    }
  }
  return frames;
}

function frameStreamChunkList(): number {
  const chunks: Buffer[] = [];
  let off = 0;
  let len = 0;
  let frames = 0;
  const take = (n: number): Buffer => {
    if (chunks[0].length - off >= n) {
      const b = chunks[0].subarray(off, off + n);
      off += n;
      if (off === chunks[0].length) { chunks.shift(); off = 0; }
      len -= n;
      return b;
    }
    const out = Buffer.allocUnsafe(n);
    let w = 0;
    while (w < n) {
      const k = Math.min(n - w, chunks[0].length - off);
      chunks[0].copy(out, w, off, off + k);
      w += k; off += k;
      if (off === chunks[0].length) { chunks.shift(); off = 0; }
    }
    len -= n;
    return out;
  };
  for (let c = 0; c < 10; c++) {
    chunks.push(chunkBody);
    len += chunkBody.length;
    while (len >= 4) {
      const hdr = take(4);
      const n = hdr.readUInt32BE(0);
      if (len < n) { chunks.unshift(hdr); off = 0; len += 4; break; }
      take(n);
      frames++;
    }
  }
  return frames;
}

function writeLinkBuffer(): void {
  const lb = new LinkBuffer();
  for (let i = 0; i < 1000; i++) {
    const m = lb.malloc(4 + MSG);
    m.writeUInt32BE(MSG, 0);
  }
  lb.flush();
  lb.skip(lb.length);
  lb.release();
  lb.dispose();
}

function writeConcat(): void {
  const parts: Buffer[] = [];
  for (let i = 0; i < 1000; i++) {
    const m = Buffer.allocUnsafe(4 + MSG);
    m.writeUInt32BE(MSG, 0);
    parts.push(m);
  }
  Buffer.concat(parts);
}

async function main(): Promise<void> {
  const bench = new Bench({ time: 1000 });
  bench
    .add('read 1000 frames: LinkBuffer (views)', frameStreamLinkBuffer)
    .add('read 1000 frames: Buffer.concat', frameStreamConcat)
    .add('read 1000 frames: chunk list', frameStreamChunkList)
    .add('write 1000 frames: LinkBuffer malloc+flush', writeLinkBuffer)
    .add('write 1000 frames: allocUnsafe+Buffer.concat', writeConcat);
  await bench.run();
  console.table(bench.table());
}

main().catch((e) => { console.error(e); process.exit(1); });
