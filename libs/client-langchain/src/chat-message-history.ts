import { BaseListChatMessageHistory } from '@langchain/core/chat_history';
import type { BaseMessage } from '@langchain/core/messages';
import { type Threadline, ThreadlineError, type Turn } from '@threadline/client';
import { messagesOfTurn, turnOfMessages } from './message-mapping';

/** Options of {@link ThreadlineChatMessageHistory}. */
export interface ThreadlineChatMessageHistoryInput {
  /** A configured SDK client (`new Threadline({ baseUrl, apiKey })`). */
  client: Threadline;
  /** The Threadline session holding the history (LangChain's `sessionId`); created on the first write when absent. */
  sessionId: string;
  /** End user the session belongs to (required by the API to create the session with an API key). */
  userId?: string;
  /** `agent_name` of AI messages without a `name` of their own; default `"assistant"`. */
  agentName?: string;
  /** Title of the session when this history creates it. */
  title?: string;
}

/**
 * A LangChain chat message history stored in a Threadline session: every {@link addMessages} call is
 * one turn (one `POST /sessions/{session_id}/turns`), mapped as {@link turnOfMessages} describes, so
 * Threadline's analytics count its responses, tokens, cost and tool calls, and {@link getMessages}
 * gives back exactly the messages written. Use it as `getMessageHistory` of `RunnableWithMessageHistory`.
 *
 * Every method throws the SDK's `ThreadlineError` (with `status` and `code`) when the API refuses or
 * cannot be reached; the SDK retries 429, 503 and network errors with the same idempotency key.
 */
export class ThreadlineChatMessageHistory extends BaseListChatMessageHistory {
  lc_namespace = ['langchain', 'stores', 'message', 'threadline'];

  private readonly client: Threadline;
  private readonly sessionId: string;
  private readonly userId: string | undefined;
  private readonly agentName: string;
  private readonly title: string | undefined;

  constructor(input: ThreadlineChatMessageHistoryInput) {
    // Only the session id goes to LangChain's serializable kwargs: the client holds the credential.
    super({ sessionId: input.sessionId });
    this.client = input.client;
    this.sessionId = input.sessionId;
    this.userId = input.userId;
    this.agentName = input.agentName ?? 'assistant';
    this.title = input.title;
  }

  /** Every message of the session, oldest first; `[]` when the session does not exist (yet). */
  async getMessages(): Promise<BaseMessage[]> {
    return (await this.turns()).flatMap(messagesOfTurn);
  }

  /** Adds one message as a turn of its own (prefer {@link addMessages} with a whole exchange). */
  async addMessage(message: BaseMessage): Promise<void> {
    await this.addMessages([message]);
  }

  /**
   * Adds the messages as ONE turn (one write): the session is created first when it does not exist.
   * A retried write carries the same idempotency key, so it never logs the turn twice.
   * @throws ThreadlineError e.g. `SESSION.ALREADY_ENDED` (409) for an ended session, `REQUEST.INVALID`
   *   (400) when a field exceeds the API's limits (100,000 characters of text, 50 AI messages,
   *   100 tool calls per write).
   */
  override async addMessages(messages: BaseMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const body = turnOfMessages(messages, { agentName: this.agentName });
    const idempotencyKey = crypto.randomUUID();
    try {
      await this.client.turns.log(this.sessionId, body, { idempotencyKey });
    } catch (error) {
      if (!isSessionMissing(error)) throw error;
      await this.createSession();
      await this.client.turns.log(this.sessionId, body, { idempotencyKey });
    }
  }

  /** Deletes every turn of the session (the session itself stays, with no history). */
  override async clear(): Promise<void> {
    for (const turn of await this.turns()) await this.client.turns.delete(turn.turn_id);
  }

  private async turns(): Promise<Turn[]> {
    try {
      return await this.client.turns.list(this.sessionId, { order: 'asc', limit: 200 }).toArray();
    } catch (error) {
      if (isSessionMissing(error)) return [];
      throw error;
    }
  }

  private async createSession(): Promise<void> {
    try {
      await this.client.sessions.create({
        session_id: this.sessionId,
        ...(this.userId === undefined ? {} : { user_id: this.userId }),
        ...(this.title === undefined ? {} : { title: this.title }),
        created_from: 'langchain',
      });
    } catch (error) {
      // Another process created it between our write and this create: the write's retry will land.
      if (!(error instanceof ThreadlineError && error.is('SESSION.ALREADY_EXISTS'))) throw error;
    }
  }
}

const isSessionMissing = (error: unknown): boolean =>
  error instanceof ThreadlineError && error.is('SESSION.NOT_FOUND');
