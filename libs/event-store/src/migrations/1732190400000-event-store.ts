import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The event store's tables. `events` is also the outbox (ARCHITECTURE rule 2); `transaction_id`
 * gives commit-safe tailing (rule 3, after Emmett's PostgreSQL store).
 */
export class EventStore1732190400000 implements MigrationInterface {
  name = 'EventStore1732190400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE events (
        global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
        stream_id       text        NOT NULL,
        stream_type     text        NOT NULL,
        stream_position bigint      NOT NULL,
        event_id        uuid        NOT NULL UNIQUE,
        event_type      text        NOT NULL,
        schema_version  int         NOT NULL,
        data            jsonb       NOT NULL,
        metadata        jsonb       NOT NULL,
        tenant_id       text        NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        UNIQUE (stream_id, stream_position)
      )`);
    await q.query(`CREATE INDEX events_commit_order ON events (transaction_id, global_position)`);
    await q.query(`
      CREATE TABLE streams (
        stream_id   text        PRIMARY KEY,
        stream_type text        NOT NULL,
        tenant_id   text        NOT NULL,
        version     bigint      NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        updated_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE idempotency_keys (
        tenant_id       text        NOT NULL,
        idempotency_key text        NOT NULL,
        request_hash    text        NOT NULL,
        reply           jsonb,
        created_at      timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, idempotency_key)
      )`);
    await q.query(`
      CREATE TABLE checkpoints (
        name            text        PRIMARY KEY,
        transaction_id  xid8        NOT NULL DEFAULT '0',
        global_position bigint      NOT NULL DEFAULT 0,
        updated_at      timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE projection_streams (
        projection text   NOT NULL,
        stream_id  text   NOT NULL,
        position   bigint NOT NULL,
        PRIMARY KEY (projection, stream_id)
      )`);
    await q.query(`
      CREATE TABLE dead_letters (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        consumer        text        NOT NULL,
        event_id        text,
        event_type      text,
        stream_id       text,
        global_position bigint,
        subject         text        NOT NULL,
        payload         text        NOT NULL,
        error           text        NOT NULL,
        attempts        int         NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        retried_at      timestamptz
      )`);
    await q.query(`CREATE INDEX dead_letters_consumer ON dead_letters (consumer, created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'dead_letters',
      'projection_streams',
      'checkpoints',
      'idempotency_keys',
      'streams',
      'events',
    ]) {
      await q.query(`DROP TABLE IF EXISTS ${t}`);
    }
  }
}
