import { EventStore1732190400000 } from './1732190400000-event-store';

/** The event store's migrations, in order; services append their own read-model migrations. */
export const eventStoreMigrations = [EventStore1732190400000];
