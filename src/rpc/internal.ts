// Everything in src/rpc, public or not: for the project's own tests, benchmarks and fuzzers.
// Users import 'linkpoll/rpc' (index.ts), which is the public API only.
export * from './codec/thrift';
export * from './codec/ttheader';
export * from './codec/transforms';
export * from './transport/protocol';
export * from './server/server';
export * from './client/client';
export * from './idl/idl';
export * from './idl/codegen';
export * from './governance/balancer';
export * from './governance/breaker';
export * from './governance/limiter';
export * from './observability/metrics';
export * from './observability/access-log';
