import { Sessions1732200000000 } from './1732200000000-sessions';
import { SessionContext1732210000000 } from './1732210000000-session-context';
import { SessionLifecycle1732600000000 } from './1732600000000-session-lifecycle';
import { SessionStates1732650000000 } from './1732650000000-session-states';
import { Erasures1732800000000 } from './1732800000000-erasures';
import { ErasurePurges1732950000000 } from './1732950000000-erasure-purges';

/** The session-service's read-model migrations, in order (run after the event store's). */
export const sessionMigrations = [
  Sessions1732200000000,
  SessionContext1732210000000,
  SessionLifecycle1732600000000,
  SessionStates1732650000000,
  Erasures1732800000000,
  ErasurePurges1732950000000,
];
