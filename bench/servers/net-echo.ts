// The node:net baseline for the echo benchmark: what a competent Node developer writes for the
// framing `u32 BE length | payload` — chunks kept until a whole frame is there (joined once),
// every complete frame written back, the writes of one 'data' event batched with cork/uncork,
// Nagle off.
//   node dist/bench/servers/net-echo.js --port PORT [--host 127.0.0.1]
import * as net from 'node:net';
import { num, opt } from '../../examples/cli';

const MAX_FRAME = 64 * 1024 * 1024;

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let chunks: Buffer[] = [];
  let total = 0;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    if (total < 4) return;
    const head = chunks[0]!.length >= 4 ? chunks[0]! : Buffer.concat(chunks, total);
    const first = head.readUInt32BE(0);
    if (first > MAX_FRAME) { socket.destroy(); return; }
    if (total < 4 + first) return;
    const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
    let off = 0;
    socket.cork();
    while (buf.length - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len > MAX_FRAME) { socket.destroy(); return; }
      if (buf.length - off < 4 + len) break;
      socket.write(buf.subarray(off, off + 4 + len));
      off += 4 + len;
    }
    socket.uncork();
    chunks = off === buf.length ? [] : [buf.subarray(off)];
    total = buf.length - off;
  });
  socket.on('error', () => socket.destroy());
});
server.listen(num('port', 7000), opt('host', '127.0.0.1'), () => {
  const a = server.address() as net.AddressInfo;
  console.log(`net-echo listening on ${a.address}:${a.port}`);
});
process.on('SIGTERM', () => process.exit(0));
