import { Module } from '@nestjs/common';
import { SessionStatesProjection } from './session-states.projection';
import { type Clock, STATE_CLOCK, StateCommandHandler } from './state.command-handler';
import { StateController } from './state.controller';

/**
 * Each session's workflow state (`session-state:<tenant>:<id>` streams) and history: its NATS commands
 * and queries and the `session_states` read model, written inline with each append. Needs the global
 * `EventStoreModule` (Db, EventStore); its table is migration `SessionStates1732650000000` of the
 * service's `sessionMigrations`.
 */
@Module({
  controllers: [StateController],
  providers: [
    StateCommandHandler,
    SessionStatesProjection,
    { provide: STATE_CLOCK, useValue: (() => new Date()) satisfies Clock },
  ],
  exports: [SessionStatesProjection],
})
export class StateModule {}
