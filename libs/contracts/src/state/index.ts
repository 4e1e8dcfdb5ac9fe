export * from './state.events';
export * from './state.views';
export * from './state.commands';
export * from './state.http';
