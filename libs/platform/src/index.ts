export * from './config';
export * from './errors';
export * from './logging';
export * from './run';
export * from './metrics';
export * from './tracing';
