import type { z } from 'zod';
import type {
  CommandContext,
  EventMetadata,
  ReplyOf,
  RequestDefinition,
  RequestOf,
} from '@threadline/contracts';
import { StreamVersionConflictError } from '@threadline/platform';
import type { EventStore, EventStoreTransaction } from './event-store';

/**
 * Attempts of one command whose append met a concurrent writer (`STREAM.VERSION_CONFLICT`). Deciders
 * are pure, so rerunning the whole transaction is safe; the client's own `If-Match` mismatch is a
 * different error and is never retried.
 */
export const COMMAND_ATTEMPTS = 4;

type AnyCommand = RequestDefinition<z.ZodType<{ context: CommandContext }>, z.ZodType>;

/** The metadata stored with each event of a command: who, on whose behalf, and why. */
export function eventMetadata(context: CommandContext, userId: string | null): EventMetadata {
  return {
    tenantId: context.tenantId,
    userId,
    ...(context.correlationId !== undefined ? { correlationId: context.correlationId } : {}),
    ...(context.causationId !== undefined ? { causationId: context.causationId } : {}),
    ...(context.idempotencyKey !== undefined ? { idempotencyKey: context.idempotencyKey } : {}),
    ...(context.traceparent !== undefined ? { traceparent: context.traceparent } : {}),
  };
}

/**
 * What a command's idempotency key is bound to: the command's name and its payload minus its context
 * (a retry with another correlation id is the same request). Returns the context and that request.
 */
export function idempotentRequestOf<D extends AnyCommand>(
  definition: D,
  payload: RequestOf<D>,
): { context: CommandContext; request: unknown } {
  const { context, ...rest } = payload as { context: CommandContext };
  return { context, request: { command: definition.name, ...rest } };
}

/**
 * Runs one command in one event-store transaction (ARCHITECTURE rule 4): when its context carries an
 * idempotency key, claims it first and answers a retry with the first reply (parsed with the command's
 * reply schema) without running `body`; the key is bound to the command's name and payload minus its
 * context, so a retry with another correlation id is the same request and a different payload under
 * the same key is `REQUEST.INVALID`. Otherwise runs `body` (load, decide, append, read back) and stores
 * its reply for retries. A `StreamVersionConflictError` reruns everything, up to {@link COMMAND_ATTEMPTS}.
 */
export async function runCommand<D extends AnyCommand>(
  store: EventStore,
  definition: D,
  payload: RequestOf<D>,
  body: (tx: EventStoreTransaction) => Promise<ReplyOf<D>>,
): Promise<ReplyOf<D>> {
  const { context, request } = idempotentRequestOf(definition, payload);
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await store.transaction(async (tx) => {
        const key = context.idempotencyKey;
        if (key !== undefined) {
          const claimed = await tx.claimIdempotencyKey(context.tenantId, key, request);
          if (claimed) return definition.reply.parse(claimed.replay) as ReplyOf<D>;
        }
        const result = await body(tx);
        if (key !== undefined) await tx.saveIdempotentReply(context.tenantId, key, result);
        return result;
      });
    } catch (error) {
      if (error instanceof StreamVersionConflictError && attempt < COMMAND_ATTEMPTS) continue;
      throw error;
    }
  }
}
