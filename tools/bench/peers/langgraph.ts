import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import {
  expectFunctions,
  installedVersion,
  peerPool,
  peersRequire,
  type PgModule,
  type PgPool,
} from './load';
import { LAST_TURNS, type PeerAdapter, type PeerMessage, type PeerSession } from './types';

/** A LangChain message (`BaseMessage` of `@langchain/core/messages`), as far as the bench uses it. */
interface LcMessage {
  getType(): string;
  content: unknown;
}
interface LcMessagesModule {
  HumanMessage: new (fields: { content: string; id: string }) => LcMessage;
  AIMessage: new (fields: { content: string; id: string }) => LcMessage;
}
type ChannelVersion = string | number;
interface Checkpoint {
  v: number;
  id: string;
  ts: string;
  channel_values: Record<string, unknown>;
  channel_versions: Record<string, ChannelVersion>;
  versions_seen: Record<string, Record<string, ChannelVersion>>;
}
interface RunnableConfig {
  configurable: Record<string, unknown>;
}
interface PostgresSaver {
  setup(): Promise<void>;
  getNextVersion(current: ChannelVersion | undefined): ChannelVersion;
  put(
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: { source: 'input' | 'loop'; step: number; parents: Record<string, string> },
    newVersions: Record<string, ChannelVersion>,
  ): Promise<RunnableConfig>;
  getTuple(config: RunnableConfig): Promise<{ checkpoint: Checkpoint } | undefined>;
}
interface CheckpointPostgresModule {
  PostgresSaver: new (pool: PgPool) => PostgresSaver;
}
interface CheckpointModule {
  uuid6: (clockseq: number) => string;
}
interface CompiledGraph {
  invoke(input: { messages: LcMessage[] }, config: RunnableConfig): Promise<unknown>;
  getState(config: RunnableConfig): Promise<{ values: { messages?: unknown } }>;
}
interface StateGraphBuilder {
  addNode(
    name: string,
    node: (state: unknown, config: RunnableConfig) => { messages: LcMessage[] },
  ): StateGraphBuilder;
  addEdge(from: string, to: string): StateGraphBuilder;
  compile(opts: { checkpointer: PostgresSaver }): CompiledGraph;
}
interface LangGraphModule {
  StateGraph: new (annotation: unknown) => StateGraphBuilder;
  MessagesAnnotation: unknown;
  START: string;
  END: string;
}

const ReadMessage = z.object({ type: z.enum(['human', 'ai']), content: z.string() });

/** The last `2 * LAST_TURNS` of a LangChain message list, as bench messages (oldest first). */
function lastMessages(messages: unknown): PeerMessage[] {
  return z
    .array(z.custom<LcMessage>((m) => typeof (m as LcMessage | null)?.getType === 'function'))
    .parse(messages)
    .slice(-2 * LAST_TURNS)
    .map((m) => {
      const r = ReadMessage.parse({ type: m.getType(), content: m.content });
      return { role: r.type === 'human' ? 'user' : 'assistant', content: r.content };
    });
}

const PACKAGES = [
  '@langchain/langgraph-checkpoint-postgres',
  '@langchain/langgraph-checkpoint',
  '@langchain/core',
] as const;

/** Loads the saver, sets up its schema (`setup()`) on a node-postgres pool of `poolSize` connections. */
async function openSaver(peersDir: string, url: string, poolSize: number, app: string) {
  const req = peersRequire(peersDir);
  const pg = req('pg') as PgModule;
  const mod = req('@langchain/langgraph-checkpoint-postgres') as CheckpointPostgresModule;
  expectFunctions('@langchain/langgraph-checkpoint-postgres', mod, ['PostgresSaver']);
  const messages = req('@langchain/core/messages') as LcMessagesModule;
  const pool = peerPool(pg, url, poolSize, app);
  const saver = new mod.PostgresSaver(pool);
  try {
    await saver.setup();
  } catch (error) {
    await pool.end();
    throw error;
  }
  return { req, pool, saver, messages };
}

/**
 * LangGraph's `PostgresSaver` used directly, as a checkpointer is called by the LangGraph runtime:
 * per turn, `put` of a new checkpoint (parent = the previous one) whose `messages` channel holds the
 * whole conversation (LangGraph's messages state is one list, stored as one blob per channel
 * version), then `getTuple` of the thread's latest checkpoint and its last 40 messages. The worker
 * keeps the conversation in memory between turns (no read before the write): a lower bound of what
 * a graph costs.
 */
export function langgraphSaverAdapter(peersDir: string): PeerAdapter {
  return {
    name: 'langgraph-saver',
    label: 'LangGraph PostgresSaver (put + getTuple)',
    mapping:
      "put(checkpoint with channel_values.messages = the whole conversation as HumanMessage/AIMessage, new version of the 'messages' channel), then getTuple(thread) and its last 40 messages",
    versions: () => PACKAGES.map((p) => `${p}@${installedVersion(peersDir, p)}`),
    async open(url, poolSize): Promise<PeerSession> {
      const {
        req,
        pool,
        saver,
        messages: lc,
      } = await openSaver(peersDir, url, poolSize, 'bench-langgraph-saver');
      const { uuid6 } = req('@langchain/langgraph-checkpoint') as CheckpointModule;
      return {
        conversation(id) {
          const messages: LcMessage[] = [];
          let parent: string | undefined;
          let version: ChannelVersion | undefined;
          let step = -1;
          return Promise.resolve({
            async write(turn) {
              messages.push(
                new lc.HumanMessage({ content: turn.user, id: randomUUID() }),
                new lc.AIMessage({ content: turn.assistant, id: randomUUID() }),
              );
              version = saver.getNextVersion(version);
              step += 1;
              const checkpoint: Checkpoint = {
                v: 4,
                id: uuid6(step),
                ts: new Date().toISOString(),
                channel_values: { messages },
                channel_versions: { messages: version },
                versions_seen: {},
              };
              await saver.put(
                { configurable: { thread_id: id, checkpoint_ns: '', checkpoint_id: parent } },
                checkpoint,
                { source: 'loop', step, parents: {} },
                { messages: version },
              );
              parent = checkpoint.id;
              return saver.getTuple({ configurable: { thread_id: id, checkpoint_ns: '' } });
            },
            messagesOf(readBack) {
              const tuple = readBack as { checkpoint: Checkpoint } | undefined;
              return lastMessages(tuple?.checkpoint.channel_values['messages'] ?? []);
            },
          });
        },
        close: () => pool.end(),
      };
    },
  };
}

/**
 * LangGraph as its users write it: a `StateGraph(MessagesAnnotation)` with one node standing in for
 * the model (it answers the turn's assistant message), compiled with the `PostgresSaver`; per turn
 * `graph.invoke({messages: [user message]}, {configurable: {thread_id}})` (LangGraph loads the
 * thread's checkpoint, runs the node, writes its checkpoints and pending writes), then
 * `graph.getState` and its last 40 messages.
 */
export function langgraphGraphAdapter(peersDir: string): PeerAdapter {
  return {
    name: 'langgraph-graph',
    label: 'LangGraph StateGraph + PostgresSaver (invoke + getState)',
    mapping:
      'StateGraph(MessagesAnnotation), one node returning the assistant message, compiled with PostgresSaver: invoke({messages: [user]}, {thread_id}), then getState(thread) and its last 40 messages',
    versions: () => ['@langchain/langgraph', ...PACKAGES].map((p) => `${p}@${installedVersion(peersDir, p)}`),
    async open(url, poolSize): Promise<PeerSession> {
      const {
        req,
        pool,
        saver,
        messages: lc,
      } = await openSaver(peersDir, url, poolSize, 'bench-langgraph-graph');
      const lg = req('@langchain/langgraph') as LangGraphModule;
      expectFunctions('@langchain/langgraph', lg, ['StateGraph']);
      const graph = new lg.StateGraph(lg.MessagesAnnotation)
        .addNode('agent', (_state, config) => ({
          messages: [new lc.AIMessage({ content: String(config.configurable['reply']), id: randomUUID() })],
        }))
        .addEdge(lg.START, 'agent')
        .addEdge('agent', lg.END)
        .compile({ checkpointer: saver });
      return {
        conversation(id) {
          return Promise.resolve({
            async write(turn) {
              await graph.invoke(
                { messages: [new lc.HumanMessage({ content: turn.user, id: randomUUID() })] },
                { configurable: { thread_id: id, reply: turn.assistant } },
              );
              return graph.getState({ configurable: { thread_id: id } });
            },
            messagesOf(readBack) {
              return lastMessages((readBack as { values: { messages?: unknown } }).values.messages ?? []);
            },
          });
        },
        close: () => pool.end(),
      };
    },
  };
}
