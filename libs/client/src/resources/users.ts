import type { Transport, WriteOptions } from '../transport';
import type { UserErasureReceipt } from '../types';

/** `client.users`: what concerns one end user as a whole. */
export class Users {
  constructor(private readonly t: Transport) {}

  /**
   * Erases the user's sessions, turns and state everywhere, event store and JetStream included
   * (`DELETE /users/{user_id}`); resolves to the receipt (counts, `completed_at`). Throws {@link ThreadlineError}.
   */
  erase(userId: string, options?: WriteOptions): Promise<UserErasureReceipt> {
    return this.t.json({
      method: 'delete',
      path: '/users/{user_id}',
      params: { user_id: userId },
      write: true,
      options,
    });
  }
}
