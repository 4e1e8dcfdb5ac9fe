import { z } from 'zod';
import { TurnText } from '@threadline/contracts';
import { AgentBackendError, type AgentBackend, type AgentReply, type AgentRequest } from './agent-backend';
import { OpenAiUsage, toUsageInput } from './agent-messages';

/**
 * The part of an OpenAI chat-completions reply the gateway reads: the first choice's message content,
 * the answering `model` and `usage`. Other fields are ignored. A `null` content (a reply that only
 * calls tools) is not an answer the gateway can log.
 */
export const ChatCompletionReply = z.object({
  model: z.string().max(128).nullish(),
  choices: z.array(z.object({ message: z.object({ content: TurnText }) })).min(1, 'no choices'),
  usage: OpenAiUsage.nullish(),
});

/** Settings of {@link OpenAiCompatibleBackend} (from `AGENT_*`, see `config.ts`). */
export interface OpenAiCompatibleSettings {
  /** Base URL without a trailing slash, e.g. `http://localhost:8000/v1`. */
  baseUrl: string;
  apiKey?: string | undefined;
  model: string;
  /** Longest wait for the whole reply (headers and body), ms. */
  timeoutMs: number;
}

/** Longest excerpt of a backend's error body kept in the error message, characters. */
const ERROR_EXCERPT_CHARS = 300;

const excerpt = (text: string): string => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > ERROR_EXCERPT_CHARS ? `${flat.slice(0, ERROR_EXCERPT_CHARS)}...` : flat;
};

/** The name of a thrown value (a `DOMException` is not `instanceof Error` in every realm, e.g. Jest's). */
const nameOf = (error: unknown): unknown =>
  typeof error === 'object' && error !== null && 'name' in error ? error.name : undefined;

const messageOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'message' in error && typeof error.message === 'string'
    ? error.message
    : undefined;

const isTimeout = (error: unknown): boolean =>
  nameOf(error) === 'TimeoutError' || nameOf(error) === 'AbortError';

/**
 * An {@link AgentBackend} over any OpenAI-compatible chat-completions API (OpenAI, vLLM, Ollama,
 * llama.cpp server, LiteLLM ...): `POST ${baseUrl}/chat/completions` with `{model, messages,
 * ...parameters}` and `Authorization: Bearer <apiKey>` when a key is set, using the global `fetch`
 * with an `AbortSignal.timeout(timeoutMs)` covering the whole exchange.
 *
 * Rejects with {@link AgentBackendError}: `unreachable` (connection failed), `timeout`,
 * `http_status` (non-2xx, with an excerpt of the body), `bad_reply` (not JSON, or not a chat
 * completion per {@link ChatCompletionReply}).
 */
export class OpenAiCompatibleBackend implements AgentBackend {
  readonly kind = 'openai-compatible';

  constructor(private readonly settings: OpenAiCompatibleSettings) {}

  async complete(request: AgentRequest): Promise<AgentReply> {
    const { baseUrl, apiKey, model, timeoutMs } = this.settings;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (apiKey !== undefined) headers['authorization'] = `Bearer ${apiKey}`;
    let status: number;
    let text: string;
    try {
      const response = await fetch(`${baseUrl}/chat/completions`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ ...request.parameters, model, messages: request.messages }),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = response.status;
      text = await response.text();
    } catch (error) {
      if (isTimeout(error)) {
        throw new AgentBackendError('timeout', `The agent backend did not answer within ${timeoutMs} ms`);
      }
      const cause =
        typeof error === 'object' && error !== null && 'cause' in error ? messageOf(error.cause) : undefined;
      throw new AgentBackendError(
        'unreachable',
        `The agent backend could not be reached${cause !== undefined ? `: ${cause}` : ''}`,
      );
    }
    if (status < 200 || status > 299) {
      throw new AgentBackendError(
        'http_status',
        `The agent backend answered HTTP ${status}${text.trim() === '' ? '' : `: ${excerpt(text)}`}`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AgentBackendError(
        'bad_reply',
        `The agent backend answered with invalid JSON: ${excerpt(text)}`,
      );
    }
    const parsed = ChatCompletionReply.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .map((i) => `${i.path.map(String).join('.') || '(reply)'}: ${i.message}`)
        .join('; ');
      throw new AgentBackendError(
        'bad_reply',
        `The agent backend's reply is not a chat completion (${issues})`,
      );
    }
    const [choice] = parsed.data.choices;
    const usage = toUsageInput(parsed.data.usage);
    return {
      content: choice?.message.content ?? '',
      model: parsed.data.model ?? model,
      ...(usage !== undefined ? { usage } : {}),
    };
  }
}
