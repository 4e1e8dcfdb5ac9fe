import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The JetStream purge of an erasure, recorded durably so that a failed purge is retried (see
 * `UserErasure`): an `erasures` row with `completed_at` NULL and `purge_event_ids` set is a pending purge.
 * - `purge_event_ids`: the erased event ids (their `Nats-Msg-Id`) still to delete from JetStream, set
 *   in the erasure's transaction, cleared when the purge completed;
 * - `purge_from`: creation time of the oldest of them (where the purge starts reading the stream);
 * - `purge_attempts`, `purge_error`: failed attempts so far and the last error;
 * - `purge_lease_until`: an instance purging it holds it until then (several instances may retry).
 * Erasures whose purge failed before this migration have no ids recorded and are not retried.
 */
export class ErasurePurges1732950000000 implements MigrationInterface {
  name = 'ErasurePurges1732950000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE erasures
        ADD COLUMN purge_event_ids   uuid[],
        ADD COLUMN purge_from        timestamptz,
        ADD COLUMN purge_attempts    integer NOT NULL DEFAULT 0,
        ADD COLUMN purge_error       text,
        ADD COLUMN purge_lease_until timestamptz`);
    await q.query(
      `CREATE INDEX erasures_pending_purge ON erasures (id) WHERE completed_at IS NULL AND purge_event_ids IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS erasures_pending_purge`);
    await q.query(`
      ALTER TABLE erasures
        DROP COLUMN purge_event_ids, DROP COLUMN purge_from, DROP COLUMN purge_attempts,
        DROP COLUMN purge_error, DROP COLUMN purge_lease_until`);
  }
}
