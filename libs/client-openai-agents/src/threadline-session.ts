import type { AgentInputItem, Session } from '@openai/agents-core';
import { type Threadline, ThreadlineError, type Turn } from '@threadline/client';
import { itemsOfTurn, turnOfItems } from './item-mapping';

/** Most turns one `GET /sessions/{id}/turns` page returns (the API's limit). */
const PAGE = 200;

/** Options of {@link ThreadlineSession}. */
export interface ThreadlineSessionOptions {
  /** A configured SDK client (`new Threadline({ baseUrl, apiKey })`). */
  client: Threadline;
  /** The Threadline session to use; without it, one is created on the first {@link ThreadlineSession.getSessionId}. */
  sessionId?: string;
  /** End user of the session (required by the API to create a session with an API key). */
  userId?: string;
  /** `agent_name` of the assistant messages; default `"assistant"`. */
  agentName?: string;
  /** `model` of the assistant messages, when known. */
  model?: string;
  /** Title of the session when this object creates it. */
  title?: string;
}

/**
 * An OpenAI Agents SDK `Session` stored in a Threadline session. Each {@link addItems} call (the
 * runner makes one per run) is one turn, mapped as `turnOfItems` describes, so Threadline's analytics
 * count the run's responses and tool calls; {@link getItems} gives back exactly the items written.
 * Pass it as `run(agent, input, { session })`.
 *
 * Every method throws the SDK's `ThreadlineError` (with `status` and `code`) when the API refuses or
 * cannot be reached; the SDK retries 429, 503 and network errors with the same idempotency key.
 */
export class ThreadlineSession implements Session {
  private readonly client: Threadline;
  private readonly options: ThreadlineSessionOptions;
  private sessionId: Promise<string> | undefined;

  constructor(options: ThreadlineSessionOptions) {
    this.client = options.client;
    this.options = options;
    if (options.sessionId !== undefined) this.sessionId = Promise.resolve(options.sessionId);
  }

  /** The Threadline session id; creates the session on the first call when none was given. */
  getSessionId(): Promise<string> {
    this.sessionId ??= this.createSession(undefined).catch((error: unknown) => {
      this.sessionId = undefined;
      throw error;
    });
    return this.sessionId;
  }

  /**
   * The session's items, oldest first; with `limit`, the `limit` most recent ones (still oldest
   * first). `[]` for a session that does not exist (yet).
   */
  async getItems(limit?: number): Promise<AgentInputItem[]> {
    if (limit !== undefined && limit <= 0) return [];
    const sessionId = await this.getSessionId();
    if (limit === undefined) return (await this.turns(sessionId)).flatMap(itemsOfTurn);
    // Newest turns first, until they hold `limit` items.
    const newestFirst: AgentInputItem[][] = [];
    let count = 0;
    try {
      for await (const turn of this.client.turns.list(sessionId, {
        order: 'desc',
        limit: Math.min(limit, PAGE),
      })) {
        const items = itemsOfTurn(turn);
        newestFirst.push(items);
        count += items.length;
        if (count >= limit) break;
      }
    } catch (error) {
      if (isSessionMissing(error)) return [];
      throw error;
    }
    return newestFirst.reverse().flat().slice(-limit);
  }

  /**
   * Adds the items as ONE turn (one write); the session is created first when it does not exist.
   * @throws ThreadlineError e.g. `SESSION.ALREADY_ENDED` (409), `REQUEST.INVALID` (400) when a field
   *   exceeds the API's limits (100,000 characters of text, 50 assistant messages, 100 tool calls).
   */
  async addItems(items: AgentInputItem[]): Promise<void> {
    if (items.length === 0) return;
    const sessionId = await this.getSessionId();
    await this.log(sessionId, items, crypto.randomUUID());
  }

  /**
   * Removes and returns the most recent item. Turns are immutable, so the last turn is replaced: its
   * other items are logged as a new turn first, then the old turn is deleted (a failure in between
   * leaves the items twice, never loses one).
   */
  async popItem(): Promise<AgentInputItem | undefined> {
    const sessionId = await this.getSessionId();
    const last = await this.lastTurnWithItems(sessionId);
    if (last === undefined) return undefined;
    const items = itemsOfTurn(last);
    const popped = items.pop();
    if (items.length > 0) await this.log(sessionId, items, `pop-${last.turn_id}`);
    await this.client.turns.delete(last.turn_id);
    return popped;
  }

  /** Deletes every turn of the session (the session itself stays, with no history). */
  async clearSession(): Promise<void> {
    const sessionId = await this.getSessionId();
    for (const turn of await this.turns(sessionId)) await this.client.turns.delete(turn.turn_id);
  }

  private async log(sessionId: string, items: AgentInputItem[], idempotencyKey: string): Promise<void> {
    const body = turnOfItems(items, {
      agentName: this.options.agentName ?? 'assistant',
      ...(this.options.model === undefined ? {} : { model: this.options.model }),
    });
    try {
      await this.client.turns.log(sessionId, body, { idempotencyKey });
    } catch (error) {
      if (!isSessionMissing(error)) throw error;
      await this.createSession(sessionId);
      await this.client.turns.log(sessionId, body, { idempotencyKey });
    }
  }

  /** The newest turn that has items (a turn logged by another client may have none: it is skipped, not deleted). */
  private async lastTurnWithItems(sessionId: string): Promise<Turn | undefined> {
    try {
      for await (const turn of this.client.turns.list(sessionId, { order: 'desc', limit: 20 })) {
        if (itemsOfTurn(turn).length > 0) return turn;
      }
    } catch (error) {
      if (isSessionMissing(error)) return undefined;
      throw error;
    }
    return undefined;
  }

  private async turns(sessionId: string): Promise<Turn[]> {
    try {
      return await this.client.turns.list(sessionId, { order: 'asc', limit: PAGE }).toArray();
    } catch (error) {
      if (isSessionMissing(error)) return [];
      throw error;
    }
  }

  /** Creates the session (`sessionId`, or a generated one); a session created meanwhile by another process is fine. */
  private async createSession(sessionId: string | undefined): Promise<string> {
    try {
      const session = await this.client.sessions.create({
        ...(sessionId === undefined ? {} : { session_id: sessionId }),
        ...(this.options.userId === undefined ? {} : { user_id: this.options.userId }),
        ...(this.options.title === undefined ? {} : { title: this.options.title }),
        created_from: 'openai-agents',
      });
      return session.session_id;
    } catch (error) {
      if (sessionId !== undefined && error instanceof ThreadlineError && error.is('SESSION.ALREADY_EXISTS'))
        return sessionId;
      throw error;
    }
  }
}

const isSessionMissing = (error: unknown): boolean =>
  error instanceof ThreadlineError && error.is('SESSION.NOT_FOUND');
