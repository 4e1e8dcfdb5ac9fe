import type { MigrationInterface, QueryRunner } from 'typeorm';

const countsBy = (keys: string, where = '') => `
  SELECT ${keys},
    count(*) FILTER (WHERE status = 'active')  AS active,
    count(*) FILTER (WHERE status = 'ended')   AS ended,
    count(*) FILTER (WHERE status = 'expired') AS expired,
    count(*) FILTER (WHERE status = 'deleted') AS deleted,
    count(*)                                   AS total
  FROM session_counts_sessions ${where}
  GROUP BY ${keys}`;

/**
 * The `session_counts` projection's tables (raw SQL, like the event store's migrations).
 *
 * The projection stores each session's counted status (`session_counts_sessions`); the counts per
 * tenant and per user are views grouping it, answered from the covering index. Why not counter rows
 * moved by each event: a rebuild replays every event in ONE transaction, and updating the same row
 * N times in one transaction costs O(N^2) in Postgres (each update walks the row's version chain,
 * which cannot be pruned before commit): 20,000 updates of one row took 3.3 s here, and a tenant's
 * counter row is updated by every event of the tenant. Rows carry no timestamps, so a rebuild yields
 * exactly the rows incremental handling did (ARCHITECTURE rule 6).
 */
export class AnalyticsSessionCounts1732300000000 implements MigrationInterface {
  name = 'AnalyticsSessionCounts1732300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE session_counts_sessions (
        tenant_id  text NOT NULL,
        session_id text NOT NULL,
        user_id    text,
        status     text NOT NULL CHECK (status IN ('active', 'ended', 'expired', 'deleted')),
        PRIMARY KEY (tenant_id, session_id)
      )`);
    await q.query(
      `CREATE INDEX session_counts_sessions_counts ON session_counts_sessions (tenant_id, user_id, status)`,
    );
    await q.query(`CREATE VIEW session_counts_by_tenant AS ${countsBy('tenant_id')}`);
    await q.query(
      `CREATE VIEW session_counts_by_user AS ${countsBy('tenant_id, user_id', 'WHERE user_id IS NOT NULL')}`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP VIEW IF EXISTS session_counts_by_user');
    await q.query('DROP VIEW IF EXISTS session_counts_by_tenant');
    await q.query('DROP TABLE IF EXISTS session_counts_sessions');
  }
}
