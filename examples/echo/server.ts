// Echo server for the bench rig's echo protocol: u32 big-endian length + payload; the whole
// frame goes back. Every frame passes through this JavaScript handler.
//   node dist/examples/echo/server.js --port 7000 [--host 127.0.0.1] [--loops 1]
import { createServer, Reactor } from '../../src';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
}

async function main(): Promise<void> {
  const port = Number(arg('port', '7000'));
  const host = arg('host', '127.0.0.1');
  const reactor = new Reactor({ loops: Number(arg('loops', '1')) });
  const server = createServer({
    reactor,
    framing: 'u32be',
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

main().catch((e) => { console.error(e); process.exit(1); });
