import type { MigrationInterface, QueryRunner } from 'typeorm';
import { AnalyticsSessionCounts1732300000000 } from './1732300000000-session-counts';

/**
 * Drops the `session_counts` projection: its rebuild held one writing transaction for its whole run
 * (35 s at 1.1M events), holding back `pg_snapshot_xmin` and so the relay and every projection tail
 * (ARCHITECTURE rule 3), and no query read it: `usage_stats` answers the session counts per tenant
 * (`GET /sessions/stats`) and per user (`GET /users/{id}/stats`). Its stream positions and checkpoint
 * go with it. `down` makes the empty tables again (a rebuild refills them).
 */
export class AnalyticsDropSessionCounts1732500000000 implements MigrationInterface {
  name = 'AnalyticsDropSessionCounts1732500000000';

  async up(q: QueryRunner): Promise<void> {
    await new AnalyticsSessionCounts1732300000000().down(q);
    await q.query(`DELETE FROM projection_streams WHERE projection = 'session_counts'`);
    await q.query(`DELETE FROM checkpoints WHERE name = 'projection:session_counts'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await new AnalyticsSessionCounts1732300000000().up(q);
  }
}
