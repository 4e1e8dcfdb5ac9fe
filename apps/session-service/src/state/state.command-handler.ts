import { Inject, Injectable } from '@nestjs/common';
import {
  type CommandContext,
  SESSION_STATE_CATEGORY,
  type SessionStateWriteReply,
  sessionStateStreamId,
  sessionStreamId,
  isErased,
} from '@threadline/contracts';
import { type EventStoreTransaction, eventMetadata } from '@threadline/event-store';
import { sessionEventRegistry } from '../session/sessions.projection';
import { SessionStatesProjection, findStateRecord, stateEventRegistry } from './session-states.projection';
import {
  decide,
  evolve,
  initialState,
  lifecycleEventOf,
  type StateCommand,
  viewOf,
  type WorkflowState,
} from './state.decider';

/** Token of the clock state commands are stamped with: `() => Date` (tests may pin it). */
export const STATE_CLOCK = Symbol('STATE_CLOCK');
export type Clock = () => Date;

/**
 * The lifecycle of session `sessionId` folded into a fresh {@link WorkflowState}, read strongly from
 * the session's own stream (never from a read model): a session created a moment ago is always seen.
 * First locks the session's `streams` row `FOR SHARE` for the rest of the transaction, so the session
 * cannot be deleted (or end, or expire: those appends update that row) until the state write commits.
 * That lock also keeps the two streams of a session in commit order by global position, which the
 * history relies on. Session events of types this service does not know are skipped (as the
 * chat-log-service's `loadSessionLifecycle`).
 */
export async function loadSessionLifecycle(
  tx: EventStoreTransaction,
  tenantId: string,
  sessionId: string,
): Promise<WorkflowState> {
  const streamId = sessionStreamId(tenantId, sessionId);
  await tx.sql.query('SELECT version FROM streams WHERE stream_id = $1 FOR SHARE', [streamId]);
  let state = initialState();
  for (const envelope of await tx.readStream(streamId, { tenantId })) {
    if (isErased(envelope) || !sessionEventRegistry.knows(envelope.eventType)) continue;
    const event = lifecycleEventOf(sessionEventRegistry.parse(envelope));
    if (event) state = evolve(state, event);
  }
  return state;
}

/**
 * Runs the workflow-state commands, inside the transaction of `runCommand` (which claims the
 * idempotency key and retries on `STREAM.VERSION_CONFLICT`): take the state stream's transaction lock
 * (`session-state:<tenant>:<id>`, so concurrent writers of one session queue instead of conflicting),
 * load the session's lifecycle ({@link loadSessionLifecycle}) and fold the state stream, `decide`,
 * append with the version read as expected version and the `session_states` projection inline, and
 * read the state back from the read model.
 */
@Injectable()
export class StateCommandHandler {
  constructor(
    private readonly projection: SessionStatesProjection,
    @Inject(STATE_CLOCK) private readonly clock: Clock,
  ) {}

  /**
   * Decides `command` and appends its events (if any). Answers the state after the command and the
   * global position of the last appended event (for a no-op, the position of the state's last
   * event, 0 when it has none). Throws the decider's DomainErrors (SESSION.NOT_FOUND,
   * SESSION.VERSION_MISMATCH, REQUEST.INVALID) and `StreamVersionConflictError`.
   */
  async execute(
    tx: EventStoreTransaction,
    context: CommandContext,
    command: StateCommand,
  ): Promise<SessionStateWriteReply> {
    const { sessionId, actingUserId } = command.data;
    const streamId = sessionStateStreamId(context.tenantId, sessionId);
    await tx.lock(streamId);
    let state = await loadSessionLifecycle(tx, context.tenantId, sessionId);
    for (const envelope of await tx.readStream(streamId, { tenantId: context.tenantId }))
      if (!isErased(envelope)) state = evolve(state, stateEventRegistry.parse(envelope));
    const events = decide(command, state, this.clock());
    let position: number | null = null;
    if (events.length > 0) {
      const result = await tx.append(streamId, SESSION_STATE_CATEGORY, state.version, events, {
        metadata: eventMetadata(context, actingUserId ?? state.session.userId),
        inline: this.projection.inline,
      });
      position = result.lastGlobalPosition;
    }
    const record = await findStateRecord(tx.sql, context.tenantId, sessionId);
    const expectedVersion = state.version + events.length;
    if ((record?.state.version ?? 0) !== expectedVersion) {
      // The row commits with every append; a mismatch means the read model is broken, not a user error.
      throw new Error(
        `session_states has version ${record?.state.version ?? 'none'} for ${context.tenantId}/${sessionId}, expected ${expectedVersion}`,
      );
    }
    return {
      state: viewOf(sessionId, record?.state ?? state),
      position: position ?? record?.lastGlobalPosition ?? 0,
    };
  }
}
