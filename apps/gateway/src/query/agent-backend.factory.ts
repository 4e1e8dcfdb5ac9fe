import type { AgentConfig } from '../config';
import type { AgentBackend } from './agent-backend';
import { EchoAgentBackend } from './echo.backend';
import { OpenAiCompatibleBackend } from './openai-compatible.backend';

/**
 * The agent backend the config asks for: {@link OpenAiCompatibleBackend} at `AGENT_BASE_URL` (with
 * `AGENT_API_KEY`, `AGENT_MODEL`, `AGENT_TIMEOUT_MS`), or the offline {@link EchoAgentBackend}
 * when `AGENT_BASE_URL` is unset.
 */
export function createAgentBackend(config: AgentConfig): AgentBackend {
  if (config.AGENT_BASE_URL === undefined) return new EchoAgentBackend();
  return new OpenAiCompatibleBackend({
    baseUrl: config.AGENT_BASE_URL,
    apiKey: config.AGENT_API_KEY,
    model: config.AGENT_MODEL,
    timeoutMs: config.AGENT_TIMEOUT_MS,
  });
}
