// Echo client: sends framed messages and checks every one comes back whole and in order.
//   node dist/examples/echo/client.js --port 7000 [--count 10000] [--size 64]
import { connect } from '../../src';
import { die, num, opt, usage } from '../cli';


async function main(): Promise<void> {
  usage('node dist/examples/echo/client.js --port 7000 [--count 10000] [--size 64]\n' +
    '  Sends framed messages and checks every one comes back whole and in order.');
  const port = num('port', 7000, 1);
  const host = opt('host', '127.0.0.1');
  const count = num('count', 10000, 1);
  const size = num('size', 64, 8);
  const conn = await connect({ host, port, framing: 'u32be', connectTimeout: 3000 });
  const t0 = process.hrtime.bigint();
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    conn.onFrame = (frame) => {
      if (frame.readUInt32BE(4) !== received) reject(new Error(`frame ${received} came back out of order`));
      if (++received === count) resolve();
    };
    conn.on('close', (err) => { if (received < count) reject(err ?? new Error('server closed the connection')); });
  });
  for (let i = 0; i < count; i++) {
    const f = conn.writer.malloc(4 + size);
    f.writeUInt32BE(size, 0);
    f.writeUInt32BE(i, 4);
    f.fill(0x61, 8);
  }
  await done;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`${count} echoes of ${size} bytes in ${ms.toFixed(1)} ms (${Math.round(count / (ms / 1000))} msg/s), all in order`);
  conn.end();
  await conn.closed();
}

main().catch(die);
