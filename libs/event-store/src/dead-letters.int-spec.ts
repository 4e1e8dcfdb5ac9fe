import { randomUUID } from 'node:crypto';
import {
  createTestDatabase,
  dropDatabase,
  testDatabaseAdminUrl,
  type TestDatabase,
} from '@threadline/testing';
import { Db } from './db';
import { type DeadLetter, DeadLetters } from './dead-letters';
import { ensureDatabase, migrate } from './migrate';
import { EventStore1732190400000 } from './migrations/1732190400000-event-store';
import { DeadLetterIdentity1732900000000 } from './migrations/1732900000000-dead-letter-identity';

// The `dead_letters` table on the real Postgres: one row per consumer and poison message, however often
// (and by however many consumer instances at once) the message is recorded.

let t: TestDatabase;
let letters: DeadLetters;
beforeAll(async () => {
  t = await createTestDatabase();
  letters = new DeadLetters(t.db);
});
afterAll(async () => {
  await t.drop();
});

const consumer = 'analytics-projector-session';
function poisonEvent(): DeadLetter {
  const eventId = randomUUID();
  return {
    consumer,
    subject: 'tl.evt.session.SessionCreated.v1',
    payload: JSON.stringify({ eventId }),
    error: 'Error: cannot be handled',
    attempts: 5,
    eventId,
    eventType: 'SessionCreated.v1',
    streamId: `session:${randomUUID()}`,
    globalPosition: 7,
    streamSequence: 41,
  };
}
const rowsOf = async (where: string, params: unknown[]) =>
  t.db.query<{ id: string; attempts: number }>(
    `SELECT id, attempts FROM dead_letters WHERE ${where}`,
    params,
  );

describe('DeadLetters', () => {
  it('records a poison event once when it is recorded again (redelivered before its term)', async () => {
    const letter = poisonEvent();
    expect(await letters.record(letter)).toBe(true);
    // Redelivered after the first record committed: one more attempt, and on another stream sequence
    // when the relay published the event again after JetStream's duplicate window.
    expect(await letters.record({ ...letter, attempts: 6, streamSequence: 99 })).toBe(false);
    const rows = await rowsOf('event_id = $1', [letter.eventId]);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.attempts).toBe(5);
    expect((await letters.list(consumer)).filter((l) => l.event_id === letter.eventId)).toHaveLength(1);
  });

  it('records a message without an event id once per subject and stream sequence', async () => {
    const garbage = {
      consumer,
      subject: `tl.evt.session.Garbage.${randomUUID()}`,
      payload: 'not json',
      error: 'SyntaxError',
      attempts: 1,
    };
    expect(await letters.record({ ...garbage, streamSequence: 12 })).toBe(true);
    expect(await letters.record({ ...garbage, streamSequence: 12 })).toBe(false);
    expect(await letters.record({ ...garbage, streamSequence: 13 })).toBe(true);
    const rows = await t.db.query<{ stream_sequence: string }>(
      'SELECT stream_sequence FROM dead_letters WHERE subject = $1 ORDER BY id',
      [garbage.subject],
    );
    expect(rows.map((r) => Number(r.stream_sequence))).toEqual([12, 13]);
  });

  it('records one row when two consumer instances record the same message at once', async () => {
    const letter = poisonEvent();
    const outcomes = await Promise.all(Array.from({ length: 4 }, () => letters.record(letter)));
    expect(outcomes.filter(Boolean)).toHaveLength(1);
    expect(await rowsOf('event_id = $1', [letter.eventId])).toHaveLength(1);
  });

  it('records the same event once per consumer: each consumer has its own letter', async () => {
    const letter = poisonEvent();
    expect(await letters.record(letter)).toBe(true);
    expect(await letters.record({ ...letter, consumer: 'session-service-session' })).toBe(true);
    expect(await rowsOf('event_id = $1', [letter.eventId])).toHaveLength(2);
  });

  it('does not list a retried letter again when its message is recorded again', async () => {
    const letter = poisonEvent();
    await letters.record(letter);
    const [row] = (await letters.list(consumer)).filter((l) => l.event_id === letter.eventId);
    await letters.markRetried(row!.id);
    expect(await letters.record(letter)).toBe(false);
    expect((await letters.list(consumer)).filter((l) => l.event_id === letter.eventId)).toEqual([]);
    const [retried] = await t.db.query<{ retried_at: Date | null }>(
      'SELECT retried_at FROM dead_letters WHERE id = $1',
      [row!.id],
    );
    expect(retried?.retried_at).toBeInstanceOf(Date);
  });
});

describe('migration DeadLetterIdentity1732900000000', () => {
  it('keeps one letter of the duplicates recorded before it, the retried one when there is one', async () => {
    const url = new URL(testDatabaseAdminUrl());
    url.pathname = `/tl_test_dead_letters_${randomUUID().replaceAll('-', '')}`;
    await ensureDatabase(url.toString());
    const before = await Db.connect({
      url: url.toString(),
      poolSize: 1,
      migrations: [EventStore1732190400000],
    });
    let after: Db | undefined;
    try {
      await migrate(before);
      const insert = (eventId: string | null, retried: boolean) =>
        before.query(
          `INSERT INTO dead_letters (consumer, subject, payload, error, attempts, event_id, retried_at)
           VALUES ($1, 's', 'p', 'e', 5, $2, CASE WHEN $3 THEN now() END) RETURNING id`,
          [consumer, eventId, retried],
        );
      const [twice, retriedTwice] = [randomUUID(), randomUUID()];
      await insert(twice, false);
      await insert(twice, false);
      await insert(retriedTwice, false);
      const [retriedRow] = await insert(retriedTwice, true);
      await insert(null, false);
      await insert(null, false);
      await before.close();

      after = await Db.connect({
        url: url.toString(),
        poolSize: 1,
        migrations: [EventStore1732190400000, DeadLetterIdentity1732900000000],
      });
      expect(await migrate(after)).toEqual(['DeadLetterIdentity1732900000000']);
      const rows = await after.query<{ id: string; event_id: string | null }>(
        'SELECT id, event_id FROM dead_letters ORDER BY id',
      );
      expect(rows.map((r) => r.event_id)).toEqual([twice, retriedTwice, null, null]);
      expect(await after.query('SELECT id FROM dead_letters WHERE event_id = $1', [retriedTwice])).toEqual([
        { id: retriedRow?.['id'] },
      ]);
      expect(await new DeadLetters(after).list(consumer)).toHaveLength(3);
    } finally {
      await before.close().catch(() => undefined);
      await after?.close();
      await dropDatabase(url.toString());
    }
  });
});
