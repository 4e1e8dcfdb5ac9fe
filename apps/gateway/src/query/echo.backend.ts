import type { AgentBackend, AgentReply, AgentRequest } from './agent-backend';

/** The model name the echo agent answers with. */
export const ECHO_MODEL = 'echo';

/**
 * The built-in offline agent (used when `AGENT_BASE_URL` is unset): answers `Echo: <query>`, where
 * the query is the last user message. Reports no usage, so the chat-log-service estimates it.
 * Never fails; ignores the history and the parameters.
 */
export class EchoAgentBackend implements AgentBackend {
  readonly kind = 'echo';

  complete(request: AgentRequest): Promise<AgentReply> {
    const query = request.messages.findLast((m) => m.role === 'user')?.content ?? '';
    return Promise.resolve({ content: `Echo: ${query}`, model: ECHO_MODEL });
  }
}
