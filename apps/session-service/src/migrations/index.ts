import { Sessions1732200000000 } from './1732200000000-sessions';
import { SessionContext1732210000000 } from './1732210000000-session-context';

/** The session-service's read-model migrations, in order (run after the event store's). */
export const sessionMigrations = [Sessions1732200000000, SessionContext1732210000000];
