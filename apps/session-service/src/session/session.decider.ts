import {
  type EventUnion,
  type Json,
  type Metadata,
  type SessionEndReason,
  type SessionEvents,
} from '@threadline/contracts';
import { DomainError } from '@threadline/platform';

/**
 * Title of a session created without one. The seed managers leave the title to the caller (seed 001's
 * examples pass "New Chat"); Threadline picks the neutral "New session" so callers that omit it still
 * get a non-empty, human-readable title.
 */
export const DEFAULT_SESSION_TITLE = 'New session';

// ---------------------------------------------------------------------------------------------------
// Events

/** The Session aggregate's events, a discriminated union on `type` (the contracts' latest versions). */
export type SessionDomainEvent = EventUnion<typeof SessionEvents>;

// ---------------------------------------------------------------------------------------------------
// State

/** What the aggregate knows about a session that exists (created, not deleted). */
export interface SessionFacts {
  sessionId: string;
  userId: string | null;
  title: string;
  metadata: Metadata;
  createdFrom: string | null;
  /** ISO-8601 */
  startedAt: string;
  /** ISO-8601, null while active; for an expired session, when it expired */
  endedAt: string | null;
}

/**
 * State of one `session:<tenant>:<id>` stream. `version` is the stream version (the number of events
 * folded, = stream position of the last one; 0 for no stream), the value `If-Match` is compared with.
 */
export type SessionState =
  | { status: 'none'; version: number }
  | { status: 'active'; version: number; session: SessionFacts }
  | { status: 'ended'; version: number; session: SessionFacts }
  | { status: 'expired'; version: number; session: SessionFacts }
  | { status: 'deleted'; version: number; sessionId: string };

/** The state of a stream with no events. */
export const initialState = (): SessionState => ({ status: 'none', version: 0 });

// ---------------------------------------------------------------------------------------------------
// Commands (domain shapes; the NATS payloads are mapped onto these by the controller)

/**
 * `actingUserId`, when set, scopes the caller to one user: a session of another user (or of none)
 * answers SESSION.NOT_FOUND, never revealing that it exists (ARCHITECTURE rule 9).
 */
export type SessionCommand =
  | {
      type: 'CreateSession';
      data: {
        sessionId: string;
        userId: string | null;
        title?: string | undefined;
        metadata?: Metadata | undefined;
        createdFrom?: string | null | undefined;
      };
    }
  | {
      type: 'UpdateSession';
      data: {
        sessionId: string;
        actingUserId?: string | undefined;
        title?: string | undefined;
        /** RFC 7396 merge patch of the top-level keys: a `null` value removes the key. */
        metadata?: Metadata | undefined;
        /** From `If-Match`: the stream version the client last saw. */
        expectedVersion?: number | undefined;
      };
    }
  | {
      type: 'EndSession';
      data: { sessionId: string; actingUserId?: string | undefined; reason: SessionEndReason };
    }
  | { type: 'DeleteSession'; data: { sessionId: string; actingUserId?: string | undefined } }
  | {
      type: 'ExpireSession';
      data: {
        sessionId: string;
        /** ISO-8601: the session's last activity (its own writes and its turns), read under its lock. */
        lastActivityAt: string;
        /** ISO-8601: expire only if `lastActivityAt` is at or before it (the cleanup pass's now - timeout). */
        idleCutoff: string;
        /** The idle timeout in force, ms (`SESSION_TIMEOUT_HOURS`), recorded in the event. */
        idleTimeoutMs: number;
      };
    };

// ---------------------------------------------------------------------------------------------------
// Errors

/** SESSION.NOT_FOUND (HTTP 404): no such session, deleted, or another user's. */
export class SessionNotFoundError extends DomainError {
  constructor(sessionId: string) {
    super('SESSION.NOT_FOUND', `Session ${sessionId} not found`, { sessionId });
  }
}

/** SESSION.ALREADY_EXISTS (HTTP 409): create with an id whose stream exists, even if deleted. */
export class SessionAlreadyExistsError extends DomainError {
  constructor(sessionId: string) {
    super('SESSION.ALREADY_EXISTS', `Session ${sessionId} already exists`, { sessionId });
  }
}

/** SESSION.ALREADY_ENDED (HTTP 409): an ended session cannot be updated. */
export class SessionAlreadyEndedError extends DomainError {
  constructor(sessionId: string) {
    super('SESSION.ALREADY_ENDED', `Session ${sessionId} has ended`, { sessionId });
  }
}

/**
 * SESSION.LIMIT_REACHED (HTTP 409): the user already has `limit` active sessions and the policy is
 * `reject` (`MAX_SESSIONS_POLICY`).
 */
export class SessionLimitReachedError extends DomainError {
  constructor(userId: string, limit: number) {
    super('SESSION.LIMIT_REACHED', `User ${userId} already has ${limit} active sessions`, { userId, limit });
  }
}

/** SESSION.VERSION_MISMATCH (HTTP 412): the client's `If-Match` version is not the current one. */
export class SessionVersionMismatchError extends DomainError {
  constructor(sessionId: string, expected: number, actual: number) {
    super('SESSION.VERSION_MISMATCH', `Session ${sessionId} is at version ${actual}, not ${expected}`, {
      sessionId,
      expected,
      actual,
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// Metadata merge (RFC 7396, top level only: nested objects are replaced as a whole)

function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return false;
  if (typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i]));
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

/** `target` with `patch` merged in (RFC 7396, top level): `null` removes the key. */
export function mergeMetadata(target: Metadata, patch: Metadata): Metadata {
  const merged: Metadata = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** The part of `patch` that changes `current`: removals of present keys, and new or different values. */
export function effectivePatch(current: Metadata, patch: Metadata): Metadata {
  const effective: Metadata = {};
  for (const [key, value] of Object.entries(patch)) {
    const present = Object.hasOwn(current, key);
    if (value === null ? present : !present || !jsonEqual(current[key], value)) effective[key] = value;
  }
  return effective;
}

// ---------------------------------------------------------------------------------------------------
// decide / evolve

type Existing = Extract<SessionState, { status: 'active' | 'ended' | 'expired' }>;

function existing(state: SessionState, sessionId: string, actingUserId: string | undefined): Existing {
  switch (state.status) {
    case 'none':
    case 'deleted':
      throw new SessionNotFoundError(sessionId);
    case 'active':
    case 'ended':
    case 'expired':
      if (actingUserId !== undefined && state.session.userId !== actingUserId)
        throw new SessionNotFoundError(sessionId);
      return state;
    default: {
      const unreachable: never = state;
      return unreachable;
    }
  }
}

/**
 * Decides the events a command yields against the current state; `now` stamps them.
 * - CreateSession: `SessionCreated` (title defaults to {@link DEFAULT_SESSION_TITLE}; metadata is
 *   applied as a merge patch to `{}`, so `null` values are dropped). Throws SESSION.ALREADY_EXISTS
 *   when the stream has any event, deleted included.
 * - UpdateSession: `SessionTitleChanged` when the title differs, `SessionMetadataUpdated` with the
 *   effective part of the patch when it changes anything; nothing for a no-op. Throws
 *   SESSION.NOT_FOUND, then SESSION.VERSION_MISMATCH (`expectedVersion` given and not current), then
 *   SESSION.ALREADY_ENDED.
 * - EndSession: `SessionEnded`; nothing when already ended or expired (idempotent). Throws
 *   SESSION.NOT_FOUND.
 * - DeleteSession: `SessionDeleted`. Throws SESSION.NOT_FOUND (also when already deleted).
 * - ExpireSession: `SessionExpired` with `idleMs = now - lastActivityAt` (ms, at least 0) when the
 *   session is active and `lastActivityAt <= idleCutoff` (issue 4, "Expiry and retention"); nothing when
 *   it had activity after the cutoff (after the cleanup-worker listed it) or is already ended or
 *   expired. Throws SESSION.NOT_FOUND.
 */
export function decide(command: SessionCommand, state: SessionState, now: Date): SessionDomainEvent[] {
  const at = now.toISOString();
  switch (command.type) {
    case 'CreateSession': {
      const c = command.data;
      if (state.status !== 'none') throw new SessionAlreadyExistsError(c.sessionId);
      return [
        {
          type: 'SessionCreated.v1',
          data: {
            sessionId: c.sessionId,
            userId: c.userId,
            title: c.title ?? DEFAULT_SESSION_TITLE,
            metadata: mergeMetadata({}, c.metadata ?? {}),
            createdFrom: c.createdFrom ?? null,
            startedAt: at,
          },
        },
      ];
    }
    case 'UpdateSession': {
      const c = command.data;
      const s = existing(state, c.sessionId, c.actingUserId);
      if (c.expectedVersion !== undefined && c.expectedVersion !== s.version) {
        throw new SessionVersionMismatchError(c.sessionId, c.expectedVersion, s.version);
      }
      if (s.status !== 'active') throw new SessionAlreadyEndedError(c.sessionId);
      const events: SessionDomainEvent[] = [];
      if (c.title !== undefined && c.title !== s.session.title) {
        events.push({
          type: 'SessionTitleChanged.v1',
          data: { sessionId: c.sessionId, title: c.title, changedAt: at },
        });
      }
      const patch = effectivePatch(s.session.metadata, c.metadata ?? {});
      if (Object.keys(patch).length > 0) {
        events.push({
          type: 'SessionMetadataUpdated.v1',
          data: { sessionId: c.sessionId, patch, updatedAt: at },
        });
      }
      return events;
    }
    case 'EndSession': {
      const c = command.data;
      const s = existing(state, c.sessionId, c.actingUserId);
      if (s.status !== 'active') return [];
      return [{ type: 'SessionEnded.v1', data: { sessionId: c.sessionId, reason: c.reason, endedAt: at } }];
    }
    case 'DeleteSession': {
      const c = command.data;
      existing(state, c.sessionId, c.actingUserId);
      return [{ type: 'SessionDeleted.v1', data: { sessionId: c.sessionId, deletedAt: at } }];
    }
    case 'ExpireSession': {
      const c = command.data;
      const s = existing(state, c.sessionId, undefined);
      if (s.status !== 'active') return [];
      if (Date.parse(c.lastActivityAt) > Date.parse(c.idleCutoff)) return [];
      const idleMs = Math.max(0, now.getTime() - Date.parse(c.lastActivityAt));
      return [
        {
          type: 'SessionExpired.v1',
          data: {
            sessionId: c.sessionId,
            lastActivityAt: new Date(c.lastActivityAt).toISOString(),
            idleMs,
            timeoutMs: c.idleTimeoutMs,
            expiredAt: at,
          },
        },
      ];
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/**
 * Folds one event into the state; every event moves `version` by one. An event that does not fit the
 * state (which `decide` never produces) only moves the version: the stream is the record.
 */
export function evolve(state: SessionState, event: SessionDomainEvent): SessionState {
  const version = state.version + 1;
  switch (event.type) {
    case 'SessionCreated.v1': {
      const e = event.data;
      return {
        status: 'active',
        version,
        session: {
          sessionId: e.sessionId,
          userId: e.userId,
          title: e.title,
          metadata: e.metadata,
          createdFrom: e.createdFrom,
          startedAt: e.startedAt,
          endedAt: null,
        },
      };
    }
    case 'SessionTitleChanged.v1':
      if (state.status === 'none' || state.status === 'deleted') return { ...state, version };
      return { ...state, version, session: { ...state.session, title: event.data.title } };
    case 'SessionMetadataUpdated.v1':
      if (state.status === 'none' || state.status === 'deleted') return { ...state, version };
      return {
        ...state,
        version,
        session: { ...state.session, metadata: mergeMetadata(state.session.metadata, event.data.patch) },
      };
    case 'SessionEnded.v1':
      if (state.status !== 'active') return { ...state, version };
      return { status: 'ended', version, session: { ...state.session, endedAt: event.data.endedAt } };
    case 'SessionExpired.v1':
      if (state.status !== 'active') return { ...state, version };
      return { status: 'expired', version, session: { ...state.session, endedAt: event.data.expiredAt } };
    case 'SessionDeleted.v1':
      return { status: 'deleted', version, sessionId: event.data.sessionId };
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}
