import { type z } from 'zod';

/**
 * A versioned event contract: the one definition producers, consumers, upcasters and docs share.
 *
 * - `type` is the versioned type name stored in the event store (`SessionCreated.v1`).
 * - `category` is the stream type the event belongs to (`session`, `conversation`).
 * - `subject(prefix)` is the JetStream subject, derived, never typed by hand:
 *   `<prefix>.evt.<category>.<Name>.v<version>` (STYLE.md, "Contracts, defined once").
 */
export interface EventDefinition<
  TName extends string,
  TSchema extends z.ZodType,
  TVersion extends number = number,
> {
  readonly kind: 'event';
  readonly category: string;
  readonly name: TName;
  readonly version: TVersion;
  readonly type: `${TName}.v${TVersion}`;
  readonly schema: TSchema;
  subject(prefix: string): string;
}

/** The JetStream subject of an event type: `<prefix>.evt.<category>.<Name>.v<version>`. */
export const eventSubject = (prefix: string, category: string, type: string): string =>
  `${prefix}.evt.${category}.${type}`;

/** Defines an event contract; see {@link EventDefinition}. */
export function defineEvent<TName extends string, const TVersion extends number, TSchema extends z.ZodType>(
  category: string,
  name: TName,
  version: TVersion,
  schema: TSchema,
): EventDefinition<TName, TSchema, TVersion> {
  const type = `${name}.v${version}` as const;
  return {
    kind: 'event',
    category,
    name,
    version,
    type,
    schema,
    subject: (prefix) => eventSubject(prefix, category, type),
  };
}

/** The data type an event definition carries. */
export type EventData<D> = D extends EventDefinition<string, infer S, number> ? z.infer<S> : never;

/** An event as domain code sees it: its versioned type name (a literal, `SessionCreated.v1`) and its data. */
export type EventOf<D> =
  D extends EventDefinition<string, infer S, number> ? { type: D['type']; data: z.infer<S> } : never;

/** Any event definition. */
export type AnyEventDefinition = EventDefinition<string, z.ZodType>;

/**
 * The discriminated union of the events of `Defs` (a tuple of definitions), to `switch` on `type`
 * exhaustively: `EventUnion<typeof SessionEvents>`.
 */
export type EventUnion<Defs extends readonly AnyEventDefinition[]> = {
  [K in keyof Defs]: EventOf<Defs[K]>;
}[number];

/**
 * A command or query sent over NATS request/reply. `subject(prefix)` is
 * `<prefix>.cmd.<category>.<name>` or `<prefix>.qry.<category>.<name>`; `reply` is the schema
 * of a successful answer.
 */
export interface RequestDefinition<TSchema extends z.ZodType, TReply extends z.ZodType> {
  readonly kind: 'command' | 'query';
  readonly category: string;
  readonly name: string;
  readonly schema: TSchema;
  readonly reply: TReply;
  subject(prefix: string): string;
}

function defineRequest<TSchema extends z.ZodType, TReply extends z.ZodType>(
  kind: 'command' | 'query',
  category: string,
  name: string,
  schema: TSchema,
  reply: TReply,
): RequestDefinition<TSchema, TReply> {
  const verb = kind === 'command' ? 'cmd' : 'qry';
  return {
    kind,
    category,
    name,
    schema,
    reply,
    subject: (prefix) => `${prefix}.${verb}.${category}.${name}`,
  };
}

/** Defines a command (changes state; carries tenant and optional idempotency key). */
export const defineCommand = <TSchema extends z.ZodType, TReply extends z.ZodType>(
  category: string,
  name: string,
  schema: TSchema,
  reply: TReply,
) => defineRequest('command', category, name, schema, reply);

/** Defines a query (reads a read model; never changes state). */
export const defineQuery = <TSchema extends z.ZodType, TReply extends z.ZodType>(
  category: string,
  name: string,
  schema: TSchema,
  reply: TReply,
) => defineRequest('query', category, name, schema, reply);

export type RequestOf<D> = D extends RequestDefinition<infer S, z.ZodType> ? z.infer<S> : never;
export type ReplyOf<D> = D extends RequestDefinition<z.ZodType, infer R> ? z.infer<R> : never;
