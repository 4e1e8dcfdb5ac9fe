import { z } from 'zod';
import { exceedsDepth, IsoDate, type Json, JsonValue, SessionId } from '../common';
import { ToolCallStatus } from '../conversation/conversation.events';
import { defineEvent, type EventOf, type EventUnion } from '../define-message';

/**
 * Stream type of each session's workflow state; its streams are `session-state:<tenantId>:<sessionId>`,
 * its JetStream subjects `<prefix>.evt.session_state.<Event>.v<N>`. A stream of its own, beside the
 * session's lifecycle stream, so state writes never contend with (or change) the lifecycle.
 */
export const SESSION_STATE_CATEGORY = 'session_state';

/** The stream id of a session's workflow state (tenant-qualified, as `sessionStreamId`). */
export const sessionStateStreamId = (tenantId: string, sessionId: string): string =>
  `session-state:${tenantId}:${sessionId}`;

/** Bytes of a value serialized as JSON (UTF-8). */
export const jsonBytes = (value: unknown): number => utf8.encode(JSON.stringify(value) ?? '').length;
const utf8 = new TextEncoder();

/**
 * A JSON value of at most `maxBytes` bytes serialized (UTF-8) and `maxDepth` levels of nesting
 * (as `Metadata` in common.ts, which bounds metadata to 16 KiB and 8 levels).
 */
export const boundedJson = (maxBytes: number, maxDepth: number): z.ZodType<Json> =>
  JsonValue.refine((v) => jsonBytes(v) <= maxBytes, `at most ${maxBytes} bytes as JSON`).refine(
    (v) => !exceedsDepth(v, maxDepth),
    `at most ${maxDepth} levels deep`,
  );

/** Bytes of one JSON field of the state (constraints, strategy, response_plan) or a tool call result. */
export const MAX_STATE_FIELD_BYTES = 64 * 1024;
/** Nesting depth of one JSON field of the state or a tool call result. */
export const MAX_STATE_FIELD_DEPTH = 16;
/** Bytes of the whole state document (the five fields) after a merge; a larger result is REQUEST.INVALID. */
export const MAX_STATE_BYTES = 256 * 1024;
/** Tool calls one session may plan. */
export const MAX_TOOL_CALLS = 100;

const StateJson = boundedJson(MAX_STATE_FIELD_BYTES, MAX_STATE_FIELD_DEPTH);

/** `summary`: free text (markdown in the seed), at most 32 768 characters. */
export const StateSummary = z.string().max(32_768);
/** `status`: the workflow's own status word (the seed uses e.g. `created`, `processing`, `completed`). */
export const StateStatus = z.string().min(1).max(64);

/**
 * An RFC 7396 JSON merge patch over the state document `{constraints, strategy, response_plan,
 * summary, status}`: a key with `null` removes the field, an object value is merged into the
 * field's object recursively (its own `null` members remove keys), any other value replaces it.
 * Unknown keys are rejected. `strategy` is text or JSON; `summary` and `status` are text.
 */
export const StatePatch = z
  .strictObject({
    constraints: StateJson.nullable().optional(),
    strategy: StateJson.nullable().optional(),
    response_plan: StateJson.nullable().optional(),
    summary: StateSummary.nullable().optional(),
    status: StateStatus.nullable().optional(),
  })
  .refine((p) => jsonBytes(p) <= MAX_STATE_BYTES, `at most ${MAX_STATE_BYTES} bytes as JSON`);
export type StatePatch = z.infer<typeof StatePatch>;

/** Name of a tool call: 1-200 characters without control characters (the seed uses titles with spaces). */
export const ToolCallName = z
  .string()
  .min(1)
  .max(200)

  .regex(/^[^\u0000-\u001f\u007f]+$/, 'no control characters');
export const ToolCallDescription = z.string().max(2_000);
/** A tool call's result: JSON (the seed stores `{sql, data}`), bounded as a state field. */
export const ToolCallResult = StateJson;
export const ToolCallError = z.string().min(1).max(4_000);

/** The state document changed: `patch` is the merge patch as the client sent it (never a no-op). */
export const SessionStateUpdatedV1 = defineEvent(
  SESSION_STATE_CATEGORY,
  'SessionStateUpdated',
  1,
  z.object({ sessionId: SessionId, patch: StatePatch, updatedAt: IsoDate }),
);
export type SessionStateUpdatedV1 = EventOf<typeof SessionStateUpdatedV1>;

/**
 * A tool call was planned (status `pending`), or an existing one was given a new description
 * (its status and result stay).
 */
export const ToolCallPlannedV1 = defineEvent(
  SESSION_STATE_CATEGORY,
  'ToolCallPlanned',
  1,
  z.object({
    sessionId: SessionId,
    name: ToolCallName,
    description: ToolCallDescription.nullable(),
    plannedAt: IsoDate,
  }),
);
export type ToolCallPlannedV1 = EventOf<typeof ToolCallPlannedV1>;

/** A planned tool call's status, result and error, as a whole (absent means null). */
export const ToolCallStatusChangedV1 = defineEvent(
  SESSION_STATE_CATEGORY,
  'ToolCallStatusChanged',
  1,
  z.object({
    sessionId: SessionId,
    name: ToolCallName,
    status: ToolCallStatus,
    result: ToolCallResult.nullable(),
    error: ToolCallError.nullable(),
    changedAt: IsoDate,
  }),
);
export type ToolCallStatusChangedV1 = EventOf<typeof ToolCallStatusChangedV1>;

/** Every event of a session's workflow state, latest versions. */
export const SessionStateEvents = [
  SessionStateUpdatedV1,
  ToolCallPlannedV1,
  ToolCallStatusChangedV1,
] as const;

/** Every workflow-state event, a discriminated union on `type`. */
export type SessionStateEvent = EventUnion<typeof SessionStateEvents>;
