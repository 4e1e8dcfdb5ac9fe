import { z } from 'zod';
import { EMPTY_SESSION_CONTEXT } from '@threadline/contracts';
import { Db, ensureDatabase } from '@threadline/event-store';
import { HttpClient } from './http-client';
import { databaseUrlFor, dropDatabase, startStack } from './stack';
import { nowMs } from './stats';
import type { TurnPool } from './turns';

/** The dataset of scenarios 6 and 7 (what `--seed-*` ask for). */
export interface SeedParams {
  /** Seeded sessions (besides the templates). */
  sessions: number;
  /** Mean turns per seeded session: sessions are paired, one gets `a` turns and the other `2m - a` (a pseudo-random in 0..2m). */
  turnsPerSession: number;
  /** Users the seeded sessions belong to (`seed-user-<n mod users>`). */
  users: number;
  /** Sessions of one turn each written through the running services, whose rows the seeded ones copy. */
  templates: number;
}

export interface SeedOptions {
  /** Repository root (where `dist/` is). */
  root: string;
  postgresUrl: string;
  natsUrl: string;
  /** Tag of the stack started for the templates (its stream and subject prefix). */
  runTag: string;
  /** Database holding (or to hold) the dataset. */
  databaseName: string;
  params: SeedParams;
  /** The bench's turns; the first `params.templates` become the templates. */
  turns: TurnPool;
  poolSize: number;
  log: (line: string) => void;
}

/** What {@link ensureSeeded} found or made. Times in seconds. */
export interface SeedResult {
  databaseName: string;
  /** True when the database already held a complete dataset of the same parameters (nothing seeded now). */
  reused: boolean;
  params: SeedParams;
  /** Seconds of each seeding phase of the run that made the dataset (also reported when reused). */
  phases: {
    templates: number;
    sql: number;
    vacuum: number;
    total: number;
  };
  /** Seeded events per second of the SQL phase (events, streams and the inline read models together). */
  sqlEventsPerSecond: number;
  counts: { events: number; sessions: number; turns: number; users: number; databaseMb: number };
}

/** The marker row: the dataset's parameters, and `completed_at` once everything is built. */
const MARKER_DDL = `CREATE TABLE IF NOT EXISTS bench_seed (
  id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  params jsonb NOT NULL,
  phases jsonb,
  sql_events_per_second integer,
  completed_at timestamptz
)`;

const Marker = z.object({
  params: z.object({
    sessions: z.number().int(),
    turnsPerSession: z.number().int(),
    users: z.number().int(),
    templates: z.number().int(),
  }),
  phases: z
    .object({
      templates: z.number(),
      sql: z.number(),
      vacuum: z.number(),
      total: z.number(),
    })
    .nullable(),
  sql_events_per_second: z.number().int().nullable(),
  completed_at: z.date().nullable(),
});

const Counts = z.object({
  events: z.coerce.number().int(),
  sessions: z.coerce.number().int(),
  turns: z.coerce.number().int(),
  users: z.coerce.number().int(),
  bytes: z.coerce.number().int(),
});

const SessionCreatedReply = z.union([
  z.object({ session_id: z.string() }),
  z.object({ session: z.object({ session_id: z.string() }) }),
]);

/** The tenant of the bench's API key (every seeded stream and row). */
const TENANT = 'default';
const TEMPLATE_USER = 'seed-template';
/** Sessions per seeding transaction (about 11 events each at the default 10 turns per session). */
const CHUNK_SESSIONS = 2_000;
/** Seeding transactions in flight (one per core of the 2-core target machine). */
const WORKERS = 2;

/** `ts` as `Date.prototype.toISOString` writes it (how every time in event data is written). */
const iso = (ts: string) => `to_char(${ts} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

async function databaseExists(postgresUrl: string, name: string): Promise<boolean> {
  const admin = await Db.connect({
    url: databaseUrlFor(postgresUrl, 'postgres'),
    poolSize: 1,
    applicationName: 'threadline-bench',
  });
  try {
    return (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;
  } finally {
    await admin.close();
  }
}

async function readMarker(url: string): Promise<z.infer<typeof Marker> | null | 'foreign'> {
  const db = await Db.connect({ url, poolSize: 1, applicationName: 'threadline-bench-seed' });
  try {
    const [table] = await db.query<{ t: string | null }>(
      `SELECT to_regclass('public.bench_seed')::text AS t`,
    );
    if (!table?.t) {
      const [events] = await db.query<{ t: string | null }>(`SELECT to_regclass('public.events')::text AS t`);
      return events?.t ? 'foreign' : null;
    }
    const [row] = await db.query(
      'SELECT params, phases, sql_events_per_second, completed_at FROM bench_seed',
    );
    return row ? Marker.parse(row) : null;
  } finally {
    await db.close();
  }
}

async function countDataset(db: Db, name: string): Promise<SeedResult['counts']> {
  const [row] = await db.query(
    `SELECT (SELECT count(*) FROM events) AS events,
            (SELECT count(*) FROM sessions) AS sessions,
            (SELECT count(*) FROM turns) AS turns,
            (SELECT count(DISTINCT user_id) FROM sessions) AS users,
            pg_database_size($1) AS bytes`,
    [name],
  );
  const c = Counts.parse(row);
  return {
    events: c.events,
    sessions: c.sessions,
    turns: c.turns,
    users: c.users,
    databaseMb: Math.round(c.bytes / 1024 / 1024),
  };
}

const sameParams = (a: SeedParams, b: SeedParams) =>
  a.sessions === b.sessions &&
  a.turnsPerSession === b.turnsPerSession &&
  a.users === b.users &&
  a.templates === b.templates;

/**
 * The dataset of scenarios 6 and 7 in database `databaseName`: reused when it already holds a
 * complete one of the same parameters, otherwise (re)made:
 *
 * 1. Templates: the whole stack runs on the database; `templates` sessions (user `seed-template`) get one
 *    whole turn each through the gateway (`POST /sessions`, `POST /sessions/{id}/turns`, bodies of the
 *    bench's turns), and the session_context projection applies them. Their events, `turns` rows and
 *    session contexts are what the services themselves wrote; the stack is then stopped.
 * 2. SQL, `WORKERS` transactions of `CHUNK_SESSIONS` sessions at a time: per seeded session one
 *    `SessionCreated.v1` on `session:default:<uuid>` and its `TurnLogged.v1` events on
 *    `conversation:default:<uuid>` (a template's data with new turn id, session, user, number, times and
 *    tool-call id; metadata `{tenantId, userId, correlationId}` as the gateway's writes carry), in time
 *    order within the transaction; their `streams` rows; and the rows the writers' inline projections
 *    and the session_context projection would have left: `sessions` (with `turn_count`, `context`,
 *    `context_turn` and `last_activity_at` of its last turn, copied from that turn's template session),
 *    `turns` (the template's row with the turn's ids, number, times, positions), `turn_ids`, and
 *    session_context's `projection_streams` rows and checkpoint. Those three read models have no rebuild
 *    path to run here (no CLI; a `ProjectionRunner` replay applies one event per statement).
 * 3. The relay checkpoint is set to the head: the seeded events' consumers are brought up to date
 *    directly (above, and by the analytics rebuilds), so publishing them to JetStream would only replay
 *    1M already-applied messages into the next stack's fresh stream.
 * 4. `VACUUM ANALYZE` of the tables written (visibility map, statistics: a steady-state database).
 *    The analytics projection `usage_stats` is left to the caller (scenario 6 is its rebuild).
 *
 * Throws when `databaseName` exists but is not a bench seed database, or holds one of other
 * parameters; when the stack cannot start or a template cannot be written.
 */
export async function ensureSeeded(opts: SeedOptions): Promise<SeedResult> {
  const { params, log } = opts;
  const url = databaseUrlFor(opts.postgresUrl, opts.databaseName);
  if (await databaseExists(opts.postgresUrl, opts.databaseName)) {
    const marker = await readMarker(url);
    if (marker === 'foreign')
      throw new Error(
        `database ${opts.databaseName} exists and is not a bench seed database: choose another --seed-db`,
      );
    if (marker && !sameParams(marker.params, params))
      throw new Error(
        `database ${opts.databaseName} holds a dataset seeded with ${JSON.stringify(marker.params)}; ` +
          `pass the same --seed-* options, or drop it (DROP DATABASE ${opts.databaseName})`,
      );
    if (marker?.completed_at && marker.phases) {
      const db = await Db.connect({ url, poolSize: 1, applicationName: 'threadline-bench-seed' });
      try {
        const counts = await countDataset(db, opts.databaseName);
        log(
          `reusing dataset ${opts.databaseName} (seeded ${marker.completed_at.toISOString()}): ${counts.events} events, ${counts.sessions} sessions, ${counts.turns} turns`,
        );
        return {
          databaseName: opts.databaseName,
          reused: true,
          params,
          phases: marker.phases,
          sqlEventsPerSecond: marker.sql_events_per_second ?? 0,
          counts,
        };
      } finally {
        await db.close();
      }
    }
    log(`database ${opts.databaseName} holds an unfinished seed: dropping it and seeding again`);
    await dropDatabase(opts.postgresUrl, opts.databaseName);
  }

  const t0 = nowMs();
  await ensureDatabase(url);
  {
    const db = await Db.connect({ url, poolSize: 1, applicationName: 'threadline-bench-seed' });
    try {
      await db.query(MARKER_DDL);
      await db.query('INSERT INTO bench_seed (params) VALUES ($1::jsonb)', [JSON.stringify(params)]);
    } finally {
      await db.close();
    }
  }

  // 1. Templates, written by the services.
  const templateCount = Math.min(params.templates, opts.turns.bodies.length);
  if (templateCount < params.templates)
    throw new Error(`only ${opts.turns.bodies.length} turns to make ${params.templates} templates of`);
  log(`seeding ${opts.databaseName}: starting the stack to write ${templateCount} template turns...`);
  const stack = await startStack({
    root: opts.root,
    postgresUrl: opts.postgresUrl,
    natsUrl: opts.natsUrl,
    runTag: opts.runTag,
    poolSize: opts.poolSize,
    profile: [],
    profileDir: '',
    databaseName: opts.databaseName,
    keepDatabase: true,
    env: SEED_STACK_ENV,
  });
  try {
    const client = new HttpClient(stack.baseUrl, stack.apiKey, 4);
    try {
      for (let j = 0; j < templateCount; j++) {
        const created = await client.send(
          'POST',
          '/sessions',
          Buffer.from(
            JSON.stringify({ user_id: TEMPLATE_USER, title: `seed template ${j}`, created_from: 'bench' }),
          ),
        );
        if (created.status !== 201)
          throw new Error(`POST /sessions answered ${created.status}: ${created.body.slice(0, 300)}`);
        const reply = SessionCreatedReply.parse(JSON.parse(created.body));
        const sessionId = 'session_id' in reply ? reply.session_id : reply.session.session_id;
        const turn = await client.send('POST', `/sessions/${sessionId}/turns`, opts.turns.bodies[j]);
        if (turn.status !== 201)
          throw new Error(
            `POST /sessions/${sessionId}/turns answered ${turn.status}: ${turn.body.slice(0, 300)}`,
          );
      }
    } finally {
      client.close();
    }
    const db = await Db.connect({ url, poolSize: 1, applicationName: 'threadline-bench-seed' });
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const [row] = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM sessions WHERE tenant_id = $1 AND user_id = $2 AND turn_count = 1`,
          [TENANT, TEMPLATE_USER],
        );
        if (Number(row?.n) === templateCount) break;
        if (Date.now() > deadline)
          throw new Error(`session_context did not apply the ${templateCount} template turns within 60 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await db.close();
    }
  } catch (error) {
    const output = stack.report();
    await stack.stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n${output.slice(-4000)}`);
  }
  await stack.stop();
  const templatesS = (nowMs() - t0) / 1000;

  // 2. SQL.
  const db = await Db.connect({ url, poolSize: WORKERS + 1, applicationName: 'threadline-bench-seed' });
  try {
    const t1 = nowMs();
    await prepareSeed(db, params, templateCount);
    const chunks: [number, number][] = [];
    for (let lo = 0; lo < params.sessions; lo += CHUNK_SESSIONS)
      chunks.push([lo, Math.min(params.sessions, lo + CHUNK_SESSIONS)]);
    let next = 0;
    let done = 0;
    let seededEvents = 0;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        for (let c = next++; c < chunks.length; c = next++) {
          const [lo, hi] = chunks[c]!;
          const appended = await seedChunk(db, lo, hi, templateCount);
          seededEvents += appended; // after the await: `x += await f()` would add to a stale x
          done++;
          if (done % 10 === 0 || done === chunks.length)
            log(
              `  seeded ${done}/${chunks.length} chunks, ${seededEvents} events, ${Math.round(seededEvents / ((nowMs() - t1) / 1000))} events/s`,
            );
        }
      }),
    );
    await finishSeed(db);
    const sqlS = (nowMs() - t1) / 1000;

    // 4. Statistics and visibility, as a database in steady state has them.
    const t2 = nowMs();
    for (const table of [
      'events',
      'streams',
      'sessions',
      'turns',
      'turn_ids',
      'projection_streams',
      'checkpoints',
    ])
      await db.query(`VACUUM (ANALYZE) ${table}`);
    const vacuumS = (nowMs() - t2) / 1000;
    log(`  vacuum analyze: ${vacuumS.toFixed(1)} s`);

    const phases = {
      templates: round1(templatesS),
      sql: round1(sqlS),
      vacuum: round1(vacuumS),
      total: round1((nowMs() - t0) / 1000),
    };
    const sqlEventsPerSecond = Math.round(seededEvents / sqlS);
    await db.query(
      `UPDATE bench_seed SET phases = $1::jsonb, sql_events_per_second = $2, completed_at = now()`,
      [JSON.stringify(phases), sqlEventsPerSecond],
    );
    const counts = await countDataset(db, opts.databaseName);
    log(
      `seeded ${counts.events} events (${counts.sessions} sessions, ${counts.turns} turns, ${counts.databaseMb} MB) in ${phases.total} s ` +
        `(templates ${phases.templates} s, SQL ${phases.sql} s = ${sqlEventsPerSecond} events/s, vacuum ${phases.vacuum} s)`,
    );
    return { databaseName: opts.databaseName, reused: false, params, phases, sqlEventsPerSecond, counts };
  } finally {
    await db.close();
  }
}

/** Environment of the stacks on a seeded database: sessions of last month must not expire under the reads. */
export const SEED_STACK_ENV: NodeJS.ProcessEnv = { SESSION_TIMEOUT_HOURS: '87600' };

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The templates (checked: one tool call each) and the plan of the seeded sessions. */
async function prepareSeed(db: Db, params: SeedParams, templates: number): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS bench_seed_templates, bench_seed_plan`);
  await db.query(
    `CREATE UNLOGGED TABLE bench_seed_templates AS
     SELECT (row_number() OVER (ORDER BY e.global_position) - 1)::int AS j, e.data::jsonb AS data, t.turn_id,
            s.context, s.context_turn
     FROM events e
     JOIN turns t ON t.tenant_id = e.tenant_id AND t.turn_id = e.data->>'turnId'
     JOIN sessions s ON s.tenant_id = e.tenant_id AND s.session_id = e.data->>'sessionId'
     WHERE e.event_type = 'TurnLogged.v1' AND e.tenant_id = $1 AND s.user_id = $2`,
    [TENANT, TEMPLATE_USER],
  );
  const [check] = await db.query<{ n: string; bad: string }>(
    `SELECT count(*) AS n,
            count(*) FILTER (WHERE jsonb_array_length(x.data->'toolCalls') <> 1
                               OR json_array_length(t.tool_calls) <> 1) AS bad
     FROM bench_seed_templates x JOIN turns t ON t.tenant_id = $1 AND t.turn_id = x.turn_id`,
    [TENANT],
  );
  if (Number(check?.n) !== templates || Number(check?.bad) !== 0)
    throw new Error(
      `templates: expected ${templates} turns with one tool call each, found ${check?.n} (${check?.bad} without exactly one)`,
    );
  await db.query(`ALTER TABLE bench_seed_templates ADD PRIMARY KEY (j)`);
  // Sessions every 30 days / sessions over the last 30 days; turn counts in pairs (a, 2m - a).
  const m = params.turnsPerSession;
  await db.query(
    `CREATE UNLOGGED TABLE bench_seed_plan AS
     SELECT n, gen_random_uuid()::text AS session_id, 'seed-user-' || (n % $2::int) AS user_id,
            (CASE WHEN n % 2 = 0 AND n = $1::int - 1 THEN $3::int
                  WHEN n % 2 = 0 THEN abs(hashint4(n / 2)) % (2 * $3::int + 1)
                  ELSE 2 * $3::int - abs(hashint4(n / 2)) % (2 * $3::int + 1) END)::int AS turns,
            date_trunc('milliseconds', now() - interval '30 days' + n * (interval '30 days' / $1::int)) AS created_at
     FROM generate_series(0, $1::int - 1) n`,
    [params.sessions, params.users, m],
  );
  await db.query(`ALTER TABLE bench_seed_plan ADD PRIMARY KEY (n)`);
}

/**
 * Seeds sessions `lo` to `hi - 1` of the plan in one transaction (see {@link ensureSeeded}, step 2).
 * Returns the number of events appended.
 */
async function seedChunk(db: Db, lo: number, hi: number, templates: number): Promise<number> {
  return db.transaction(async (sql) => {
    await sql.query(`SET LOCAL synchronous_commit = off`);
    // One row per turn: ids, time (45 s apart plus up to 30 s), template.
    await sql.query(
      `CREATE TEMP TABLE st ON COMMIT DROP AS
       SELECT p.n, p.session_id, p.user_id, k, gen_random_uuid()::text AS turn_id,
              gen_random_uuid()::text AS tool_call_id,
              p.created_at + k * interval '45 seconds'
                + (abs(hashint8(-(p.n::bigint * 1000 + k))) % 30000) * interval '1 millisecond' AS at,
              (abs(hashint8(p.n::bigint * 1000 + k)) % $3)::int AS j
       FROM bench_seed_plan p CROSS JOIN LATERAL generate_series(1, p.turns) k
       WHERE p.n >= $1 AND p.n < $2`,
      [lo, hi, templates],
    );
    await sql.query(
      `CREATE TEMP TABLE pos ON COMMIT DROP AS
       WITH ins AS (
         INSERT INTO events (stream_id, stream_type, stream_position, event_id, event_type, schema_version,
                             data, metadata, tenant_id, created_at)
         SELECT stream_id, stream_type, stream_position, gen_random_uuid(), event_type, 1, data,
                jsonb_build_object('tenantId', $3::text, 'userId', user_id, 'correlationId', gen_random_uuid()::text),
                $3::text, at
         FROM (
           SELECT 'session:' || $3::text || ':' || p.session_id AS stream_id, 'session' AS stream_type,
                  1 AS stream_position, 'SessionCreated.v1' AS event_type, p.user_id, p.created_at AS at, p.n, 0 AS k,
                  jsonb_build_object('sessionId', p.session_id, 'userId', p.user_id, 'title', 'seed ' || p.n,
                                     'metadata', '{}'::jsonb, 'createdFrom', 'bench',
                                     'startedAt', ${iso('p.created_at')}) AS data
           FROM bench_seed_plan p WHERE p.n >= $1 AND p.n < $2
           UNION ALL
           SELECT 'conversation:' || $3::text || ':' || st.session_id, 'conversation', st.k, 'TurnLogged.v1',
                  st.user_id, st.at, st.n, st.k,
                  jsonb_set(t.data, '{toolCalls,0,toolCallId}', to_jsonb(st.tool_call_id))
                    || jsonb_build_object('turnId', st.turn_id, 'sessionId', st.session_id, 'userId', st.user_id,
                                          'conversationTurn', st.k, 'startedAt', ${iso('st.at')},
                                          'completedAt', ${iso('st.at')})
           FROM st JOIN bench_seed_templates t USING (j)
         ) x
         ORDER BY at, n, k
         RETURNING global_position, stream_type, stream_id, stream_position
       )
       SELECT * FROM ins`,
      [lo, hi, TENANT],
    );
    await sql.query(`CREATE INDEX ON pos (stream_id, stream_position)`);
    await sql.query(`ANALYZE st`);
    await sql.query(`ANALYZE pos`);
    await sql.query(
      `INSERT INTO streams (stream_id, stream_type, tenant_id, version, created_at, updated_at)
       SELECT 'session:' || $3::text || ':' || session_id, 'session', $3::text, 1, created_at, created_at
       FROM bench_seed_plan WHERE n >= $1 AND n < $2
       UNION ALL
       SELECT 'conversation:' || $3::text || ':' || session_id, 'conversation', $3::text, max(k), min(at), max(at)
       FROM st GROUP BY session_id`,
      [lo, hi, TENANT],
    );
    // sessions: the inline SessionsProjection's row for SessionCreated, then session_context's columns
    // after the last turn (its template session's context with this turn's id).
    await sql.query(
      `INSERT INTO sessions (tenant_id, session_id, user_id, title, status, metadata, created_from, created_at,
                             updated_at, last_activity_at, ended_at, version, last_global_position, turn_count,
                             context, context_turn)
       SELECT $3::text, p.session_id, p.user_id, 'seed ' || p.n, 'active', '{}'::jsonb, 'bench', p.created_at,
              p.created_at, GREATEST(p.created_at, l.at), NULL, 1, pos.global_position, p.turns,
              COALESCE(t.context, $4::jsonb), COALESCE(t.context_turn || jsonb_build_object('turnId', l.turn_id), '{}'::jsonb)
       FROM bench_seed_plan p
       JOIN pos ON pos.stream_id = 'session:' || $3::text || ':' || p.session_id AND pos.stream_position = 1
       LEFT JOIN st l ON l.n = p.n AND l.k = p.turns
       LEFT JOIN bench_seed_templates t ON t.j = l.j
       WHERE p.n >= $1 AND p.n < $2`,
      [lo, hi, TENANT, JSON.stringify(EMPTY_SESSION_CONTEXT)],
    );
    // turns: the inline TurnsProjection's row of the template turn, with this turn's ids, number, times
    // (tool calls' updated_at is the turn's completedAt) and positions.
    await sql.query(
      `INSERT INTO turns (tenant_id, turn_id, session_id, user_id, conversation_turn, user_input, agent_responses,
                          tool_calls, input_tokens, output_tokens, cached_tokens, reasoning_tokens, total_tokens,
                          cost_usd, status, error, vector_cache_hit, processing_time_ms, started_at, completed_at,
                          updated_at, version, last_global_position)
       SELECT $1::text, st.turn_id, st.session_id, st.user_id, st.k, tt.user_input, tt.agent_responses,
              jsonb_set(jsonb_set(tt.tool_calls::jsonb, '{0,tool_call_id}', to_jsonb(st.tool_call_id)),
                        '{0,updated_at}', to_jsonb(${iso('st.at')})),
              tt.input_tokens, tt.output_tokens, tt.cached_tokens, tt.reasoning_tokens, tt.total_tokens,
              tt.cost_usd, tt.status, tt.error, tt.vector_cache_hit, tt.processing_time_ms, st.at, st.at, st.at,
              st.k, pos.global_position
       FROM st
       JOIN bench_seed_templates x USING (j)
       JOIN turns tt ON tt.tenant_id = $1 AND tt.turn_id = x.turn_id
       JOIN pos ON pos.stream_id = 'conversation:' || $1::text || ':' || st.session_id AND pos.stream_position = st.k`,
      [TENANT],
    );
    await sql.query(
      `INSERT INTO turn_ids (tenant_id, turn_id, session_id) SELECT $1::text, turn_id, session_id FROM st`,
      [TENANT],
    );
    await sql.query(
      `INSERT INTO projection_streams (projection, stream_id, position)
       SELECT 'session_context', 'conversation:' || $1::text || ':' || session_id, max(k) FROM st GROUP BY session_id`,
      [TENANT],
    );
    const [n] = await sql.query<{ n: string }>('SELECT count(*) AS n FROM pos');
    return Number(n?.n ?? 0);
  });
}

/** Checkpoints (session_context at its last event, the relay at the head) and the seed's own tables dropped. */
async function finishSeed(db: Db): Promise<void> {
  await db.query(
    `INSERT INTO checkpoints (name, transaction_id, global_position, updated_at)
     SELECT 'projection:session_context', transaction_id,
            (SELECT max(global_position) FROM events WHERE stream_type = 'conversation'), now()
     FROM events WHERE stream_type = 'conversation' ORDER BY transaction_id DESC, global_position DESC LIMIT 1
     ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
       global_position = GREATEST(checkpoints.global_position, EXCLUDED.global_position), updated_at = now()`,
  );
  await db.query(
    `INSERT INTO checkpoints (name, transaction_id, global_position, updated_at)
     SELECT 'relay', transaction_id, global_position, now()
     FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1
     ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
       global_position = EXCLUDED.global_position, updated_at = now()`,
  );
  await db.query(`DROP TABLE IF EXISTS bench_seed_templates, bench_seed_plan`);
}
