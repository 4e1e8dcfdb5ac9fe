import { finished } from 'node:stream/promises';
import type { Pool, PoolClient, QueryConfig, QueryResult } from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import { DataSource, type MigrationInterface } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { trackPool, untrackPool } from './store-metrics';

/** Anything that runs SQL: the pool, or one transaction. Rows come back as plain objects (parse them). */
export interface Sql {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

/**
 * One transaction's connection: SQL, and bulk loads with `COPY ... FROM STDIN`, which Postgres parses
 * far more cheaply than a multi-row `INSERT` (PostgreSQL manual, 14.4 "Populating a Database": "Use
 * COPY"). Measured on this machine, 9,000 rows of 15 columns into a table with its primary key: COPY
 * 96-104 ms, `INSERT ... SELECT FROM json_to_recordset($1)` 163 ms (77 of them parsing the JSON).
 */
export interface SqlTransaction extends Sql {
  /**
   * `COPY table (columns) FROM STDIN` of `rows` (text format: each row an object with the columns'
   * keys; null and undefined are NULL; strings are escaped; numbers, bigints and booleans go as
   * `String()` writes them, so their columns parse them as SQL input, e.g. `1e-7` into numeric; a Date
   * goes as its ISO string, any other value as JSON text). `table` and `columns` are SQL identifiers
   * written into the statement as they are (never user input). Resolves to the rows copied; rejects
   * with Postgres's error (node-postgres's `DatabaseError`), which aborts the transaction.
   */
  copyFrom<R extends object>(
    table: string,
    columns: readonly (keyof R & string)[],
    rows: readonly R[],
  ): Promise<number>;
}

// COPY's text format (PostgreSQL manual, COPY, "Text Format"): backslash, newline, carriage return and
// tab within a value are written as backslash sequences; NULL is \N.
const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_SPECIALS = /[\\\n\r\t]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function copyText(value: string): string {
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c] ?? c) : value;
}

function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'string') return copyText(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return copyText(value instanceof Date ? value.toISOString() : JSON.stringify(value));
}

async function copyRows<R extends object>(
  client: PoolClient,
  table: string,
  columns: readonly (keyof R & string)[],
  rows: readonly R[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const lines: string[] = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as R;
    let line = copyField(row[columns[0] as keyof R]);
    for (let c = 1; c < columns.length; c++) line += '\t' + copyField(row[columns[c] as keyof R]);
    lines[i] = line;
  }
  const stream = client.query(copyFromStdin(`COPY ${table} (${columns.join(', ')}) FROM STDIN`));
  stream.end(lines.join('\n') + '\n');
  await finished(stream);
  return stream.rowCount;
}

type MigrationClass = new () => MigrationInterface;

/**
 * Distinct parameterized statements prepared per process; past it, statements run unnamed. Bounds
 * what dynamically built SQL (search filters, multi-row inserts) can leave prepared on each connection.
 */
const MAX_PREPARED_STATEMENTS = 500;

/**
 * Names of prepared statements by SQL text. A statement with parameters is sent as a named prepared
 * statement, so each pool connection parses and plans it once instead of on every call (node-postgres
 * prepares a name once per connection). Statements without parameters may hold several commands (DDL)
 * and are sent as they are.
 */
const preparedNames = new Map<string, string>();

function toQuery(text: string, params: readonly unknown[]): QueryConfig | string {
  if (params.length === 0) return text;
  let name = preparedNames.get(text);
  if (name === undefined && preparedNames.size < MAX_PREPARED_STATEMENTS) {
    name = `tl_${preparedNames.size + 1}`;
    preparedNames.set(text, name);
  }
  return name === undefined ? { text, values: [...params] } : { name, text, values: [...params] };
}

async function run<T>(client: Pool | PoolClient, text: string, params: readonly unknown[]): Promise<T[]> {
  const query = toQuery(text, params);
  type Row = Record<string, unknown>;
  const result = (
    typeof query === 'string' ? await client.query<Row>(query) : await client.query<Row>(query)
  ) as QueryResult<Row> | QueryResult<Row>[];
  // A multi-command text answers one result per command; callers want the last one's rows.
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  return (last?.rows ?? []) as T[];
}

/** Isolation level and access mode of a {@link Db.transaction} (Postgres's `BEGIN` options), and its plans. */
export interface TransactionOptions {
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
  readOnly?: boolean;
  /**
   * Plans for statements that find their rows by key, whatever the tables' size when planned: every
   * prepared statement of the transaction runs its generic plan (`plan_cache_mode =
   * force_generic_plan`: planned once per connection; Postgres otherwise keeps planning a statement
   * over arrays anew on every execution when its first five executions had short arrays, as a group
   * commit's first batches do), with sequential scans off (`enable_seqscan = off`: a generic plan made
   * while a table is nearly empty, as on a new database, would keep scanning it whole as it grows,
   * until the next ANALYZE). Both `SET LOCAL`, sent with the `BEGIN`: no extra round trip.
   */
  keyedPlans?: boolean;
}

function beginStatement(opts: TransactionOptions): string {
  const modes = [
    ...(opts.isolation ? [`ISOLATION LEVEL ${opts.isolation.toUpperCase()}`] : []),
    ...(opts.readOnly ? ['READ ONLY'] : []),
  ];
  const begin = modes.length === 0 ? 'BEGIN' : `BEGIN ${modes.join(', ')}`;
  // One simple query, several commands: the transaction starts with the settings in place.
  return opts.keyedPlans
    ? `${begin}; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off`
    : begin;
}

/** Where {@link Db} reports its connection losing and regaining Postgres (pino's and Nest's loggers fit). */
export interface DbLogger {
  info(message: string): void;
  warn(message: string): void;
}

/**
 * Default `idle_in_transaction_session_timeout` of our connections, ms: Postgres ends a session whose
 * transaction has been idle this long. Our transactions never wait on anything but their own statements,
 * so one idle for a minute belongs to a stalled process; ended, it stops holding back `pg_snapshot_xmin`
 * (every commit-safe tail waits for the oldest open transaction, ARCHITECTURE rule 3).
 */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

/**
 * A connection held by one caller ({@link Db.dedicated}). `lost` is the error that broke it, once it
 * broke (Postgres restarted or went away): a session advisory lock held on it is gone from then on, so
 * a leader must check it before acting as the leader; `query` then rejects with that error.
 */
export interface DedicatedConnection extends Sql {
  readonly lost: Error | undefined;
  release(): Promise<void>;
}

/**
 * Postgres access for the whole project. A TypeORM DataSource (driver `pg`) owns the pool, its
 * configuration and the versioned migrations; queries and transactions go straight to that pool's
 * `pg` clients: the event store is our core and its SQL is written by hand, and TypeORM's query runner
 * costs two extra round trips per transaction (`START TRANSACTION` then `SET TRANSACTION ISOLATION
 * LEVEL`) plus an allocation per query. Parameterized statements are prepared once per connection.
 * Errors are node-postgres's `DatabaseError` (SQLSTATE in `code`).
 */
export class Db implements Sql {
  /** A connection broke and no statement has succeeded since. */
  private down = false;

  private constructor(
    readonly dataSource: DataSource,
    private readonly pool: Pool,
    private readonly logger: DbLogger | undefined,
  ) {}

  /**
   * Connects a pool of `poolSize` connections to `url`. Each connection has
   * `idle_in_transaction_session_timeout` = `idleInTransactionTimeoutMs` (default
   * {@link IDLE_IN_TRANSACTION_TIMEOUT_MS}; 0 turns it off), so a transaction left open by a stalled
   * caller cannot hold back every commit-safe tail for ever, and TCP keep-alive, so a dead server is
   * noticed on idle connections. A connection that breaks (Postgres restarted, a network cut) never
   * crashes the process: the pool drops it and opens a new one on the next use; `logger` hears
   * `postgres connection lost` once per outage and `postgres connection restored` at the first
   * statement that succeeds after it. Throws when Postgres is unreachable.
   */
  static async connect(opts: {
    url: string;
    poolSize?: number;
    migrations?: MigrationClass[];
    applicationName?: string;
    idleInTransactionTimeoutMs?: number;
    logger?: DbLogger;
  }): Promise<Db> {
    // The Db is made after the pool; its error handlers, registered before, find it here.
    const made: { db?: Db } = {};
    const idleTimeout = opts.idleInTransactionTimeoutMs ?? IDLE_IN_TRANSACTION_TIMEOUT_MS;
    const dataSource = new DataSource({
      type: 'postgres',
      url: opts.url,
      poolSize: opts.poolSize ?? 10,
      migrations: opts.migrations ?? [],
      migrationsTableName: 'schema_migrations',
      migrationsTransactionMode: 'each',
      applicationName: opts.applicationName ?? 'threadline',
      logging: false,
      // An idle pooled connection that breaks: the pool drops it (TypeORM's default handler only logs).
      poolErrorHandler: (error: unknown) => made.db?.connectionLost(error),
      extra: {
        connectionTimeoutMillis: 5000,
        keepAlive: true,
        options: `-c idle_in_transaction_session_timeout=${idleTimeout}`,
      },
    });
    await dataSource.initialize();
    const pool = (dataSource.driver as PostgresDriver).master as Pool;
    const db = new Db(dataSource, pool, opts.logger);
    made.db = db;
    // A checked-out connection (a transaction, a dedicated one) has no listener of the pool's: without
    // ours, its 'error' event when the server goes away would be unhandled and end the process.
    const guarded = new WeakSet<PoolClient>();
    const onAcquire = (client: PoolClient) => {
      if (guarded.has(client)) return;
      guarded.add(client);
      client.on('error', (error: unknown) => db.connectionLost(error));
    };
    pool.on('acquire', onAcquire);
    trackPool(pool, opts.applicationName ?? 'threadline');
    return db;
  }

  private connectionLost(error: unknown): void {
    if (this.down) return;
    this.down = true;
    this.logger?.warn(
      `postgres connection lost (${error instanceof Error ? error.message : String(error)}); reconnecting`,
    );
  }

  private reachable(): void {
    if (!this.down) return;
    this.down = false;
    this.logger?.info('postgres connection restored');
  }

  /** Runs one statement (its own implicit transaction) on any pooled connection. */
  async query<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    const rows = await run<T>(this.pool, text, params);
    this.reachable();
    return rows;
  }

  /**
   * Runs `fn` in one transaction on one connection, READ COMMITTED (Postgres's default level) unless
   * `opts` say otherwise (set by the BEGIN itself: no extra round trip); commits when it resolves, rolls
   * back and rethrows when it throws.
   */
  async transaction<T>(fn: (tx: SqlTransaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(beginStatement(opts));
      const result = await fn({
        query: (text, params = []) => run(client, text, params),
        copyFrom: <R extends object>(
          table: string,
          columns: readonly (keyof R & string)[],
          rows: readonly R[],
        ) => copyRows(client, table, columns, rows),
      });
      await client.query('COMMIT');
      this.reachable();
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        // The connection is unusable (e.g. it was terminated): do not give it back to the pool.
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Holds one connection for the caller (advisory locks are per connection, and end with it; see
   * {@link DedicatedConnection}). `release` returns it to the pool, or drops it when it broke.
   */
  async dedicated(): Promise<DedicatedConnection> {
    const client = await this.pool.connect();
    let released = false;
    let lost: Error | undefined;
    const onError = (error: unknown) => {
      lost ??= error instanceof Error ? error : new Error(String(error));
    };
    client.on('error', onError);
    return {
      query: (text, params = []) => (lost ? Promise.reject(lost) : run(client, text, params)),
      get lost() {
        return lost;
      },
      release: () => {
        if (!released) {
          client.removeListener('error', onError);
          client.release(lost);
        }
        released = true;
        return Promise.resolve();
      },
    };
  }

  async close(): Promise<void> {
    untrackPool(this.pool);
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
