import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';

/** Anything that runs SQL: the pool, or one transaction. Rows come back as plain objects (parse them). */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

type MigrationClass = new () => MigrationInterface;

/**
 * Postgres access for the whole project: a TypeORM DataSource (driver `pg`) used for its pool,
 * transactions and versioned migrations, with raw SQL on top; the event store is our core and
 * its SQL is written by hand.
 */
export class Db implements Sql {
  private constructor(readonly dataSource: DataSource) {}

  /** Connects a pool of `poolSize` connections to `url`. Throws when Postgres is unreachable. */
  static async connect(opts: {
    url: string;
    poolSize?: number;
    migrations?: MigrationClass[];
    applicationName?: string;
  }): Promise<Db> {
    const dataSource = new DataSource({
      type: 'postgres',
      url: opts.url,
      poolSize: opts.poolSize ?? 10,
      migrations: opts.migrations ?? [],
      migrationsTableName: 'schema_migrations',
      migrationsTransactionMode: 'each',
      applicationName: opts.applicationName ?? 'threadline',
      logging: false,
      extra: { connectionTimeoutMillis: 5000 },
    });
    await dataSource.initialize();
    return new Db(dataSource);
  }

  async query<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const runner = this.dataSource.createQueryRunner();
    try {
      return await runQuery<T>(runner, text, params);
    } finally {
      await runner.release();
    }
  }

  /**
   * Runs `fn` in one READ COMMITTED transaction on one connection; commits when it resolves,
   * rolls back and rethrows when it throws.
   */
  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction('READ COMMITTED');
    try {
      const result = await fn({ query: (text, params = []) => runQuery(runner, text, params) });
      await runner.commitTransaction();
      return result;
    } catch (error) {
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      throw error;
    } finally {
      await runner.release();
    }
  }

  /**
   * Holds one connection for the caller (advisory locks are per connection). `release` returns it.
   */
  async dedicated(): Promise<Sql & { release(): Promise<void> }> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    return {
      query: (text, params = []) => runQuery(runner, text, params),
      release: () => runner.release(),
    };
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

// TypeORM's plain query() returns [rows, count] for UPDATE/DELETE; the structured result is uniform.
async function runQuery<T>(runner: QueryRunner, text: string, params: readonly unknown[]): Promise<T[]> {
  const result = await runner.query(text, [...params], true);
  return result.records as T[];
}
