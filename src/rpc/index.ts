// linkpoll/rpc: Thrift RPC over Kitex TTHeader, Apache THeader, framed and unframed transports.
// The public API only; the layers it is built from are laid out by directory (codec, transport,
// client, server, governance, observability, idl).

// Serving
export { RpcServer, createRpcServer, CallContext, DeclaredException, BizStatusError,
  type Handler, type ServerMiddleware, type RpcServerOptions, type RpcServerStats, type RpcServerEvents } from './server/server';

// Calling
export { RpcClient, createRpcClient, RemoteException, isRetryable,
  type RpcClientOptions, type RpcClientEvents, type CallOptions, type ClientCall, type ClientMiddleware,
  type TargetSpec, type RetryOptions, type BackupRequestOptions, type ClientTransport } from './client/client';

// Services and the Thrift binary codec (what generated code and hand-written specs use)
export { type MethodSpec, type ServiceSpec, type Transport } from './transport/protocol';
export { TType, MessageType, AppExceptionType, ThriftReader, ThriftWriter, TApplicationException, TApplicationExceptionSpec, ThriftException,
  type TypeSpec, type FieldSpec, type StructSpec, type MessageHeader } from './codec/thrift';
export { IntKey } from './codec/ttheader';
export { CompressionPolicy, LinkGauge, DEFAULT_COMPRESS_LINK_RATE, type Compression, type CompressionPolicyOptions } from './codec/transforms';

// IDL and code generation
export { parseIdl, parseIdlFile, parseIdlFiles, readIdlFiles, type Idl, type IdlType } from './idl/idl';
export { generate, generateTypeScript, generateTypeScriptFiles, type GenerateOptions } from './idl/codegen';

// Governance
export { RoundRobin, WeightedRoundRobin, WeightedRandom, LeastInFlight, ConsistentHash,
  type LoadBalancer, type Instance, type BalancerName } from './governance/balancer';
export { type CircuitBreakerOptions, type CircuitState } from './governance/breaker';
export { type RateLimitOptions, type RetryBudgetOptions } from './governance/limiter';

// Observability
export { LATENCY_BUCKETS_MS, type MethodMetricsSnapshot } from './observability/metrics';
export { clientAccessLog, serverAccessLog, type AccessLogOptions } from './observability/access-log';
