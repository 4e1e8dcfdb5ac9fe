import type { RequestClient } from '@threadline/messaging';
import { DomainError } from '@threadline/platform';

/** What the policies need of the session-service: its commands and queries over NATS request/reply. */
export type SessionsPort = Pick<RequestClient, 'request'>;

/** Who sent a pass's commands: stored as the correlation id of every event they append. */
export interface PassContext {
  /** `cleanup:<worker instance id>:<pass id>` */
  correlationId: string;
  /** Only this tenant's sessions; every tenant when absent. */
  tenantId?: string | undefined;
  /** Most batches one policy lists in a pass (bounds the pass; the next pass continues). */
  maxBatches: number;
  batchSize: number;
}

/** SESSION.NOT_FOUND: the session went away between listing and command (deleted meanwhile). */
export const isGone = (error: unknown): boolean =>
  error instanceof DomainError && error.code === 'SESSION.NOT_FOUND';
