/**
 * An OpenAI Agents SDK agent whose session lives in Threadline, offline: a scripted `Model` (no
 * network) drives a real `Runner` with a function tool, and `ThreadlineSession` is the run's session.
 *
 * Two runs in one session: the first asks for the weather (the model reasons, calls the `weather`
 * tool, then answers), the second asks what was asked before, and the model answers from the
 * history the runner read back from Threadline.
 *
 *   npm run build
 *   THREADLINE_URL=http://127.0.0.1:3000 THREADLINE_API_KEY=tl_... \
 *     node dist/examples/openai-agents-js/agent.js <session_id> <user_id>
 *
 * Prints one JSON line per run: `{ run, finalOutput, modelSaw }`, the run's answer and how many
 * items the model's last request held.
 */
import {
  Agent,
  type AgentInputItem,
  type Model,
  type ModelRequest,
  type ModelResponse,
  type protocol,
  Runner,
  tool,
  Usage,
} from '@openai/agents-core';
import { Threadline } from '@threadline/client';
import { ThreadlineSession } from '@threadline/client-openai-agents';
import { z } from 'zod';

const Env = z.object({ THREADLINE_URL: z.url(), THREADLINE_API_KEY: z.string().min(1) });
const Args = z.tuple([z.string().min(1), z.string().min(1)]);

const userTexts = (input: ModelRequest['input']): string[] =>
  typeof input === 'string'
    ? [input]
    : input.flatMap((item: AgentInputItem) =>
        'role' in item && item.role === 'user' && typeof item.content === 'string' ? [item.content] : [],
      );

/**
 * A `Model` that answers from a script, looking at what it is given: a weather question gets a
 * reasoning item and a `weather` call, a tool result gets the answer, anything else gets the first
 * question of the conversation quoted back. Usage: 10 tokens per input item, 5 out.
 */
class ScriptedModel implements Model {
  /** How many items each request held, in order. */
  readonly requestSizes: number[] = [];
  private responses = 0;

  getResponse(request: ModelRequest): Promise<ModelResponse> {
    const input = typeof request.input === 'string' ? [] : request.input;
    this.requestSizes.push(input.length);
    const n = ++this.responses;
    const usage = new Usage({
      requests: 1,
      inputTokens: 10 * input.length,
      outputTokens: 5,
      totalTokens: 10 * input.length + 5,
    });
    const last = input.at(-1);
    const questions = userTexts(request.input);
    const question = questions.at(-1) ?? '';
    if (last !== undefined && 'type' in last && last.type === 'function_call_result') {
      const output =
        typeof last.output === 'string'
          ? last.output
          : 'text' in last.output && typeof last.output.text === 'string'
            ? last.output.text
            : JSON.stringify(last.output);
      return Promise.resolve({ usage, output: [message(`msg_${n}`, `The weather: ${output}.`)] });
    }
    if (/weather/i.test(question)) {
      return Promise.resolve({
        usage,
        output: [
          {
            type: 'reasoning',
            id: `rs_${n}`,
            content: [{ type: 'input_text', text: 'The weather tool knows.' }],
          },
          {
            type: 'function_call',
            callId: `call_${n}`,
            name: 'weather',
            arguments: '{"city":"Paris"}',
            status: 'completed',
          },
        ],
      });
    }
    return Promise.resolve({
      usage,
      output: [message(`msg_${n}`, `Your first question was: ${questions[0] ?? '(none)'}`)],
    });
  }

  /** Not scripted: the Runner calls {@link getResponse} for a run that does not stream. */
  getStreamedResponse(): AsyncIterable<never> {
    throw new Error('ScriptedModel does not stream');
  }
}

const message = (id: string, text: string): protocol.AssistantMessageItem => ({
  type: 'message',
  id,
  role: 'assistant',
  status: 'completed',
  content: [{ type: 'output_text', text }],
});

const weather = tool({
  name: 'weather',
  description: 'The weather in a city',
  parameters: z.object({ city: z.string() }),
  execute: ({ city }) => `sunny, 18 C in ${city}`,
});

async function main(): Promise<void> {
  const env = Env.parse(process.env);
  const [sessionId, userId] = Args.parse(process.argv.slice(2));
  const client = new Threadline({ baseUrl: env.THREADLINE_URL, apiKey: env.THREADLINE_API_KEY });
  const session = new ThreadlineSession({
    client,
    sessionId,
    userId,
    agentName: 'weather-agent',
    model: 'scripted-1',
  });
  const model = new ScriptedModel();
  const agent = new Agent({
    name: 'weather-agent',
    instructions: 'Answer about the weather.',
    model,
    tools: [weather],
  });
  const runner = new Runner({ tracingDisabled: true });

  for (const [run, input] of ['What is the weather in Paris?', 'What did I ask you before?'].entries()) {
    const result = await runner.run(agent, input, { session });
    const line = { run: run + 1, finalOutput: result.finalOutput, modelSaw: model.requestSizes.at(-1) };
    process.stdout.write(JSON.stringify(line) + '\n');
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
