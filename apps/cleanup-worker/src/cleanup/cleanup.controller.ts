import { Controller, Inject } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { type ReplyOf, type RequestOf, RunSessionCleanup } from '@threadline/contracts';
import { RequestHandler } from '@threadline/messaging';
import { CleanupPass } from './cleanup-pass';

/** Token of the clock passes run against: `() => Date` (tests pin it). */
export const CLEANUP_CLOCK = Symbol('CLEANUP_CLOCK');

/**
 * `RunSessionCleanup` over NATS (queue group `cleanup-worker`): runs a pass now, on whichever instance
 * receives it (passes are serialized across instances by the pass lock), for one tenant or all, and
 * answers `{expired, deleted, took_ms}`. What `POST /sessions/cleanup` of the gateway sends.
 */
@Controller()
export class CleanupController {
  constructor(
    private readonly pass: CleanupPass,
    @Inject(CLEANUP_CLOCK) private readonly clock: () => Date,
  ) {}

  @RequestHandler(RunSessionCleanup)
  runCleanup(@Payload() p: RequestOf<typeof RunSessionCleanup>): Promise<ReplyOf<typeof RunSessionCleanup>> {
    return this.pass.run({ now: this.clock(), tenantId: p.tenantId });
  }
}
