import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CONVERSATION_CATEGORY, conversationStreamId, type EventEnvelope } from '@threadline/contracts';
import { Db, EventStore, eventStoreMigrations, migrate } from '@threadline/event-store';
import { LAST_TURNS, type PeerAdapter, type PeerMessage } from './types';

const TurnData = z.object({
  messages: z.array(z.object({ role: z.enum(['user', 'assistant']), content: z.string() })),
});

/**
 * Threadline's event store at library level, as the services call it: `EventStore.append` of one
 * `TurnLogged.v1` event holding both messages to the conversation's stream (numeric expected
 * version), then `readStream` backward with limit 20. The chat-log-service command path (session
 * lock, fold, inline `turns` projection) lives in an app, which tools may not import (module
 * boundaries); scenario 1 measures it over HTTP.
 */
export function threadlineAdapter(root: string): PeerAdapter {
  return {
    name: 'threadline',
    label: 'Threadline EventStore (library)',
    mapping:
      'EventStore.append(conversation stream, expected version, [TurnLogged.v1 {messages: [user, assistant]}]), then readStream(stream, {direction: backward, limit: 20}): 20 events = 40 messages',
    versions: () => [
      `@threadline/event-store (${z.object({ version: z.string() }).parse(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))).version})`,
    ],
    async open(url, poolSize) {
      const db = await Db.connect({
        url,
        poolSize,
        migrations: eventStoreMigrations,
        applicationName: 'threadline-bench-peers',
      });
      await migrate(db);
      const store = new EventStore(db);
      const metadata = { tenantId: 'bench' };
      return {
        conversation(id) {
          const streamId = conversationStreamId('bench', id);
          let version = 0;
          return Promise.resolve({
            async write(turn) {
              const result = await store.append(
                streamId,
                CONVERSATION_CATEGORY,
                version,
                [
                  {
                    type: 'TurnLogged.v1',
                    data: {
                      messages: [
                        { role: 'user', content: turn.user },
                        { role: 'assistant', content: turn.assistant },
                      ],
                    },
                  },
                ],
                { metadata },
              );
              version = result.nextExpectedVersion;
              return store.readStream(streamId, { direction: 'backward', limit: LAST_TURNS });
            },
            messagesOf(readBack): PeerMessage[] {
              return (readBack as EventEnvelope[])
                .slice()
                .reverse()
                .flatMap((e) => TurnData.parse(e.data).messages);
            },
          });
        },
        close: () => db.close(),
      };
    },
  };
}
