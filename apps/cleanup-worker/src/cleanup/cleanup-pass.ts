import { randomUUID } from 'node:crypto';
import type { CleanupReport } from '@threadline/contracts';
import type { Db } from '@threadline/event-store';
import type { CleanupSettings } from '../config';
import { expireIdleSessions } from '../policies/expire-idle-sessions.policy';
import { deleteRetiredSessions } from '../policies/retention.policy';
import type { SessionsPort } from '../policies/sessions-port';

/** Advisory lock key of a running pass: passes never overlap, whichever instance runs them. */
export const PASS_LOCK_KEY = 'threadline.cleanup-worker.pass';

/** Most batches one policy lists in one pass: bounds a pass at `batchSize * MAX_BATCHES` sessions each. */
export const MAX_BATCHES_PER_PASS = 100;

/**
 * One cleanup pass: expiry ({@link expireIdleSessions}), then retention ({@link deleteRetiredSessions}),
 * against `now` (the caller's clock: tests pass a controlled one). Passes are serialized across every
 * worker instance by a Postgres session advisory lock ({@link PASS_LOCK_KEY}) held on a dedicated
 * connection for the pass, so the leader's timer and an on-demand pass (`RunSessionCleanup`, which
 * any instance may receive) never run at once. The correlation id of every command, and so of every
 * event appended, is `cleanup:<instanceId>:<pass id>`. Answers `{expired, deleted, took_ms}` (ms of
 * this pass, lock wait included). Throws what a policy throws (the pass stops; the lock is released).
 */
export class CleanupPass {
  constructor(
    private readonly db: Db,
    private readonly sessions: SessionsPort,
    private readonly settings: CleanupSettings,
    readonly instanceId: string,
  ) {}

  async run(opts: { now: Date; tenantId?: string | undefined }): Promise<CleanupReport> {
    const started = performance.now();
    const conn = await this.db.dedicated();
    try {
      await conn.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [PASS_LOCK_KEY]);
      try {
        const pass = {
          correlationId: `cleanup:${this.instanceId}:${randomUUID()}`,
          tenantId: opts.tenantId,
          maxBatches: MAX_BATCHES_PER_PASS,
          batchSize: this.settings.batchSize,
        };
        const expired = await expireIdleSessions(this.sessions, pass, opts.now, this.settings.timeoutMs);
        const deleted = await deleteRetiredSessions(this.sessions, pass, opts.now, this.settings.retentionMs);
        return { expired, deleted, took_ms: Math.round(performance.now() - started) };
      } finally {
        await conn.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [PASS_LOCK_KEY]);
      }
    } finally {
      await conn.release();
    }
  }
}
