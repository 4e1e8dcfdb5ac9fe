import { z } from 'zod';
import type { Sql } from './db';

/** A message a consumer could not handle after its retries, or could not parse at all. */
export interface DeadLetter {
  consumer: string;
  subject: string;
  /** The raw message body (UTF-8). */
  payload: string;
  error: string;
  attempts: number;
  eventId?: string | undefined;
  eventType?: string | undefined;
  streamId?: string | undefined;
  globalPosition?: number | undefined;
  /**
   * The message's JetStream stream sequence: with `subject`, its identity when it has no event id
   * (not an event envelope).
   */
  streamSequence?: number | undefined;
}

const DeadLetterRow = z.object({
  id: z.coerce.number(),
  consumer: z.string(),
  subject: z.string(),
  payload: z.string(),
  error: z.string(),
  attempts: z.number(),
  event_id: z.string().nullable(),
  event_type: z.string().nullable(),
  stream_id: z.string().nullable(),
  global_position: z.coerce.number().nullable(),
  stream_sequence: z.coerce.number().nullable(),
  created_at: z.date(),
  retried_at: z.date().nullable(),
});
export type DeadLetterRow = z.infer<typeof DeadLetterRow>;

/** The `dead_letters` table: poison events are recorded here instead of blocking or being dropped. */
export class DeadLetters {
  constructor(private readonly sql: Sql) {}

  /**
   * Records `letter` (its `error` cut to 4000 characters), once per consumer and message: a message
   * already recorded for `letter.consumer` (same `eventId`; without one, same `subject` and
   * `streamSequence`) is left as it is, retried or not. A message is recorded again when JetStream
   * redelivers it after the record committed but before the consumer terminated it (crash, lost reply),
   * to the same or another instance; unique indexes of migration `DeadLetterIdentity1732900000000` make
   * that a no-op, also when two records race. A letter with neither an event id nor a stream sequence
   * cannot be identified and is always recorded.
   * @returns true when it was recorded, false when the message already was.
   * @throws the database's error when the insert fails.
   */
  async record(letter: DeadLetter): Promise<boolean> {
    const inserted = await this.sql.query(
      `INSERT INTO dead_letters (consumer, subject, payload, error, attempts, event_id, event_type, stream_id, global_position, stream_sequence)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT DO NOTHING
       RETURNING id`,
      [
        letter.consumer,
        letter.subject,
        letter.payload,
        letter.error.slice(0, 4000),
        letter.attempts,
        letter.eventId ?? null,
        letter.eventType ?? null,
        letter.streamId ?? null,
        letter.globalPosition ?? null,
        letter.streamSequence ?? null,
      ],
    );
    return inserted.length > 0;
  }

  /** Dead letters not yet retried, oldest first; all consumers unless `consumer` is given. */
  async list(consumer?: string): Promise<DeadLetterRow[]> {
    const rows = await this.sql.query(
      `SELECT * FROM dead_letters WHERE retried_at IS NULL AND ($1::text IS NULL OR consumer = $1) ORDER BY id`,
      [consumer ?? null],
    );
    return rows.map((r) => DeadLetterRow.parse(r));
  }

  async markRetried(id: number): Promise<void> {
    await this.sql.query('UPDATE dead_letters SET retried_at = now() WHERE id = $1', [id]);
  }
}
