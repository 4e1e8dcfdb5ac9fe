import type { EventEnvelope } from '@threadline/contracts';
import { type CommitPosition, type EventStore, START } from '@threadline/event-store';
import { eventually } from './servers';

/**
 * Every event after `from` in commit order, once the commit-safe tail has caught up with every event
 * committed so far. The tail's horizon, `pg_snapshot_xmin`, is server-wide: a transaction open in any
 * database of the server (another test file, a migration) holds every tail back until it ends, so tests
 * wait for the tail instead of expecting it to be current the moment a commit returns.
 * Throws after `timeoutMs` (default 10000 ms) when the tail does not catch up.
 */
export async function readAllSettled(
  store: EventStore,
  from: CommitPosition = START,
  timeoutMs = 10_000,
): Promise<EventEnvelope[]> {
  return eventually(
    async () => {
      const [row] = await store.db.query<{ n: string }>(
        'SELECT count(*) AS n FROM events WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)',
        [from.transactionId, from.globalPosition],
      );
      const out: EventEnvelope[] = [];
      let after = from;
      for (;;) {
        const page = await store.readAll(after, 1000);
        if (page.length === 0) break;
        out.push(...page);
        const last = page[page.length - 1]!;
        after = { transactionId: last.transactionId, globalPosition: last.globalPosition };
      }
      return out.length === Number(row?.n) ? out : undefined;
    },
    timeoutMs,
    'the commit-safe tail to reach every committed event',
  );
}

/** The commit position of `event` (a checkpoint just after it). */
export const commitPositionOf = (event: {
  transactionId: string;
  globalPosition: number;
}): CommitPosition => ({
  transactionId: event.transactionId,
  globalPosition: event.globalPosition,
});
