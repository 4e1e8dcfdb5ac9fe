/**
 * A LangChain chat whose history lives in Threadline, offline: a fake chat model (LangChain's
 * `FakeListChatModel`, reporting token usage and a model name as a real one does) behind
 * `RunnableWithMessageHistory`, with `ThreadlineChatMessageHistory` as its history.
 *
 * Run it twice with the same session id, as two processes: the second run's model sees the first
 * run's messages, read back from Threadline.
 *
 *   npm run build
 *   THREADLINE_URL=http://127.0.0.1:3000 THREADLINE_API_KEY=tl_... \
 *     node dist/examples/langchain-js/chat.js <session_id> <user_id> "My name is Ada."
 *
 * Prints one JSON line: `{ reply, seen }`, the model's reply and the messages the model was given
 * (`[type, text]`, the system prompt, the history and the new input).
 */
import { ChatPromptTemplate, MessagesPlaceholder } from '@langchain/core/prompts';
import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';
import { RunnableWithMessageHistory } from '@langchain/core/runnables';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { Threadline } from '@threadline/client';
import { ThreadlineChatMessageHistory } from '@threadline/client-langchain';
import { z } from 'zod';

const Env = z.object({ THREADLINE_URL: z.url(), THREADLINE_API_KEY: z.string().min(1) });
const Args = z.tuple([z.string().min(1), z.string().min(1), z.string().min(1)]);

/** `FakeListChatModel` that also reports usage (tokens: 10 per message seen, 5 out) and its model name. */
class MeteredFakeChatModel extends FakeListChatModel {
  seen: BaseMessage[] = [];

  override async _generate(
    messages: BaseMessage[],
    options?: this['ParsedCallOptions'],
  ): Promise<ChatResult> {
    this.seen = messages;
    const result = await super._generate(messages, options);
    const text = result.generations[0]?.text ?? '';
    const input = 10 * messages.length;
    const message = new AIMessage({
      content: text,
      usage_metadata: { input_tokens: input, output_tokens: 5, total_tokens: input + 5 },
      response_metadata: { model_name: 'fake-chat-1' },
    });
    return { generations: [{ text, message }] };
  }
}

async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const [sessionId, userId, input] = Args.parse(process.argv.slice(2));
  const client = new Threadline({ baseUrl: env.THREADLINE_URL, apiKey: env.THREADLINE_API_KEY });

  const model = new MeteredFakeChatModel({ responses: [`Noted: ${input}`] });
  const prompt = ChatPromptTemplate.fromMessages([
    ['system', 'You are a helpful assistant.'],
    new MessagesPlaceholder('history'),
    ['human', '{input}'],
  ]);
  const chat = new RunnableWithMessageHistory({
    runnable: prompt.pipe(model),
    getMessageHistory: (id: string) => new ThreadlineChatMessageHistory({ client, sessionId: id, userId }),
    inputMessagesKey: 'input',
    historyMessagesKey: 'history',
  });

  const reply = await chat.invoke({ input }, { configurable: { sessionId } });
  const seen = model.seen.map((m) => [m.type, m.text]);
  process.stdout.write(JSON.stringify({ reply: reply.text, seen }) + '\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
