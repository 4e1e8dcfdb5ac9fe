import {
  type EventEnvelope,
  SESSION_CATEGORY,
  SessionCreatedV1,
  SessionDeletedV1,
  SessionEndedV1,
  type SessionEvent,
  SessionMetadataUpdatedV1,
  SessionTitleChangedV1,
  sessionStreamId,
} from '@threadline/contracts';
import type { EventStore, Sql } from '@threadline/event-store';
import { z } from 'zod';
import { SessionCountsRow } from './session-counts.projection';

// Test support for the session_counts specs (no test framework here; used by the *.int-spec.ts files).

const at = (minute: number) => new Date(Date.UTC(2025, 0, 1, 12, minute)).toISOString();

const created = (sessionId: string, userId: string | null): SessionEvent => ({
  type: SessionCreatedV1.type,
  data: { sessionId, userId, title: `t-${sessionId}`, metadata: {}, createdFrom: null, startedAt: at(0) },
});
const titled = (sessionId: string): SessionEvent => ({
  type: SessionTitleChangedV1.type,
  data: { sessionId, title: 'renamed', changedAt: at(1) },
});
const updated = (sessionId: string): SessionEvent => ({
  type: SessionMetadataUpdatedV1.type,
  data: { sessionId, patch: { k: 'v' }, updatedAt: at(1) },
});
const ended = (sessionId: string, reason: 'user' | 'replaced' | 'admin'): SessionEvent => ({
  type: SessionEndedV1.type,
  data: { sessionId, reason, endedAt: at(2) },
});
const deleted = (sessionId: string): SessionEvent => ({
  type: SessionDeletedV1.type,
  data: { sessionId, deletedAt: at(3) },
});

/**
 * Six sessions of one tenant: alice's a1 (created, renamed, ended), a2 (created, metadata, deleted),
 * a3 (active); bob's b1 (created, ended, deleted), b2 (active); n1 without user (created, ended).
 */
const scenario: { sessionId: string; userId: string | null; events: SessionEvent[] }[] = [
  { sessionId: 'a1', userId: 'alice', events: [created('a1', 'alice'), titled('a1'), ended('a1', 'user')] },
  { sessionId: 'a2', userId: 'alice', events: [created('a2', 'alice'), updated('a2'), deleted('a2')] },
  { sessionId: 'a3', userId: 'alice', events: [created('a3', 'alice')] },
  { sessionId: 'b1', userId: 'bob', events: [created('b1', 'bob'), ended('b1', 'admin'), deleted('b1')] },
  { sessionId: 'b2', userId: 'bob', events: [created('b2', 'bob')] },
  { sessionId: 'n1', userId: null, events: [created('n1', null), ended('n1', 'replaced')] },
];

/**
 * Appends the scenario for `tenantId` with `EventStore.append`, one event per transaction, round-robin
 * over the sessions (so streams interleave in the store). Returns the stored envelopes in append order.
 */
export async function appendSessionScenario(store: EventStore, tenantId: string): Promise<EventEnvelope[]> {
  const stored: EventEnvelope[] = [];
  const longest = Math.max(...scenario.map((s) => s.events.length));
  for (let i = 0; i < longest; i += 1) {
    for (const s of scenario) {
      const event = s.events[i];
      if (!event) continue;
      const result = await store.append(
        sessionStreamId(tenantId, s.sessionId),
        SESSION_CATEGORY,
        i,
        [event],
        {
          metadata: { tenantId, userId: s.userId },
        },
      );
      stored.push(...result.events);
    }
  }
  return stored;
}

export interface CountsSnapshot {
  tenant: SessionCountsRow | undefined;
  users: (SessionCountsRow & { user_id: string })[];
  sessions: { session_id: string; user_id: string | null; status: string }[];
}

/** What the scenario must yield for its tenant. */
export const expectedScenarioCounts: CountsSnapshot = {
  tenant: { active: 2, ended: 2, expired: 0, deleted: 2, total: 6 },
  users: [
    { user_id: 'alice', active: 1, ended: 1, expired: 0, deleted: 1, total: 3 },
    { user_id: 'bob', active: 1, ended: 0, expired: 0, deleted: 1, total: 2 },
  ],
  sessions: [
    { session_id: 'a1', user_id: 'alice', status: 'ended' },
    { session_id: 'a2', user_id: 'alice', status: 'deleted' },
    { session_id: 'a3', user_id: 'alice', status: 'active' },
    { session_id: 'b1', user_id: 'bob', status: 'deleted' },
    { session_id: 'b2', user_id: 'bob', status: 'active' },
    { session_id: 'n1', user_id: null, status: 'ended' },
  ],
};

const UserRow = SessionCountsRow.extend({ user_id: z.string() });
const SessionStateRow = z.object({
  session_id: z.string(),
  user_id: z.string().nullable(),
  status: z.string(),
});

/** The session_counts rows of one tenant, parsed and ordered. */
export async function readCounts(sql: Sql, tenantId: string): Promise<CountsSnapshot> {
  const [tenant] = await sql.query(
    'SELECT active, ended, expired, deleted, total FROM session_counts_by_tenant WHERE tenant_id = $1',
    [tenantId],
  );
  const users = await sql.query(
    `SELECT user_id, active, ended, expired, deleted, total FROM session_counts_by_user
     WHERE tenant_id = $1 ORDER BY user_id`,
    [tenantId],
  );
  const sessions = await sql.query(
    'SELECT session_id, user_id, status FROM session_counts_sessions WHERE tenant_id = $1 ORDER BY session_id',
    [tenantId],
  );
  return {
    tenant: tenant ? SessionCountsRow.parse(tenant) : undefined,
    users: users.map((r) => UserRow.parse(r)),
    sessions: sessions.map((r) => SessionStateRow.parse(r)),
  };
}

/** Every row of the projection's tables and of its stream positions, for whole-model comparisons. */
export async function dumpAll(sql: Sql, projection: string): Promise<unknown> {
  return {
    tenants: await sql.query('SELECT * FROM session_counts_by_tenant ORDER BY tenant_id'),
    users: await sql.query('SELECT * FROM session_counts_by_user ORDER BY tenant_id, user_id'),
    sessions: await sql.query('SELECT * FROM session_counts_sessions ORDER BY tenant_id, session_id'),
    positions: await sql.query(
      'SELECT stream_id, position FROM projection_streams WHERE projection = $1 ORDER BY stream_id',
      [projection],
    ),
  };
}
