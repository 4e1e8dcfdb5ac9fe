import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The `session_states` read model: each session's current workflow state, written inline with each
 * append to its `session-state:<tenant>:<id>` stream (see `state/session-states.projection.ts`). One
 * row per session with at least one state event. `version` is the state stream's position of the
 * last event applied (the ETag), `document` the merged state document (`constraints`, `strategy`,
 * `response_plan`, `summary`, `status`), `tool_calls` the tool calls in planning order (name,
 * description, status, result, error, planned_at, updated_at), `is_complete` whether every planned
 * tool call is completed. The partial index serves "sessions whose workflow is not complete".
 */
export class SessionStates1732650000000 implements MigrationInterface {
  name = 'SessionStates1732650000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE session_states (
        tenant_id            text        NOT NULL,
        session_id           text        NOT NULL,
        version              bigint      NOT NULL CHECK (version > 0),
        document             jsonb       NOT NULL DEFAULT '{}'::jsonb,
        tool_calls           jsonb       NOT NULL DEFAULT '[]'::jsonb,
        tool_call_count      integer     NOT NULL DEFAULT 0 CHECK (tool_call_count >= 0),
        is_complete          boolean     NOT NULL,
        updated_at           timestamptz NOT NULL,
        last_global_position bigint      NOT NULL,
        PRIMARY KEY (tenant_id, session_id)
      )`);
    await q.query(
      `CREATE INDEX session_states_incomplete ON session_states (tenant_id, updated_at DESC) WHERE NOT is_complete`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS session_states`);
  }
}
