import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { expectFunctions, installedVersion, peersRequire } from './load';
import { LAST_TURNS, type PeerAdapter, type PeerMessage } from './types';

/** Mastra's stored message, format v2 (`MastraMessageV2` of `@mastra/core`). */
interface MastraMessageV2 {
  id: string;
  threadId: string;
  resourceId: string;
  role: 'user' | 'assistant';
  createdAt: Date;
  type: 'v2';
  content: { format: 2; parts: { type: 'text'; text: string }[] };
}
interface MastraStore {
  init(): Promise<void>;
  saveThread(args: {
    thread: {
      id: string;
      resourceId: string;
      title: string;
      createdAt: Date;
      updatedAt: Date;
      metadata: Record<string, unknown>;
    };
  }): Promise<unknown>;
  saveMessages(args: { messages: MastraMessageV2[]; format: 'v2' }): Promise<unknown>;
  getMessages(args: { threadId: string; selectBy: { last: number }; format: 'v2' }): Promise<unknown[]>;
  close(): Promise<void>;
}
interface MastraPgModule {
  PostgresStore: new (config: { connectionString: string; max: number }) => MastraStore;
}

const ReadMessage = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.object({ parts: z.array(z.object({ type: z.string(), text: z.string().optional() })) }),
});

/**
 * Mastra's `PostgresStore` (`@mastra/pg`, the storage of Mastra's agent memory): a thread per
 * conversation (`saveThread`, when the conversation starts), then per turn `saveMessages` of the
 * user and assistant messages (format v2, one text part each), then `getMessages({selectBy: {last:
 * 40}})`. Schema by `init()`; pool of `poolSize` connections (`max`). `getMessages` answers `[]`
 * instead of throwing on a database error: the bench's check of what is read back counts it.
 */
export function mastraAdapter(peersDir: string): PeerAdapter {
  return {
    name: 'mastra',
    label: 'Mastra PostgresStore',
    mapping:
      'saveThread once per conversation (not timed), then saveMessages({messages: [user, assistant], format: v2}), then getMessages({threadId, selectBy: {last: 40}, format: v2}): 40 messages = 20 turns',
    versions: () => ['@mastra/pg', '@mastra/core'].map((p) => `${p}@${installedVersion(peersDir, p)}`),
    async open(url, poolSize) {
      const req = peersRequire(peersDir);
      const mastraPg = req('@mastra/pg') as MastraPgModule;
      expectFunctions('@mastra/pg', mastraPg, ['PostgresStore']);
      const store = new mastraPg.PostgresStore({ connectionString: url, max: poolSize });
      try {
        await store.init();
      } catch (error) {
        await store.close();
        throw error;
      }
      return {
        async conversation(id) {
          const resourceId = `user-${id}`;
          const now = new Date();
          await store.saveThread({
            thread: { id, resourceId, title: 'bench', createdAt: now, updatedAt: now, metadata: {} },
          });
          // Messages are ordered by createdAt: a strictly increasing clock per conversation.
          let clock = now.getTime();
          const message = (role: 'user' | 'assistant', text: string): MastraMessageV2 => ({
            id: randomUUID(),
            threadId: id,
            resourceId,
            role,
            createdAt: new Date((clock = Math.max(clock + 1, Date.now()))),
            type: 'v2',
            content: { format: 2, parts: [{ type: 'text', text }] },
          });
          return {
            async write(turn) {
              await store.saveMessages({
                messages: [message('user', turn.user), message('assistant', turn.assistant)],
                format: 'v2',
              });
              return store.getMessages({ threadId: id, selectBy: { last: 2 * LAST_TURNS }, format: 'v2' });
            },
            messagesOf(readBack): PeerMessage[] {
              return (readBack as unknown[]).map((m) => {
                const r = ReadMessage.parse(m);
                return { role: r.role, content: r.content.parts.map((p) => p.text ?? '').join('') };
              });
            },
          };
        },
        close: () => store.close(),
      };
    },
  };
}
