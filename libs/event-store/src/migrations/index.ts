import { EventStore1732190400000 } from './1732190400000-event-store';
import { DeadLetterIdentity1732900000000 } from './1732900000000-dead-letter-identity';
import { EventDataJson1733000000000 } from './1733000000000-event-data-json';

/** The event store's migrations, in order; services append their own read-model migrations. */
export const eventStoreMigrations = [
  EventStore1732190400000,
  DeadLetterIdentity1732900000000,
  EventDataJson1733000000000,
];
