import type { MessageHandler } from '@nestjs/microservices';

/**
 * The handlers of a NestJS transport server by pattern, looked up once per pattern. NestJS's
 * `Server.getHandlerByPattern` first tries `JSON.parse` on the pattern, a throw and catch for every
 * plain-string subject: 3.7-4.2% of the busy time of the analytics and session-service JetStream
 * consumers in the bench's scenario 1, 2.4% of the session-service's in scenario 7 (`node
 * --cpu-prof`). Handlers are all registered before the server listens, so a found handler is kept; a
 * pattern without one is looked up each time (patterns come from messages: nothing unbounded is kept).
 */
export class HandlerCache {
  private readonly known = new Map<string, MessageHandler>();

  /** `lookUp`: the server's own lookup (null when no handler has that pattern). */
  constructor(private readonly lookUp: (pattern: string) => MessageHandler | null) {}

  /** The handler of `pattern`, or null when none has it. */
  handlerOf(pattern: string): MessageHandler | null {
    const known = this.known.get(pattern);
    if (known) return known;
    const handler = this.lookUp(pattern);
    if (handler) this.known.set(pattern, handler);
    return handler;
  }
}
