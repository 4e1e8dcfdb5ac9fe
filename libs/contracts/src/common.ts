import { z } from 'zod';

/** Identifiers: 1-128 characters of letters, digits and `_-.:@`, so they are safe in URLs and logs. */
export const Identifier = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_\-.:@]+$/, 'only letters, digits and _ - . : @');

export const TenantId = Identifier.describe('Tenant the data belongs to');
/**
 * A tenant id as one is made from now on (an API key's tenant, `DEFAULT_TENANT_ID`): an identifier
 * without `:`. Stream ids are `<type>:<tenant>:<id>` and ids may hold `:`, so a tenant id with one
 * could make one tenant's stream id another's (tenant `a` + session `b:c`, tenant `a:b` + session `c`);
 * without one, the tenant ends at the second `:`. Ids already stored keep parsing with {@link TenantId}
 * (and the event store checks the tenant of every stream it reads or appends to).
 */
export const NewTenantId = TenantId.regex(
  /^[^:]+$/,
  'a tenant id may not contain ":" (stream ids are <type>:<tenant>:<id>)',
);
export const SessionId = Identifier.describe('Session id (the seed APIs call it thread_id)');
export const UserId = Identifier.describe('Id of the end user of the calling application');
export const IdempotencyKey = z.string().min(1).max(200);

/** ISO-8601 timestamp with offset, as produced by `Date.prototype.toISOString`. */
export const IsoDate = z.iso.datetime({ offset: true });

/** A JSON value. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Deepest nesting any JSON value may have (objects and arrays count one level each). */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether `value` nests objects/arrays deeper than `limit`, found without recursion: hostile input
 * nested thousands deep must get a validation error, not a stack overflow (found by the gateway's
 * property tests).
 */
export function exceedsDepth(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [node, level] = next;
    if (node === null || typeof node !== 'object') continue;
    if (level + 1 > limit) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) stack.push([child, level + 1]);
  }
  return false;
}

/**
 * Whether `value` is JSON (strings, finite numbers, booleans, null, arrays and plain objects of JSON)
 * nesting objects/arrays at most `limit` levels: one walk without recursion, so hostile input nested
 * thousands deep is refused, not a stack overflow.
 */
export function isJsonWithin(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [node, level] = next;
    if (node === null || typeof node === 'string' || typeof node === 'boolean') continue;
    if (typeof node === 'number') {
      if (!Number.isFinite(node)) return false;
      continue;
    }
    if (typeof node !== 'object' || level + 1 > limit) return false;
    if (Array.isArray(node)) {
      for (const child of node) stack.push([child, level + 1]);
      continue;
    }
    const proto = Object.getPrototypeOf(node) as unknown;
    if (proto !== Object.prototype && proto !== null) return false;
    for (const child of Object.values(node)) stack.push([child, level + 1]);
  }
  return true;
}

/**
 * A JSON value at most {@link MAX_JSON_DEPTH} levels deep, checked in one walk ({@link isJsonWithin})
 * and passed on as it is. It was a recursive `z.lazy` union of six schemas: parsing the tool calls of a
 * 20-turn page took half of the page's parse (131 of 260 us, issue 6), on every hop (HTTP body, NATS
 * payload, event data, reply). The OpenAPI document shows it as any value.
 */
export const JsonValue: z.ZodType<Json> = z
  .unknown()
  .refine((v): v is Json => isJsonWithin(v, MAX_JSON_DEPTH), {
    message: `a JSON value (no undefined, functions or non-finite numbers) at most ${MAX_JSON_DEPTH} levels deep`,
  })
  .meta({ description: `Any JSON value, at most ${MAX_JSON_DEPTH} levels deep` });

const MAX_METADATA_BYTES = 16 * 1024;
const MAX_METADATA_DEPTH = 8;

/** Free-form metadata of a session: a JSON object, at most 16 KiB serialized and 8 levels deep. */
export const Metadata = z
  .record(z.string().max(128), JsonValue)
  .refine(
    (m) => JSON.stringify(m).length <= MAX_METADATA_BYTES,
    `at most ${MAX_METADATA_BYTES} bytes as JSON`,
  )
  .refine((m) => !exceedsDepth(m, MAX_METADATA_DEPTH), `at most ${MAX_METADATA_DEPTH} levels deep`);
export type Metadata = z.infer<typeof Metadata>;

/**
 * A metadata merge patch (RFC 7396, top level): keys with a value are set, keys with `null` are removed.
 */
export const MetadataPatch = Metadata;

/**
 * A W3C Trace Context `traceparent` (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`,
 * https://www.w3.org/TR/trace-context/): the span an event was appended under, when tracing is on.
 */
export const Traceparent = z.string().regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);

/**
 * Who and why, attached to every command and stored in each event's metadata. `traceparent` is set
 * by the receiving service's transport when tracing is on (the span handling the command), never by
 * a client.
 */
export const CommandContext = z.object({
  tenantId: TenantId,
  idempotencyKey: IdempotencyKey.optional(),
  correlationId: z.string().max(128).optional(),
  causationId: z.string().max(128).optional(),
  traceparent: Traceparent.optional(),
});
export type CommandContext = z.infer<typeof CommandContext>;

/** Typed error reply of a command or query; `code` is a DomainError code (see platform/errors). */
export const ErrorReply = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type ErrorReply = z.infer<typeof ErrorReply>;

/** Cursor pagination: an opaque cursor and a page size of 1-200 (default 50). */
export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});
