// linkpoll: high-throughput TCP for Node.js on an epoll reactor with a zero-copy LinkBuffer.
export { createServer, Server, type ServerOptions, type ListenOptions, type CloseOptions, type ServerEvents } from './server';
export { connect, type DialOptions } from './dial';
export { Connection, Writer, type AddressInfo, type ConnectionEvents, type TcpInfo, type WriteCallback } from './connection';
export { LinkBuffer, linkBufferPoolStats } from './link-buffer';
export { Reactor, getDefaultReactor, type ReactorOptions } from './reactor';
export { LinkpollError, type TimeoutKind } from './errors';
export type { Logger } from './log';
export type { ConnectionOptions, Framing, LengthFieldFraming } from './options';
export type { ReactorStats } from './native';
export * as rpc from "./rpc";
