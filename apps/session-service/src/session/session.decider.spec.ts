import {
  SessionCreatedV1,
  SessionDeletedV1,
  SessionEndedV1,
  SessionExpiredV1,
  SessionMetadataUpdatedV1,
  SessionTitleChangedV1,
} from '@threadline/contracts';
import { DomainError } from '@threadline/platform';
import { DeciderSpecification } from '@threadline/testing';
import {
  DEFAULT_SESSION_TITLE,
  decide,
  evolve,
  initialState,
  type SessionCommand,
  type SessionDomainEvent,
  type SessionState,
} from './session.decider';

const now = new Date('2025-01-02T03:04:05.678Z');
const at = now.toISOString();
const earlier = '2025-01-01T00:00:00.000Z';

const spec = DeciderSpecification<SessionState, SessionCommand, SessionDomainEvent>({
  decide: (command, state) => decide(command, state, now),
  evolve,
  initialState,
});

const created = (
  overrides: Partial<Extract<SessionDomainEvent, { type: 'SessionCreated.v1' }>['data']> = {},
) =>
  ({
    type: 'SessionCreated.v1',
    data: {
      sessionId: 's1',
      userId: 'u1',
      title: 'Hello',
      metadata: { a: 1, b: 'x' },
      createdFrom: 'web',
      startedAt: earlier,
      ...overrides,
    },
  }) satisfies SessionDomainEvent;
const ended: SessionDomainEvent = {
  type: 'SessionEnded.v1',
  data: { sessionId: 's1', reason: 'user', endedAt: earlier },
};
const deleted: SessionDomainEvent = {
  type: 'SessionDeleted.v1',
  data: { sessionId: 's1', deletedAt: earlier },
};

const expectCode = (code: string) => (error: unknown) => {
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
};

describe('Session decider', () => {
  it('uses the contracts’ type names', () => {
    expect(
      [
        SessionCreatedV1,
        SessionTitleChangedV1,
        SessionMetadataUpdatedV1,
        SessionEndedV1,
        SessionDeletedV1,
        SessionExpiredV1,
      ].map((d) => d.type),
    ).toEqual([
      'SessionCreated.v1',
      'SessionTitleChanged.v1',
      'SessionMetadataUpdated.v1',
      'SessionEnded.v1',
      'SessionDeleted.v1',
      'SessionExpired.v1',
    ]);
  });

  describe('CreateSession', () => {
    it('creates a session with the given fields', () =>
      spec
        .given([])
        .when({
          type: 'CreateSession',
          data: { sessionId: 's1', userId: 'u1', title: 'Hello', metadata: { a: 1 }, createdFrom: 'web' },
        })
        .then([
          {
            type: 'SessionCreated.v1',
            data: {
              sessionId: 's1',
              userId: 'u1',
              title: 'Hello',
              metadata: { a: 1 },
              createdFrom: 'web',
              startedAt: at,
            },
          },
        ]));

    it('defaults the title, metadata and origin; drops null metadata values', () =>
      spec
        .given([])
        .when({
          type: 'CreateSession',
          data: { sessionId: 's1', userId: null, metadata: { keep: 'y', gone: null } },
        })
        .then([
          {
            type: 'SessionCreated.v1',
            data: {
              sessionId: 's1',
              userId: null,
              title: DEFAULT_SESSION_TITLE,
              metadata: { keep: 'y' },
              createdFrom: null,
              startedAt: at,
            },
          },
        ]));

    it('rejects an existing session id', () =>
      spec
        .given([created()])
        .when({ type: 'CreateSession', data: { sessionId: 's1', userId: 'u1' } })
        .thenThrows(expectCode('SESSION.ALREADY_EXISTS')));

    it('rejects the id of a deleted session', () =>
      spec
        .given([created(), deleted])
        .when({ type: 'CreateSession', data: { sessionId: 's1', userId: 'u1' } })
        .thenThrows(expectCode('SESSION.ALREADY_EXISTS')));
  });

  describe('UpdateSession', () => {
    it('changes the title', () =>
      spec
        .given([created()])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', title: 'New' } })
        .then([{ type: 'SessionTitleChanged.v1', data: { sessionId: 's1', title: 'New', changedAt: at } }]));

    it('merges metadata: records only the effective patch (set, change, remove)', () =>
      spec
        .given([created()])
        .when({
          type: 'UpdateSession',
          data: { sessionId: 's1', metadata: { a: 1, b: null, c: { d: [1, 2] }, missing: null } },
        })
        .then([
          {
            type: 'SessionMetadataUpdated.v1',
            data: { sessionId: 's1', patch: { b: null, c: { d: [1, 2] } }, updatedAt: at },
          },
        ]));

    it('changes title and metadata together, title first', () =>
      spec
        .given([created()])
        .when({
          type: 'UpdateSession',
          data: { sessionId: 's1', title: 'New', metadata: { a: 2 }, expectedVersion: 1 },
        })
        .then([
          { type: 'SessionTitleChanged.v1', data: { sessionId: 's1', title: 'New', changedAt: at } },
          { type: 'SessionMetadataUpdated.v1', data: { sessionId: 's1', patch: { a: 2 }, updatedAt: at } },
        ]));

    it('appends nothing for a no-op (same title, patch that changes nothing)', () =>
      spec
        .given([created()])
        .when({
          type: 'UpdateSession',
          data: { sessionId: 's1', title: 'Hello', metadata: { a: 1, zz: null } },
        })
        .then([]));

    it('sees earlier metadata updates (evolve merges the patch)', () =>
      spec
        .given([
          created(),
          {
            type: 'SessionMetadataUpdated.v1',
            data: { sessionId: 's1', patch: { a: null, n: { x: 1 } }, updatedAt: earlier },
          },
        ])
        .when({
          type: 'UpdateSession',
          data: { sessionId: 's1', metadata: { a: null, n: { x: 1 }, b: 'x' } },
        })
        .then([]));

    it('rejects a stale expected version', () =>
      spec
        .given([
          created(),
          { type: 'SessionTitleChanged.v1', data: { sessionId: 's1', title: 'T', changedAt: earlier } },
        ])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', title: 'X', expectedVersion: 1 } })
        .thenThrows((error) => {
          expectCode('SESSION.VERSION_MISMATCH')(error);
          expect((error as DomainError).details).toEqual({ sessionId: 's1', expected: 1, actual: 2 });
        }));

    it('rejects an update of an ended session', () =>
      spec
        .given([created(), ended])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', title: 'X' } })
        .thenThrows(expectCode('SESSION.ALREADY_ENDED')));

    it('rejects an unknown session', () =>
      spec
        .given([])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', title: 'X' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND')));

    it('rejects a deleted session', () =>
      spec
        .given([created(), deleted])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', title: 'X' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND')));

    it('answers NOT_FOUND to a caller scoped to another user', () =>
      spec
        .given([created()])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', actingUserId: 'u2', title: 'X' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND')));

    it('answers NOT_FOUND to a scoped caller for a session without user', () =>
      spec
        .given([created({ userId: null })])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', actingUserId: 'u1', title: 'X' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND')));

    it('accepts the owner as scope', () =>
      spec
        .given([created()])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', actingUserId: 'u1', title: 'X' } })
        .then([{ type: 'SessionTitleChanged.v1', data: { sessionId: 's1', title: 'X', changedAt: at } }]));
  });

  describe('EndSession', () => {
    it('ends an active session', () =>
      spec
        .given([created()])
        .when({ type: 'EndSession', data: { sessionId: 's1', reason: 'user' } })
        .then([{ type: 'SessionEnded.v1', data: { sessionId: 's1', reason: 'user', endedAt: at } }]));

    it('is idempotent: ending an ended session yields nothing', () =>
      spec
        .given([created(), ended])
        .when({ type: 'EndSession', data: { sessionId: 's1', reason: 'admin' } })
        .then([]));

    it('rejects an unknown or deleted session', () => {
      spec
        .given([])
        .when({ type: 'EndSession', data: { sessionId: 's1', reason: 'user' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created(), deleted])
        .when({ type: 'EndSession', data: { sessionId: 's1', reason: 'user' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
    });

    it('answers NOT_FOUND to a caller scoped to another user', () =>
      spec
        .given([created()])
        .when({ type: 'EndSession', data: { sessionId: 's1', actingUserId: 'u2', reason: 'user' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND')));
  });

  describe('DeleteSession', () => {
    it('deletes an active session', () =>
      spec
        .given([created()])
        .when({ type: 'DeleteSession', data: { sessionId: 's1' } })
        .then([{ type: 'SessionDeleted.v1', data: { sessionId: 's1', deletedAt: at } }]));

    it('deletes an ended session', () =>
      spec
        .given([created(), ended])
        .when({ type: 'DeleteSession', data: { sessionId: 's1' } })
        .then([{ type: 'SessionDeleted.v1', data: { sessionId: 's1', deletedAt: at } }]));

    it('rejects an unknown or already deleted session', () => {
      spec
        .given([])
        .when({ type: 'DeleteSession', data: { sessionId: 's1' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created(), deleted])
        .when({ type: 'DeleteSession', data: { sessionId: 's1' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
    });

    it('answers NOT_FOUND to a caller scoped to another user', () =>
      spec
        .given([created()])
        .when({ type: 'DeleteSession', data: { sessionId: 's1', actingUserId: 'u2' } })
        .thenThrows(expectCode('SESSION.NOT_FOUND')));
  });

  describe('ExpireSession', () => {
    const hour = 3_600_000;
    // `now` is 2025-01-02T03:04:05.678Z; the session was last active `idle` ms before it.
    const expire = (idleMs: number, idleTimeoutMs = 24 * hour): SessionCommand => ({
      type: 'ExpireSession',
      data: {
        sessionId: 's1',
        lastActivityAt: new Date(now.getTime() - idleMs).toISOString(),
        idleCutoff: new Date(now.getTime() - idleTimeoutMs).toISOString(),
        idleTimeoutMs,
      },
    });
    const expiredEvent = (idleMs: number): SessionDomainEvent => ({
      type: 'SessionExpired.v1',
      data: {
        sessionId: 's1',
        lastActivityAt: new Date(now.getTime() - idleMs).toISOString(),
        idleMs,
        timeoutMs: 24 * hour,
        expiredAt: at,
      },
    });

    it('expires an active session idle longer than the timeout, with the idle time', () =>
      spec
        .given([created()])
        .when(expire(25 * hour))
        .then([expiredEvent(25 * hour)]));

    it('decides on the cutoff it is given, not on its own clock (the cleanup pass’s now)', () =>
      spec
        .given([created()])
        .when({
          type: 'ExpireSession',
          data: { sessionId: 's1', lastActivityAt: at, idleCutoff: at, idleTimeoutMs: 24 * hour },
        })
        .then([
          {
            type: 'SessionExpired.v1',
            data: { sessionId: 's1', lastActivityAt: at, idleMs: 0, timeoutMs: 24 * hour, expiredAt: at },
          },
        ]));

    it('expires at exactly the timeout', () =>
      spec
        .given([created()])
        .when(expire(24 * hour))
        .then([expiredEvent(24 * hour)]));

    it('does nothing for a session active within the timeout (activity since it was listed)', () =>
      spec
        .given([created()])
        .when(expire(24 * hour - 1))
        .then([]));

    it('does nothing for an ended or already expired session', () => {
      spec
        .given([created(), ended])
        .when(expire(48 * hour))
        .then([]);
      spec
        .given([created(), expiredEvent(25 * hour)])
        .when(expire(48 * hour))
        .then([]);
    });

    it('rejects an unknown or deleted session', () => {
      spec
        .given([])
        .when(expire(48 * hour))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created(), deleted])
        .when(expire(48 * hour))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
    });

    it('an expired session rejects updates, ends idempotently, and can be deleted', () => {
      spec
        .given([created(), expiredEvent(25 * hour)])
        .when({ type: 'UpdateSession', data: { sessionId: 's1', title: 'X' } })
        .thenThrows(expectCode('SESSION.ALREADY_ENDED'));
      spec
        .given([created(), expiredEvent(25 * hour)])
        .when({ type: 'EndSession', data: { sessionId: 's1', reason: 'user' } })
        .then([]);
      spec
        .given([created(), expiredEvent(25 * hour)])
        .when({ type: 'DeleteSession', data: { sessionId: 's1' } })
        .then([{ type: 'SessionDeleted.v1', data: { sessionId: 's1', deletedAt: at } }]);
    });

    it('evolves to expired with the expiry time as end', () => {
      expect([created(), expiredEvent(25 * hour)].reduce(evolve, initialState())).toMatchObject({
        status: 'expired',
        version: 2,
        session: { sessionId: 's1', endedAt: at },
      });
    });
  });

  describe('evolve', () => {
    it('folds every event and counts the version', () => {
      const events: SessionDomainEvent[] = [
        created(),
        { type: 'SessionTitleChanged.v1', data: { sessionId: 's1', title: 'T2', changedAt: earlier } },
        {
          type: 'SessionMetadataUpdated.v1',
          data: { sessionId: 's1', patch: { a: null, c: true }, updatedAt: earlier },
        },
        ended,
      ];
      expect(events.reduce(evolve, initialState())).toEqual({
        status: 'ended',
        version: 4,
        session: {
          sessionId: 's1',
          userId: 'u1',
          title: 'T2',
          metadata: { b: 'x', c: true },
          createdFrom: 'web',
          startedAt: earlier,
          endedAt: earlier,
        },
      });
      expect([...events, deleted].reduce(evolve, initialState())).toEqual({
        status: 'deleted',
        version: 5,
        sessionId: 's1',
      });
    });
  });
});
