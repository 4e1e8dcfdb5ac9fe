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
  created_at: z.date(),
  retried_at: z.date().nullable(),
});
export type DeadLetterRow = z.infer<typeof DeadLetterRow>;

/** The `dead_letters` table: poison events are recorded here instead of blocking or being dropped. */
export class DeadLetters {
  constructor(private readonly sql: Sql) {}

  async record(letter: DeadLetter): Promise<void> {
    await this.sql.query(
      `INSERT INTO dead_letters (consumer, subject, payload, error, attempts, event_id, event_type, stream_id, global_position)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
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
      ],
    );
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
