import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Drops `api_keys.key_prefix`: it kept the first six secret characters of every key in clear, and
 * `npm run keys -- list` printed them, although a key is shown once and never again. A key is
 * recognised by its public `key_id` (and `name`) instead. `down` brings the column back holding
 * only the public `tlk_` prefix: the secret characters are gone for good.
 */
export class DropKeyPrefix1796600000000 implements MigrationInterface {
  name = 'DropKeyPrefix1796600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE api_keys DROP COLUMN key_prefix`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE api_keys ADD COLUMN key_prefix text NOT NULL DEFAULT 'tlk_'`);
  }
}
