import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * User erasure (`DELETE /users/{user_id}`, see `erasure/user-erasure.ts`):
 * - `erasures`: one row per erasure, the record that it happened (tenant, user id, when, and the counts
 *   of the receipt). The user id is kept: it is the subject of the record, as in the `UserErased.v1`
 *   event of the `user:<tenant>:<user>` stream.
 * - `events_user`: the events a user acted on or owns, by `metadata->>'userId'` (partial: only events
 *   that name a user), so an erasure finds the user's sessions, also deleted ones, without a scan.
 */
export class Erasures1732800000000 implements MigrationInterface {
  name = 'Erasures1732800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE erasures (
        id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id                  text        NOT NULL,
        user_id                    text        NOT NULL,
        erased_at                  timestamptz NOT NULL,
        sessions                   integer     NOT NULL CHECK (sessions >= 0),
        turns                      integer     NOT NULL CHECK (turns >= 0),
        events                     integer     NOT NULL CHECK (events >= 0),
        jetstream_messages_deleted integer,
        completed_at               timestamptz
      )`);
    await q.query(`CREATE INDEX erasures_user ON erasures (tenant_id, user_id, erased_at)`);
    await q.query(
      `CREATE INDEX events_user ON events (tenant_id, (metadata->>'userId')) WHERE metadata->>'userId' IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS events_user`);
    await q.query(`DROP TABLE IF EXISTS erasures`);
  }
}
