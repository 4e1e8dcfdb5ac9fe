import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes of the lifecycle policies (issue 4) on the `sessions` read model, across tenants:
 * the expiry listing (active sessions by last activity, oldest first) and the retention listing
 * (ended and expired sessions by end time). Both are keyset-paged on `(time, tenant_id, session_id)`.
 * The per-user limit uses `sessions_user_current` (migration `Sessions1732200000000`).
 */
export class SessionLifecycle1732600000000 implements MigrationInterface {
  name = 'SessionLifecycle1732600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX sessions_idle ON sessions (last_activity_at, tenant_id, session_id) WHERE status = 'active'`,
    );
    await q.query(
      `CREATE INDEX sessions_retired ON sessions (ended_at, tenant_id, session_id)
       WHERE status IN ('ended', 'expired')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS sessions_retired`);
    await q.query(`DROP INDEX IF EXISTS sessions_idle`);
  }
}
