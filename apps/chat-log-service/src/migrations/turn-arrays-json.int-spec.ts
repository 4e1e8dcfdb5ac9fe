import { randomBytes } from 'node:crypto';
import { Db, ensureDatabase, eventStoreMigrations, migrate } from '@threadline/event-store';
import { dropDatabase, testDatabaseAdminUrl } from '@threadline/testing';
import { Turns1732400000000 } from './1732400000000-turns';
import { chatLogMigrations } from './index';

// The migration against the real Postgres: rows written while the arrays were jsonb keep their content.

const responses = [
  {
    agent_name: 'a',
    response: 'line 1\nline "2" café ☕',
    cost_usd: 0.0000846,
    usage: { input_tokens: 412 },
  },
  { agent_name: 'b', response: null, cost_usd: 0, usage: {} },
];
const toolCalls = [
  { tool_call_id: 'c1', name: 'lookup', request: { q: [1, null, { x: [] }] }, status: 'completed' },
];

describe('migration TurnArraysJson1733010000000', () => {
  it('turns the arrays into json, keeping each row content, and new rows get json defaults', async () => {
    const url = new URL(testDatabaseAdminUrl());
    url.pathname = `/tl_test_turn_arrays_${randomBytes(6).toString('hex')}`;
    await ensureDatabase(url.toString());
    const before = await Db.connect({
      url: url.toString(),
      poolSize: 1,
      migrations: [...eventStoreMigrations, Turns1732400000000],
    });
    let after: Db | undefined;
    const insert = (db: Db, turnId: string, arrays: boolean) =>
      db.query(
        `INSERT INTO turns (tenant_id, turn_id, session_id, conversation_turn, user_input, status, started_at,
                            updated_at, version, last_global_position${arrays ? ', agent_responses, tool_calls' : ''})
         VALUES ('t', $1, 's', $2, 'hi', 'completed', now(), now(), 1, 1${arrays ? ', $3, $4' : ''})`,
        arrays
          ? [turnId, turnId === 'old' ? 1 : 2, JSON.stringify(responses), JSON.stringify(toolCalls)]
          : [turnId, 2],
      );
    try {
      await migrate(before);
      await insert(before, 'old', true);
      await before.close();

      after = await Db.connect({
        url: url.toString(),
        poolSize: 1,
        migrations: [...eventStoreMigrations, ...chatLogMigrations],
      });
      expect(await migrate(after)).toEqual(['TurnArraysJson1733010000000']);
      const types = await after.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns
         WHERE table_name = 'turns' AND column_name IN ('agent_responses', 'tool_calls') ORDER BY column_name`,
      );
      expect(types).toEqual([
        { column_name: 'agent_responses', data_type: 'json' },
        { column_name: 'tool_calls', data_type: 'json' },
      ]);
      await insert(after, 'new', false);
      const rows = await after.query(
        'SELECT turn_id, agent_responses, tool_calls FROM turns ORDER BY turn_id',
      );
      expect(rows).toEqual([
        { turn_id: 'new', agent_responses: [], tool_calls: [] },
        { turn_id: 'old', agent_responses: responses, tool_calls: toolCalls },
      ]);
    } finally {
      await before.close().catch(() => undefined);
      await after?.close();
      await dropDatabase(url.toString());
    }
  });
});
