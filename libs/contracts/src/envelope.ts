import { z } from 'zod';
import { IdempotencyKey, IsoDate, TenantId, UserId } from './common';

/** Metadata stored with every event (the `metadata jsonb` column) and published with it. */
export const EventMetadata = z.object({
  tenantId: TenantId,
  userId: UserId.nullable().optional(),
  correlationId: z.string().max(128).optional(),
  causationId: z.string().max(128).optional(),
  idempotencyKey: IdempotencyKey.optional(),
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
