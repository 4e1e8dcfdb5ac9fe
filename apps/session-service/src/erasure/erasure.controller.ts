import { Controller, Logger } from '@nestjs/common';
import { Payload } from '@nestjs/microservices';
import { EraseUser, type ReplyOf, type RequestOf } from '@threadline/contracts';
import { RequestHandler } from '@threadline/messaging';
import { UserErasure } from './user-erasure';

/** The `EraseUser` command (`DELETE /users/{user_id}` of the gateway): see {@link UserErasure}. */
@Controller()
export class ErasureController {
  private readonly logger = new Logger(ErasureController.name);

  constructor(private readonly erasure: UserErasure) {}

  /** Erases every session, turn and workflow state of the user and answers the receipt. */
  @RequestHandler(EraseUser)
  async eraseUser(@Payload() p: RequestOf<typeof EraseUser>): Promise<ReplyOf<typeof EraseUser>> {
    const receipt = await this.erasure.erase(p.context, p.userId);
    this.logger.log(
      `erased user ${p.context.tenantId}/${p.userId}: ${receipt.sessions_deleted} sessions, ` +
        `${receipt.turns_deleted} turns, ${receipt.events_erased} events, ` +
        `${receipt.jetstream_messages_deleted} JetStream messages`,
    );
    return receipt;
  }
}
