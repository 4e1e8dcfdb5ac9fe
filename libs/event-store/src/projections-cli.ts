import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import type { MigrationInterface } from 'typeorm';
import { EventEnvelope, type EventRegistry } from '@threadline/contracts';
import { type DeadLetterRow, DeadLetters } from './dead-letters';
import { Db } from './db';
import { EventStore, toEnvelope } from './event-store';
import { migrate } from './migrate';
import { eventStoreMigrations } from './migrations';
import {
  type HandleOutcome,
  type Projection,
  ProjectionRunner,
  type RebuildResult,
} from './projection-runner';

/** Where the CLI writes: process.stdout/stderr, or any writable stream (tests capture with a PassThrough). */
export type CliStream = NodeJS.WritableStream & { isTTY?: boolean };

export interface ProjectionsCliOptions {
  /** Every projection of the application; `rebuild`, `retry`, `list` and `status` act on these. */
  projections: readonly Projection[];
  /** Parses (and upcasts) events for the runners. */
  registry: EventRegistry;
  /** Postgres URL of the event store and the read models. */
  databaseUrl: string;
  /** The application's read-model migrations, run after the event store's when `migrate` is true. */
  migrations?: (new () => MigrationInterface)[];
  /** Run pending migrations before a command (default true; safe concurrently, see `migrate`). */
  migrate?: boolean;
  /**
   * Durable consumer base name of the application's JetStream consumers (`JetStreamEventsOptions.durable`):
   * a projection's dead letters are those of the consumers `<durable>-<streamType>` of its stream types.
   * Without it, `status` reports no per-projection dead-letter count.
   */
  durable?: string;
  /** Program name in help texts (default `projections`). */
  programName?: string;
  stdout?: CliStream;
  stderr?: CliStream;
  /** Show a progress bar on stderr during `rebuild` (default: when stderr is a TTY). */
  progress?: boolean;
}

interface ProjectionStatus {
  name: string;
  /** The live version of a versioned projection; null for an unversioned one. */
  version: number | null;
  streamTypes: string[];
  checkpoint: number;
  head: number;
  lag: number;
  streams?: number;
  deadLetters?: number | null;
}

class CliError extends Error {}

/**
 * The projections command line (ARCHITECTURE rule 6: read models are rebuilt by replaying the store):
 *
 * - `list [--json]`: each projection's live version (versioned ones), checkpoint (highest global position applied), its head (highest
 *   global position of the stream types it follows) and the lag (head - checkpoint, in global positions);
 * - `status [--json]`: the same plus the streams it tracks and its unretried dead letters;
 * - `rebuild [name] [--batch-size n]`: rebuilds one projection (all when no name) with
 *   `ProjectionRunner.rebuild` (a versioned projection: a new version beside the live one, switched
 *   atomically; queries keep answering), printing events replayed, time (s) and events per second;
 * - `dead-letters [--consumer c] [--json]`: unretried dead letters, oldest first;
 * - `retry <consumer> [--id n...] [--projection name]`: re-applies that consumer's dead-lettered
 *   events through the projection runners (the event store's copy when the event id is known) and
 *   marks each retried once every runner handled it.
 *
 * `argv` are the user arguments (`process.argv.slice(2)`). Resolves to the exit code: 0 on success,
 * 1 when a command failed (message on stderr), commander's code for usage errors and help (0).
 * Never calls `process.exit`.
 */
export async function runProjectionsCli(
  argv: readonly string[],
  options: ProjectionsCliOptions,
): Promise<number> {
  const out = options.stdout ?? process.stdout;
  const err = options.stderr ?? process.stderr;
  const print = (line = '') => void out.write(`${line}\n`);

  // One connection pool per invocation, opened by the first command that needs it.
  let context: { db: Db; store: EventStore; runners: ProjectionRunner[] } | undefined;
  const connect = async () => {
    if (context) return context;
    const db = await Db.connect({
      url: options.databaseUrl,
      // One connection holds a rebuild's lock, one reads the next batch, two apply the current ones
      // (see ProjectionRunner.rebuild), one reads the events of a gap.
      poolSize: 5,
      applicationName: 'threadline-projections-cli',
      migrations: [...eventStoreMigrations, ...(options.migrations ?? [])],
    });
    try {
      if (options.migrate ?? true) await migrate(db);
    } catch (error) {
      await db.close();
      throw error;
    }
    const store = new EventStore(db);
    const runners = options.projections.map((p) => new ProjectionRunner(db, store, options.registry, p));
    context = { db, store, runners };
    return context;
  };
  const select = (runners: ProjectionRunner[], name: string | undefined) => {
    if (name === undefined) return runners;
    const found = runners.filter((r) => r.projection.name === name);
    if (found.length === 0) {
      const known = runners.map((r) => r.projection.name).join(', ') || '(none)';
      throw new CliError(`Unknown projection ${name}; known: ${known}`);
    }
    return found;
  };

  const program = new Command(options.programName ?? 'projections')
    .description('Inspect, rebuild and repair the projections (read models) of the event store')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void out.write(s), writeErr: (s) => void err.write(s) })
    .showHelpAfterError();

  const statuses = async (withDetails: boolean): Promise<ProjectionStatus[]> => {
    const { db, runners } = await connect();
    const result: ProjectionStatus[] = [];
    for (const runner of runners) {
      const checkpoint = await runner.position();
      // The head of what this projection follows: events of other stream types never move its checkpoint.
      const [top] = await db.query<{ head: string | null }>(
        'SELECT max(global_position) AS head FROM events WHERE stream_type = ANY($1::text[])',
        [[...runner.projection.streamTypes]],
      );
      const head = Number(top?.head ?? 0);
      const live = await runner.liveVersion();
      const status: ProjectionStatus = {
        name: runner.projection.name,
        version: live?.version ?? null,
        streamTypes: [...runner.projection.streamTypes],
        checkpoint,
        head,
        lag: Math.max(0, head - checkpoint),
      };
      if (withDetails) {
        status.streams = await runner.streamsTracked();
        if (options.durable === undefined) {
          status.deadLetters = null;
        } else {
          const consumers = runner.projection.streamTypes.map((t) => `${options.durable}-${t}`);
          const [dead] = await db.query<{ n: string }>(
            'SELECT count(*) AS n FROM dead_letters WHERE retried_at IS NULL AND consumer = ANY($1::text[])',
            [consumers],
          );
          status.deadLetters = Number(dead?.n ?? 0);
        }
      }
      result.push(status);
    }
    return result;
  };

  program
    .command('list')
    .description('each projection with its checkpoint, the head of its stream types and the lag')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await statuses(false);
      if (opts.json) return print(JSON.stringify(rows));
      print(
        table(
          ['projection', 'version', 'stream_types', 'checkpoint', 'head', 'lag'],
          rows.map((r) => [r.name, r.version ?? '-', r.streamTypes.join(','), r.checkpoint, r.head, r.lag]),
        ),
      );
    });

  program
    .command('status')
    .description('list, plus the streams each projection tracks and its unretried dead letters')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await statuses(true);
      if (opts.json) return print(JSON.stringify(rows));
      print(
        table(
          ['projection', 'version', 'stream_types', 'checkpoint', 'head', 'lag', 'streams', 'dead_letters'],
          rows.map((r) => [
            r.name,
            r.version ?? '-',
            r.streamTypes.join(','),
            r.checkpoint,
            r.head,
            r.lag,
            r.streams ?? 0,
            r.deadLetters ?? 'n/a',
          ]),
        ),
      );
      const { db } = await connect();
      const all = await db.query<{ consumer: string; n: string }>(
        'SELECT consumer, count(*) AS n FROM dead_letters WHERE retried_at IS NULL GROUP BY consumer ORDER BY consumer',
      );
      print(
        all.length === 0
          ? 'dead letters: none'
          : `dead letters: ${all.map((r) => `${r.consumer}=${Number(r.n)}`).join(', ')}`,
      );
    });

  program
    .command('rebuild')
    .description('rebuild a projection (every projection when no name is given) by replaying the event store')
    .argument('[name]', 'projection name')
    .addOption(
      new Option('--batch-size <n>', 'events read (and applied) per batch')
        .default(5000)
        .argParser(positiveInt),
    )
    .action(async (name: string | undefined, opts: { batchSize: number }) => {
      const { db, runners } = await connect();
      const showBar = options.progress ?? err.isTTY === true;
      for (const runner of select(runners, name)) {
        // The bar's total: what the rebuild will read (a scan of the events table, so only for the bar).
        let total = 0;
        if (showBar) {
          const [count] = runner.versioned
            ? await db.query<{ n: string }>(
                'SELECT count(*) AS n FROM events WHERE stream_type = ANY($1::text[])',
                [[...runner.projection.streamTypes]],
              )
            : await db.query<{ n: string }>('SELECT count(*) AS n FROM events');
          total = Number(count?.n ?? 0);
        }
        const bar = showBar
          ? new SingleBar(
              {
                stream: err,
                format: `${runner.projection.name} [{bar}] {percentage}% | {value}/{total} events | ETA {eta}s`,
                hideCursor: true,
              },
              Presets.shades_classic,
            )
          : undefined;
        bar?.start(total, 0);
        let result: RebuildResult;
        try {
          result = await runner.rebuild({
            batchSize: opts.batchSize,
            onProgress: (replayed) => {
              if (replayed > total) bar?.setTotal(replayed);
              bar?.update(replayed);
            },
          });
        } finally {
          bar?.stop();
        }
        const seconds = result.tookMs / 1000;
        const rate = seconds > 0 ? Math.round(result.events / seconds) : result.events;
        print(
          `rebuilt ${runner.projection.name}: replayed ${result.events} events in ${seconds.toFixed(3)} s ` +
            `(${rate} events/s); checkpoint ${await runner.position()}` +
            (result.version === undefined ? '' : `; version ${result.version} live`),
        );
        const phases = result.phasesMs;
        if (phases) {
          const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
          print(
            `phases: replay ${s(phases.replay)}, finish ${s(phases.finish)}, indexes ${s(phases.indexes)}, ` +
              `analyze ${s(phases.analyze)}, switch ${s(phases.switch)}`,
          );
        }
      }
    });

  program
    .command('dead-letters')
    .description('list dead letters not yet retried, oldest first')
    .option('--consumer <name>', 'only this consumer')
    .option('--json', 'print JSON')
    .action(async (opts: { consumer?: string; json?: boolean }) => {
      const { db } = await connect();
      const rows = await new DeadLetters(db).list(opts.consumer);
      if (opts.json) return print(JSON.stringify(rows));
      if (rows.length === 0) return print('no dead letters');
      print(
        table(
          ['id', 'consumer', 'event_type', 'stream_id', 'position', 'attempts', 'created_at', 'error'],
          rows.map((r) => [
            r.id,
            r.consumer,
            r.event_type ?? '-',
            r.stream_id ?? '-',
            r.global_position ?? '-',
            r.attempts,
            r.created_at.toISOString(),
            r.error.length > 80 ? `${r.error.slice(0, 77)}...` : r.error,
          ]),
        ),
      );
    });

  program
    .command('retry')
    .description(
      "re-apply a consumer's dead-lettered events through the projection runners; mark them retried",
    )
    .argument('<consumer>', 'consumer name, as listed by dead-letters')
    .addOption(new Option('--id <ids...>', 'only these dead letters').argParser(collectInts))
    .option('--projection <name>', 'only this projection')
    .action(async (consumer: string, opts: { id?: number[]; projection?: string }) => {
      const { db, runners } = await connect();
      const targets = select(runners, opts.projection);
      const letters = new DeadLetters(db);
      const rows = (await letters.list(consumer)).filter((r) => !opts.id || opts.id.includes(r.id));
      if (rows.length === 0) return print(`no dead letters to retry for ${consumer}`);
      let failed = 0;
      for (const row of rows) {
        try {
          const envelope = await deadLetterEvent(db, row);
          const outcomes: string[] = [];
          for (const runner of targets) {
            const outcome: HandleOutcome = await runner.handle(envelope);
            outcomes.push(`${runner.projection.name}=${outcome}`);
          }
          await letters.markRetried(row.id);
          print(
            `retried #${row.id} ${envelope.eventType} ${envelope.streamId}@${envelope.streamPosition}: ${outcomes.join(' ')}`,
          );
        } catch (error) {
          failed += 1;
          err.write(`retry of #${row.id} failed: ${describe(error)}\n`);
        }
      }
      print(`${rows.length - failed} retried, ${failed} failed`);
      if (failed > 0) throw new CliError(`${failed} dead letter(s) could not be retried`);
    });

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    err.write(`error: ${describe(error)}\n`);
    return 1;
  } finally {
    await context?.db.close();
  }
}

// The dead letter's event: the event store's copy when its id is known (the store is the record),
// else the envelope it carried. Throws when neither is available.
async function deadLetterEvent(db: Db, row: DeadLetterRow): Promise<EventEnvelope> {
  if (row.event_id) {
    const [stored] = await db.query(
      `SELECT global_position, transaction_id::text AS transaction_id, stream_id, stream_type, stream_position,
              event_id, event_type, schema_version, data, metadata, created_at
       FROM events WHERE event_id = $1`,
      [row.event_id],
    );
    if (stored) return toEnvelope(stored);
  }
  const parsed = EventEnvelope.safeParse(safeJson(row.payload));
  if (!parsed.success)
    throw new Error('its payload is not an event envelope and its event is not in the store');
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`not a positive integer: ${value}`);
  return n;
}

function collectInts(value: string, previous: number[] | undefined): number[] {
  return [...(previous ?? []), positiveInt(value)];
}

/** Left-aligned columns separated by two spaces. */
function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
