// Echo server for the bench rig's echo protocol: u32 big-endian length + payload; the whole
// frame goes back. Every frame passes through this JavaScript handler.
//   node dist/examples/echo/server.js --port 7000 [--host 127.0.0.1] [--loops 1]
import { createServer, Reactor } from '../../src';
import { die, num, opt, usage } from '../cli';


async function main(): Promise<void> {
  usage('node dist/examples/echo/server.js [--port 7000] [--host 127.0.0.1] [--loops 1] [--threaded]\n' +
    '  An echo server for the rig\'s echo protocol (u32 big-endian length + payload, the whole frame back).');
  const port = num('port', 7000);
  const host = opt('host', '127.0.0.1');
  const reactor = new Reactor({ loops: num('loops', 1, 1), threaded: process.argv.includes('--threaded') });
  const server = createServer({
    reactor,
    framing: 'u32be',
    readTimeout: 10000, // a frame must arrive within 10 s of its first byte
    writeTimeout: 5000, // a client that takes no reply for 5 s is closed
    onFrame: (frame, conn) => { conn.write(frame); },
  });
  const addr = await server.listen({ port, host });
  console.log(`echo server listening on ${addr.address}:${addr.port}`);
  const stop = async () => {
    await server.close({ timeout: 1000 });
    reactor.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch(die);
