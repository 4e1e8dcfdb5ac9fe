import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The empty `context` (`EMPTY_SESSION_CONTEXT` of `@threadline/contracts`), as SQL. */
const EMPTY_CONTEXT = `'{"last_query": null, "last_response": null, "last_agent_used": null,
  "last_execution_time_ms": null, "error_count": 0, "last_error": null}'::jsonb`;

/**
 * The turn context of each session, kept by the `session_context` projection from the conversation
 * events (see `session-context.projection.ts`): `turn_count` (turns not deleted), `context` (the
 * `SessionContext` view, snake_case, exactly as the API returns it) and `context_turn`, the projection's
 * bookkeeping about which turn the context describes (`ContextTurn`; never returned). The projection's
 * positions live in `projection_streams` and its checkpoint in `checkpoints` (event store tables).
 */
export class SessionContext1732210000000 implements MigrationInterface {
  name = 'SessionContext1732210000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE sessions
        ADD COLUMN turn_count   integer NOT NULL DEFAULT 0 CHECK (turn_count >= 0),
        ADD COLUMN context      jsonb   NOT NULL DEFAULT ${EMPTY_CONTEXT},
        ADD COLUMN context_turn jsonb   NOT NULL DEFAULT '{}'::jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE sessions DROP COLUMN IF EXISTS context_turn, DROP COLUMN IF EXISTS context,
      DROP COLUMN IF EXISTS turn_count`);
  }
}
