import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One dead letter per poison message and consumer. A message could be recorded twice: the record
 * committed but the consumer never terminated the message (the process died, or the commit's reply was
 * lost and the consumer naked), so JetStream redelivered it, to the same or another instance, and it
 * was recorded again. A message is identified by its event id or, when it is not an event envelope
 * (no event id), by its subject and JetStream stream sequence (`stream_sequence`, new here):
 * - `dead_letters_event`: unique `(consumer, event_id)` where there is an event id;
 * - `dead_letters_message`: unique `(consumer, subject, stream_sequence)` where there is none (rows
 *   recorded before this migration have no sequence: NULLs are distinct, they stay as they are).
 * Duplicates already recorded are deleted first, keeping a retried copy if there is one (so a letter
 * already retried is not listed again), else the oldest.
 */
export class DeadLetterIdentity1732900000000 implements MigrationInterface {
  name = 'DeadLetterIdentity1732900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE dead_letters ADD COLUMN stream_sequence bigint`);
    await q.query(`
      DELETE FROM dead_letters WHERE id IN (
        SELECT id FROM (
          SELECT id, row_number() OVER (PARTITION BY consumer, event_id ORDER BY retried_at NULLS LAST, id) AS n
          FROM dead_letters WHERE event_id IS NOT NULL
        ) copies WHERE n > 1
      )`);
    await q.query(
      `CREATE UNIQUE INDEX dead_letters_event ON dead_letters (consumer, event_id) WHERE event_id IS NOT NULL`,
    );
    await q.query(
      `CREATE UNIQUE INDEX dead_letters_message ON dead_letters (consumer, subject, stream_sequence) WHERE event_id IS NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS dead_letters_message`);
    await q.query(`DROP INDEX IF EXISTS dead_letters_event`);
    await q.query(`ALTER TABLE dead_letters DROP COLUMN IF EXISTS stream_sequence`);
  }
}
