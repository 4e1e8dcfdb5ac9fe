export * from './db';
export * from './migrate';
export * from './event-store';
export * from './relay';
export * from './projection-runner';
export * from './dead-letters';
export * from './event-store.module';
export { eventStoreMigrations } from './migrations';
export * from './projections-cli';
