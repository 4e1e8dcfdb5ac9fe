import { z } from 'zod';
import {
  expectFunctions,
  installedVersion,
  peerPool,
  peersRequire,
  type PgModule,
  type PgPool,
} from './load';
import { LAST_TURNS, type PeerAdapter, type PeerMessage } from './types';

interface EmmettEvent {
  type: string;
  data: unknown;
}
interface EmmettStore {
  appendToStream(
    streamName: string,
    events: EmmettEvent[],
    options?: { expectedStreamVersion?: bigint | string },
  ): Promise<{ nextExpectedStreamVersion: bigint }>;
  readStream(
    streamName: string,
    options?: { from?: bigint; to?: bigint },
  ): Promise<{ events: EmmettEvent[] }>;
  schema: { migrate(): Promise<unknown> };
  close(): Promise<void>;
}
interface EmmettPostgresModule {
  getPostgreSQLEventStore(
    connectionString: string,
    options: { connectionOptions: { pool: PgPool }; schema: { autoMigration: 'None' } },
  ): EmmettStore;
}
interface EmmettModule {
  STREAM_DOES_NOT_EXIST: string;
}

const TurnData = z.object({
  messages: z.array(z.object({ role: z.enum(['user', 'assistant']), content: z.string() })),
});

/**
 * Emmett's PostgreSQL event store (`@event-driven-io/emmett-postgresql`): `appendToStream` of one
 * `TurnLogged` event holding both messages with the expected stream version, then `readStream` of
 * the last 20 positions (Emmett reads forward only, by `from`/`to` stream position; the writer knows
 * its stream's version from the append). Schema by `eventStore.schema.migrate()`; a node-postgres
 * pool of `poolSize` connections passed in `connectionOptions.pool`.
 */
export function emmettAdapter(peersDir: string): PeerAdapter {
  return {
    name: 'emmett',
    label: 'Emmett PostgreSQL event store',
    mapping:
      'appendToStream(stream, [TurnLogged {messages: [user, assistant]}], {expectedStreamVersion}), then readStream(stream, {from: version - 19, to: version}) (no backward read in Emmett): 20 events = 40 messages',
    versions: () =>
      ['@event-driven-io/emmett-postgresql', '@event-driven-io/emmett', 'pg'].map(
        (p) => `${p}@${installedVersion(peersDir, p)}`,
      ),
    async open(url, poolSize) {
      const req = peersRequire(peersDir);
      const pg = req('pg') as PgModule;
      const emmett = req('@event-driven-io/emmett') as EmmettModule;
      const emmettPg = req('@event-driven-io/emmett-postgresql') as EmmettPostgresModule;
      expectFunctions('@event-driven-io/emmett-postgresql', emmettPg, ['getPostgreSQLEventStore']);
      const pool = peerPool(pg, url, poolSize, 'bench-emmett');
      const store = emmettPg.getPostgreSQLEventStore(url, {
        connectionOptions: { pool },
        schema: { autoMigration: 'None' },
      });
      try {
        await store.schema.migrate();
      } catch (error) {
        await store.close();
        await pool.end();
        throw error;
      }
      return {
        conversation(id) {
          const stream = `conversation-${id}`;
          let version: bigint | undefined;
          return Promise.resolve({
            async write(turn) {
              const result = await store.appendToStream(
                stream,
                [
                  {
                    type: 'TurnLogged',
                    data: {
                      messages: [
                        { role: 'user', content: turn.user },
                        { role: 'assistant', content: turn.assistant },
                      ],
                    },
                  },
                ],
                { expectedStreamVersion: version ?? emmett.STREAM_DOES_NOT_EXIST },
              );
              version = result.nextExpectedStreamVersion;
              const from = version > BigInt(LAST_TURNS) ? version - BigInt(LAST_TURNS - 1) : 1n;
              return store.readStream(stream, { from, to: version });
            },
            messagesOf(readBack): PeerMessage[] {
              return (readBack as { events: EmmettEvent[] }).events.flatMap(
                (e) => TurnData.parse(e.data).messages,
              );
            },
          });
        },
        async close() {
          await store.close();
          await pool.end();
        },
      };
    },
  };
}
