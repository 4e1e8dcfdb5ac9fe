import {
  type EventUnion,
  type Json,
  jsonBytes,
  MAX_STATE_BYTES,
  MAX_TOOL_CALLS,
  type SessionEvent,
  type SessionStateEvents,
  type SessionStateView,
  type StatePatch,
  type ToolCallStatus,
  type ToolCallView,
} from '@threadline/contracts';
import { DomainError, ValidationError } from '@threadline/platform';

// ---------------------------------------------------------------------------------------------------
// Events

/** The workflow-state events, a discriminated union on `type` (the contracts' latest versions). */
export type StateDomainEvent = EventUnion<typeof SessionStateEvents>;

/**
 * The events of the session's own stream (`session:<tenant>:<id>`) that decide whether it takes state
 * writes: it exists once created, and no longer once deleted (ended sessions keep their state
 * writable). Other lifecycle events are not folded.
 */
export type SessionLifecycleEvent = Extract<
  SessionEvent,
  { type: 'SessionCreated.v1' | 'SessionDeleted.v1' }
>;

/** The lifecycle event of a session event, or null for one that does not matter here. */
export function lifecycleEventOf(event: SessionEvent): SessionLifecycleEvent | null {
  return event.type === 'SessionCreated.v1' || event.type === 'SessionDeleted.v1' ? event : null;
}

/** Everything the decider folds: the session's lifecycle, then its state stream. */
export type StateDeciderEvent = SessionLifecycleEvent | StateDomainEvent;

// ---------------------------------------------------------------------------------------------------
// State

/** The state document: the five fields a merge patch applies to (absent = never set or removed). */
export interface StateDocument {
  constraints?: Json;
  strategy?: Json;
  response_plan?: Json;
  summary?: string;
  status?: string;
}

/** One tool call at its latest status; times ISO-8601. */
export interface ToolCall {
  name: string;
  description: string | null;
  status: ToolCallStatus;
  result: Json | null;
  error: string | null;
  plannedAt: string;
  updatedAt: string;
}

/**
 * State of one session's workflow: its session's lifecycle (`none` before created) and owner, then
 * the folded state stream. `version` counts state events only (0 before the first): the expected
 * version of the next append, and the ETag. `toolCalls` are in planning order.
 */
export interface WorkflowState {
  session: { status: 'none' | 'exists' | 'deleted'; userId: string | null };
  version: number;
  document: StateDocument;
  toolCalls: readonly ToolCall[];
  /** ISO-8601 time of the last state event, null at version 0. */
  updatedAt: string | null;
}

/** A session that was never created, with no state. */
export const initialState = (): WorkflowState => ({
  session: { status: 'none', userId: null },
  version: 0,
  document: {},
  toolCalls: [],
  updatedAt: null,
});

// ---------------------------------------------------------------------------------------------------
// Commands

/**
 * `actingUserId`, when set, scopes the caller to one user: a session of another user (or of none) is
 * SESSION.NOT_FOUND (ARCHITECTURE rule 9). `expectedVersion` comes from `If-Match`.
 */
export type StateCommand =
  | {
      type: 'UpdateSessionState';
      data: {
        sessionId: string;
        actingUserId?: string | undefined;
        patch: StatePatch;
        expectedVersion?: number | undefined;
      };
    }
  | {
      type: 'SetToolCallStatus';
      data: {
        sessionId: string;
        actingUserId?: string | undefined;
        name: string;
        status: ToolCallStatus;
        result?: Json | undefined;
        error?: string | undefined;
        description?: string | undefined;
        expectedVersion?: number | undefined;
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

/** SESSION.VERSION_MISMATCH (HTTP 412): `If-Match` is not the state's current version. */
export class StateVersionMismatchError extends DomainError {
  constructor(sessionId: string, expected: number, actual: number) {
    super(
      'SESSION.VERSION_MISMATCH',
      `State of session ${sessionId} is at version ${actual}, not ${expected}`,
      {
        sessionId,
        expected,
        actual,
      },
    );
  }
}

// ---------------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7396)

const isObject = (v: Json | undefined): v is { [key: string]: Json } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * RFC 7396 section 2 `MergePatch(target, patch)`: a non-object patch replaces the target; an object
 * patch is merged member by member into the target (a non-object target counts as `{}`), `null`
 * members removing keys, other members merged recursively. Returns a new value; inputs are not changed.
 */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: { [key: string]: Json } = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/** `document` with the merge patch applied (the patch's keys are the document's five fields). */
export function applyStatePatch(document: StateDocument, patch: StatePatch): StateDocument {
  const merged = mergePatch(document as { [key: string]: Json }, stripUndefined(patch));
  return merged as StateDocument; // an object patch over an object gives an object of the same keys
}

function stripUndefined(patch: StatePatch): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(patch)) if (value !== undefined) out[key] = value;
  return out;
}

/** Structural equality of JSON values (object key order ignored). */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
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

// ---------------------------------------------------------------------------------------------------
// decide / evolve

function existing(state: WorkflowState, sessionId: string, actingUserId: string | undefined): void {
  switch (state.session.status) {
    case 'none':
    case 'deleted':
      throw new SessionNotFoundError(sessionId);
    case 'exists':
      if (actingUserId !== undefined && state.session.userId !== actingUserId)
        throw new SessionNotFoundError(sessionId);
      return;
    default: {
      const unreachable: never = state.session.status;
      return unreachable;
    }
  }
}

function checkVersion(state: WorkflowState, sessionId: string, expected: number | undefined): void {
  if (expected !== undefined && expected !== state.version)
    throw new StateVersionMismatchError(sessionId, expected, state.version);
}

/**
 * Decides the events a state command yields; `now` stamps them. Checks, in order: SESSION.NOT_FOUND
 * (no session, deleted, or not the scoped user's), SESSION.VERSION_MISMATCH (`expectedVersion` given
 * and not the state's version), then the command's own rules:
 * - UpdateSessionState: `SessionStateUpdated` with the patch as given, nothing when applying it
 *   changes nothing (RFC 7396 merge, compared structurally). REQUEST.INVALID when the merged document
 *   is over {@link MAX_STATE_BYTES} bytes as JSON.
 * - SetToolCallStatus: for a new name `ToolCallPlanned` (REQUEST.INVALID past {@link MAX_TOOL_CALLS}
 *   tool calls), for a known one `ToolCallPlanned` only when a different description is given; then
 *   `ToolCallStatusChanged` when status, result or error (absent = null) differ from the call's, or
 *   the call is new and the status is not `pending`. REQUEST.INVALID for an `error` without status
 *   `failed`.
 */
export function decide(command: StateCommand, state: WorkflowState, now: Date): StateDomainEvent[] {
  const at = now.toISOString();
  switch (command.type) {
    case 'UpdateSessionState': {
      const c = command.data;
      existing(state, c.sessionId, c.actingUserId);
      checkVersion(state, c.sessionId, c.expectedVersion);
      const merged = applyStatePatch(state.document, c.patch);
      if (jsonEqual(merged as Json, state.document as Json)) return [];
      if (jsonBytes(merged) > MAX_STATE_BYTES) {
        throw new ValidationError('The state would be too large', [
          { path: 'patch', message: `the merged state must be at most ${MAX_STATE_BYTES} bytes as JSON` },
        ]);
      }
      return [
        { type: 'SessionStateUpdated.v1', data: { sessionId: c.sessionId, patch: c.patch, updatedAt: at } },
      ];
    }
    case 'SetToolCallStatus': {
      const c = command.data;
      existing(state, c.sessionId, c.actingUserId);
      checkVersion(state, c.sessionId, c.expectedVersion);
      if (c.error !== undefined && c.status !== 'failed') {
        throw new ValidationError('error is only allowed with status "failed"', [
          { path: 'error', message: 'only with status "failed"' },
        ]);
      }
      const events: StateDomainEvent[] = [];
      const current = state.toolCalls.find((t) => t.name === c.name);
      if (!current && state.toolCalls.length >= MAX_TOOL_CALLS) {
        throw new ValidationError('Too many tool calls', [
          { path: 'name', message: `a session plans at most ${MAX_TOOL_CALLS} tool calls` },
        ]);
      }
      if (!current || (c.description !== undefined && c.description !== current.description)) {
        events.push({
          type: 'ToolCallPlanned.v1',
          data: { sessionId: c.sessionId, name: c.name, description: c.description ?? null, plannedAt: at },
        });
      }
      const result = c.result ?? null;
      const error = c.error ?? null;
      const changed = current
        ? current.status !== c.status || current.error !== error || !jsonEqual(current.result, result)
        : c.status !== 'pending' || result !== null;
      if (changed) {
        events.push({
          type: 'ToolCallStatusChanged.v1',
          data: { sessionId: c.sessionId, name: c.name, status: c.status, result, error, changedAt: at },
        });
      }
      return events;
    }
    default: {
      const unreachable: never = command;
      return unreachable;
    }
  }
}

/**
 * Folds one event into the state. Lifecycle events set the session's status and owner and do not move
 * `version`; every state event moves it by one. A status change of an unknown tool call (which
 * `decide` never produces) only moves the version: the stream is the record.
 */
export function evolve(state: WorkflowState, event: StateDeciderEvent): WorkflowState {
  switch (event.type) {
    case 'SessionCreated.v1':
      return { ...state, session: { status: 'exists', userId: event.data.userId } };
    case 'SessionDeleted.v1':
      return { ...state, session: { ...state.session, status: 'deleted' } };
    case 'SessionStateUpdated.v1':
      return {
        ...state,
        version: state.version + 1,
        document: applyStatePatch(state.document, event.data.patch),
        updatedAt: event.data.updatedAt,
      };
    case 'ToolCallPlanned.v1': {
      const e = event.data;
      const known = state.toolCalls.some((t) => t.name === e.name);
      const toolCalls = known
        ? state.toolCalls.map((t) =>
            t.name === e.name ? { ...t, description: e.description, updatedAt: e.plannedAt } : t,
          )
        : [
            ...state.toolCalls,
            {
              name: e.name,
              description: e.description,
              status: 'pending' as const,
              result: null,
              error: null,
              plannedAt: e.plannedAt,
              updatedAt: e.plannedAt,
            },
          ];
      return { ...state, version: state.version + 1, toolCalls, updatedAt: e.plannedAt };
    }
    case 'ToolCallStatusChanged.v1': {
      const e = event.data;
      const toolCalls = state.toolCalls.map((t) =>
        t.name === e.name
          ? { ...t, status: e.status, result: e.result, error: e.error, updatedAt: e.changedAt }
          : t,
      );
      return { ...state, version: state.version + 1, toolCalls, updatedAt: e.changedAt };
    }
    default: {
      const unreachable: never = event;
      return unreachable;
    }
  }
}

/** Every planned tool call is `completed` (true when none is planned: `all` over nothing). */
export const isComplete = (toolCalls: readonly ToolCall[]): boolean =>
  toolCalls.every((t) => t.status === 'completed');

/** The HTTP view of a workflow state (snake_case; unset fields null). */
export function viewOf(sessionId: string, state: WorkflowState): SessionStateView {
  const d = state.document;
  return {
    session_id: sessionId,
    version: state.version,
    constraints: d.constraints ?? null,
    strategy: d.strategy ?? null,
    response_plan: d.response_plan ?? null,
    summary: d.summary ?? null,
    status: d.status ?? null,
    tool_calls: state.toolCalls.map((t): ToolCallView => ({
      name: t.name,
      description: t.description,
      status: t.status,
      result: t.result,
      error: t.error,
      planned_at: t.plannedAt,
      updated_at: t.updatedAt,
    })),
    is_complete: isComplete(state.toolCalls),
    updated_at: state.updatedAt,
  };
}
