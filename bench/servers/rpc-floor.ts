// The floor under the RPC layer, for bench/per-request.sh: the reactor, u32be framing and the
// native TTHeader check as RpcServer sets them up, and for every frame one canned GroupCache.Get
// reply (64-byte value) with the request's header and message seqids patched in: no Thrift
// decode, no handler, no encode. Subtracting its user time per request from rpc-get's gives what
// the RPC layer costs. Takes only the rig's `ttheader` mode with the method name "Get".
//   node dist/bench/servers/rpc-floor.js --port PORT
import { createServer } from '../../src';
import { MessageType, ThriftWriter, beginTTHeader, endFrame } from '../../src/rpc/internal';
import { num } from '../../examples/cli';

const w = new ThriftWriter(Buffer.alloc(256));
const start = beginTTHeader(w, 0);
w.messageBegin('Get', MessageType.REPLY, 0);
w.byte(12); w.i16(0); // field 0 (success): struct Response
w.byte(11); w.i16(1); w.binary(Buffer.alloc(64, '.')); // 1: binary value
w.byte(0); w.byte(0);
endFrame(w, start);
const canned = Buffer.from(w.buf.subarray(0, w.pos));
// LENGTH..SEQID..HEADER SIZE (14) + 4 header bytes + version (4) + name length (4) + "Get" (3).
const MSG_SEQID = 14 + 4 + 4 + 4 + 3;

const server = createServer((conn) => {
  conn._frameAt = (buf, at) => {
    const st = conn._r.stage(canned.length);
    st.buf.set(canned, st.pos);
    st.buf.writeInt32BE(buf.readInt32BE(at + 8), st.pos + 8);
    st.buf.writeInt32BE(buf.readInt32BE(at + MSG_SEQID), st.pos + MSG_SEQID);
    conn._commitStaged(canned.length);
  };
  conn.setOptions({ framing: 'u32be', frameCheck: 'ttheader' });
});
void server.listen({ port: num('port', 9000), host: '127.0.0.1' });
// As the other servers: serve on until the clients leave or go quiet, then exit.
process.on('SIGTERM', () => { void server.close({ timeout: 500 }).then(() => process.exit(0)); });
