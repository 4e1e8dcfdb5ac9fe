import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The `turns` read model of the chat-log-service, written inline with each conversation append (see
 * `turns.projection.ts`): one row per turn not deleted, in the shape the API returns (`agent_responses`
 * and `tool_calls` as JSON arrays of the view objects, usage totals and `cost_usd` summed over the
 * responses). `version` is the conversation stream position of the last event applied to the row,
 * `last_global_position` its global position.
 *
 * `turn_ids` remembers every turn id ever used in a tenant, its session, and whether the turn was
 * deleted (alone or with its session): a given `turn_id` is unique per tenant (TURN.ALREADY_EXISTS),
 * and replaying a deleted turn's first event never brings its row back.
 *
 * Indexes: a session's turns by number (unique: numbering has no duplicates), a user's turns newest
 * first, exact `user_input` lookups per user (on `md5(user_input)`: a btree entry is limited to about
 * 2.7 kB and inputs may be 100,000 characters; queries compare both the hash and the text), and
 * full-text search over `user_input` (generated `search_tsv`, english configuration, GIN).
 */
export class Turns1732400000000 implements MigrationInterface {
  name = 'Turns1732400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE turns (
        tenant_id            text        NOT NULL,
        turn_id              text        NOT NULL,
        session_id           text        NOT NULL,
        user_id              text,
        conversation_turn    integer     NOT NULL CHECK (conversation_turn >= 1),
        user_input           text        NOT NULL,
        agent_responses      jsonb       NOT NULL DEFAULT '[]'::jsonb,
        tool_calls           jsonb       NOT NULL DEFAULT '[]'::jsonb,
        input_tokens         bigint      NOT NULL DEFAULT 0,
        output_tokens        bigint      NOT NULL DEFAULT 0,
        cached_tokens        bigint      NOT NULL DEFAULT 0,
        reasoning_tokens     bigint      NOT NULL DEFAULT 0,
        total_tokens         bigint      NOT NULL DEFAULT 0,
        cost_usd             numeric     NOT NULL DEFAULT 0,
        status               text        NOT NULL CHECK (status IN ('in_progress', 'completed', 'failed')),
        error                text,
        vector_cache_hit     boolean     NOT NULL DEFAULT false,
        processing_time_ms   integer,
        started_at           timestamptz NOT NULL,
        completed_at         timestamptz,
        updated_at           timestamptz NOT NULL,
        version              bigint      NOT NULL,
        last_global_position bigint      NOT NULL,
        search_tsv           tsvector    GENERATED ALWAYS AS (to_tsvector('english'::regconfig, user_input)) STORED,
        PRIMARY KEY (tenant_id, turn_id)
      )`);
    await q.query(
      `CREATE UNIQUE INDEX turns_session_number ON turns (tenant_id, session_id, conversation_turn)`,
    );
    await q.query(
      `CREATE INDEX turns_user_started ON turns (tenant_id, user_id, started_at DESC, turn_id DESC)`,
    );
    await q.query(`CREATE INDEX turns_user_input ON turns (tenant_id, user_id, md5(user_input))`);
    await q.query(`CREATE INDEX turns_search ON turns USING gin (search_tsv)`);
    await q.query(`
      CREATE TABLE turn_ids (
        tenant_id  text    NOT NULL,
        turn_id    text    NOT NULL,
        session_id text    NOT NULL,
        deleted    boolean NOT NULL DEFAULT false,
        PRIMARY KEY (tenant_id, turn_id)
      )`);
    await q.query(`CREATE INDEX turn_ids_session ON turn_ids (tenant_id, session_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS turn_ids`);
    await q.query(`DROP TABLE IF EXISTS turns`);
  }
}
