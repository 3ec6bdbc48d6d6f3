// GroupCache.Get on linkpoll RPC, for the bench rig: group "scores" = {Tom, Jack, Sam}, each
// value --size bytes (the score, padded with '.'); unknown keys get an exception. Answers
// TTHeader, framed and unframed binary on the same port.
//   node dist/bench/servers/rpc-get.js --port PORT [--size 64] [--read-pause off]
import { RpcServer } from '../../src/rpc';
import { num, opt } from '../../examples/cli';
import { scoresService } from './scores';

const { service, handlers } = scoresService(num('size', 64, 1));
const server = new RpcServer({ logger: null, readPauseOnBacklog: opt('read-pause', 'on') !== 'off' });
server.register(service, handlers);
server.listen({ port: num('port', 9000), host: opt('host', '127.0.0.1') }).then((a) => {
  console.log(`rpc-get listening on ${a.address}:${a.port}`);
});
const stop = () => server.close({ timeout: 500 }).then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
