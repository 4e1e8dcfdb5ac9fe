import { Turns1732400000000 } from './1732400000000-turns';
import { TurnArraysJson1733010000000 } from './1733010000000-turn-arrays-json';

/** The chat-log-service's read-model migrations, in order (run after the event store's). */
export const chatLogMigrations = [Turns1732400000000, TurnArraysJson1733010000000];
