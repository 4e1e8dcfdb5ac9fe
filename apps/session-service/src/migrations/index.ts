import { Sessions1732200000000 } from './1732200000000-sessions';

/** The session-service's read-model migrations, in order (run after the event store's). */
export const sessionMigrations = [Sessions1732200000000];
