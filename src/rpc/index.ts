export * from './thrift';
export * from './ttheader';
export * from './protocol';
export * from './server';
export * from './client';
export * from './idl';
export * from './codegen';
