export * from './nats-connection';
export * from './event-stream';
export * from './jetstream-events.server';
export * from './request-reply';
export * from './messaging.module';
export * from './service-runtime';
