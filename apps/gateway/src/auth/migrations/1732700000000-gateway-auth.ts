import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The gateway's own tables (issue 7):
 *
 * - `api_keys`: one row per API key. Only `key_hash` (SHA-256 hex of the whole key) is stored, never
 *   the key; `key_prefix` (its first characters) helps people recognise a key in `npm run keys -- list`.
 *   `rate_limit` overrides `RATE_LIMIT_KEY_REQUESTS` for this key (null: the default).
 *   A revoked key keeps its row (`revoked_at`) for the audit trail.
 * - `auth_secrets`: secrets the gateway generated for itself (the user-token signing secret when
 *   `AUTH_TOKEN_SECRET` is unset), shared by every gateway instance of the database.
 * - `rate_limit_windows`: one fixed-window counter per bucket (`key:<key_id>`, `user:<tenant>:<user>`),
 *   shared by every gateway instance; `window_start` is the start of the current window (DB clock).
 */
export class GatewayAuth1732700000000 implements MigrationInterface {
  name = 'GatewayAuth1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_keys (
        key_id      text        PRIMARY KEY,
        tenant_id   text        NOT NULL,
        role        text        NOT NULL CHECK (role IN ('admin', 'service')),
        name        text        NOT NULL DEFAULT '',
        key_hash    text        NOT NULL UNIQUE,
        key_prefix  text        NOT NULL,
        rate_limit  integer     CHECK (rate_limit IS NULL OR rate_limit > 0),
        created_at  timestamptz NOT NULL DEFAULT now(),
        revoked_at  timestamptz
      )`);
    await q.query(`CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at)`);
    await q.query(`
      CREATE TABLE auth_secrets (
        name       text        PRIMARY KEY,
        secret     text        NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE rate_limit_windows (
        bucket       text        PRIMARY KEY,
        window_start timestamptz NOT NULL,
        count        integer     NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS rate_limit_windows`);
    await q.query(`DROP TABLE IF EXISTS auth_secrets`);
    await q.query(`DROP TABLE IF EXISTS api_keys`);
  }
}
