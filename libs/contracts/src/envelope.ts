import { z } from 'zod';
import { IdempotencyKey, IsoDate, TenantId, Traceparent, UserId } from './common';

/** Metadata stored with every event (the `metadata jsonb` column) and published with it. */
export const EventMetadata = z.object({
  tenantId: TenantId,
  userId: UserId.nullable().optional(),
  correlationId: z.string().max(128).optional(),
  causationId: z.string().max(128).optional(),
  idempotencyKey: IdempotencyKey.optional(),
  /**
   * The trace context of the command that appended the event (W3C `traceparent`), when tracing was
   * on: the relay's publish and every consumer's handling of the event continue that trace.
   */
  traceparent: Traceparent.optional(),
  /**
   * Set by a user erasure (`DELETE /users/{user_id}`): the event's `data` was replaced by
   * {@link ERASED_DATA} and its metadata cleared down to `tenantId` and this flag. Ids, type and
   * positions stay, so stream versions and global positions are intact. Projections and folds skip
   * such events ({@link isErased}); `EventRegistry.parse` would reject their data.
   */
  erased: z.literal(true).optional(),
});
export type EventMetadata = z.infer<typeof EventMetadata>;

/**
 * A stored event as it leaves the event store: read back from Postgres or published on JetStream.
 * Positions are 1-based; `globalPosition` is the event table's identity, `transactionId` the xid8 of
 * the appending transaction (decimal string), used for commit-safe ordering.
 */
export const EventEnvelope = z.object({
  eventId: z.uuid(),
  eventType: z.string().min(1).max(128),
  schemaVersion: z.number().int().min(1),
  streamId: z.string().min(1).max(512),
  streamType: z.string().min(1).max(64),
  streamPosition: z.number().int().min(1),
  globalPosition: z.number().int().min(1),
  transactionId: z.string().regex(/^\d+$/),
  data: z.unknown(),
  metadata: EventMetadata,
  createdAt: IsoDate,
});
export type EventEnvelope = z.infer<typeof EventEnvelope>;

/** The `data` of an erased event (see `EventMetadata.erased`). */
export const ERASED_DATA = { erased: true } as const;

/**
 * Whether `envelope` was erased (its data is the tombstone {@link ERASED_DATA}): every reader that
 * parses event data skips it (projections, deciders' folds, history), so replays never bring the
 * user's data back.
 */
export const isErased = (envelope: EventEnvelope): boolean => envelope.metadata.erased === true;
