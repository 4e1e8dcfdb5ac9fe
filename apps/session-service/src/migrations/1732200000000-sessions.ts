import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The `sessions` read model of the session-service, written inline with each append (see
 * `sessions.projection.ts`). One row per existing session; a deleted session's row is removed.
 * `version` is the stream position of the last event applied (the ETag), `last_global_position`
 * the global position of that event. Indexes serve, in order: a user's sessions by creation and by
 * last activity (keyset pages with the session id as tie-breaker), a user's current active
 * session, the operators' list by status and creation (and across all statuses), and
 * `metadata @> {...}` filters.
 */
export class Sessions1732200000000 implements MigrationInterface {
  name = 'Sessions1732200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE sessions (
        tenant_id            text        NOT NULL,
        session_id           text        NOT NULL,
        user_id              text,
        title                text        NOT NULL,
        status               text        NOT NULL CHECK (status IN ('active', 'ended', 'expired')),
        metadata             jsonb       NOT NULL DEFAULT '{}'::jsonb,
        created_from         text,
        created_at           timestamptz NOT NULL,
        updated_at           timestamptz NOT NULL,
        last_activity_at     timestamptz NOT NULL,
        ended_at             timestamptz,
        version              bigint      NOT NULL,
        last_global_position bigint      NOT NULL,
        PRIMARY KEY (tenant_id, session_id)
      )`);
    await q.query(
      `CREATE INDEX sessions_user_created ON sessions (tenant_id, user_id, created_at DESC, session_id DESC)`,
    );
    await q.query(
      `CREATE INDEX sessions_user_activity ON sessions (tenant_id, user_id, last_activity_at DESC, session_id DESC)`,
    );
    await q.query(
      `CREATE INDEX sessions_user_current ON sessions (tenant_id, user_id, last_activity_at DESC, session_id DESC)
       WHERE status = 'active'`,
    );
    await q.query(
      `CREATE INDEX sessions_status_created ON sessions (tenant_id, status, created_at DESC, session_id DESC)`,
    );
    await q.query(`CREATE INDEX sessions_created ON sessions (tenant_id, created_at DESC, session_id DESC)`);
    await q.query(`CREATE INDEX sessions_metadata ON sessions USING gin (metadata jsonb_path_ops)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS sessions`);
  }
}
