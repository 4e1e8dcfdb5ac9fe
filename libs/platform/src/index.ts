export * from './config';
export * from './errors';
export * from './logging';
export * from './run';
export * from './unavailable';
export * from './payload';
export * from './metrics';
export * from './tracing';
