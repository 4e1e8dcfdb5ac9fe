import { readFileSync } from 'node:fs';
import { RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { Db, ensureDatabase } from '@threadline/event-store';
import { connectNats, DUPLICATE_WINDOW_MS } from '@threadline/messaging';
import {
  CreatedKey,
  freePort,
  runKeysCli,
  ServiceGroup,
  type ServiceName,
  type ServiceProcess,
  SERVICES,
} from '@threadline/stack';
import { type Cleanup, type NatsCluster, type PgCluster } from './infra';

export const DATABASE = 'threadline_chaos';
export const STREAM = 'THREADLINE_CHAOS';
export const PREFIX = 'tlchaos';
export const TENANT = 'default';
/** Instances of every service. */
export const INSTANCES = 2;

/** One instance of a service: its slot (0 or 1) and the process running in it now. */
export interface Instance {
  name: ServiceName;
  slot: number;
  proc: ServiceProcess;
  /** Launches made in this slot (1 at start; a restart adds one). */
  launches: number;
}

/**
 * Creates the events stream as a 3-node deployment would: `<prefix>.evt.>`, file storage, limits
 * retention, the services' duplicate window, and **3 replicas** (the services' own `ensureEventStream`
 * finds it and leaves it as it is).
 */
export async function createReplicatedStream(natsUrl: string, replicas: number): Promise<void> {
  const nc = await connectNats({ NATS_URL: natsUrl }, 'threadline-chaos-setup');
  try {
    // A cluster just formed may not have elected its meta leader yet (JetStream answers nothing or
    // times out): retry for 60 s.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc);
        await jsm.streams.add({
          name: STREAM,
          subjects: [`${PREFIX}.evt.>`],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          duplicate_window: nanos(DUPLICATE_WINDOW_MS),
          num_replicas: replicas,
        });
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
}

/**
 * The system under test: two instances of each of the five built services against the harness's
 * own Postgres and NATS cluster (every NATS node in `NATS_URL`), two gateways on two ports, a
 * service API key made with the keys CLI. Instances are launched through {@link ServiceGroup}, as the
 * gateway e2e tests and the bench do; an instance killed by a scenario is launched again in its slot.
 */
export class ChaosStack {
  readonly instances: Instance[] = [];
  readonly gatewayUrls: string[] = [];
  private readonly group: ServiceGroup;
  private readonly envs = new Map<string, NodeJS.ProcessEnv>();
  apiKey = '';
  /** The harness's own pool on the database (verification, the slow transaction). */
  db!: Db;

  constructor(
    private readonly root: string,
    readonly pg: PgCluster,
    readonly nats: NatsCluster,
    cleanup: Cleanup,
  ) {
    this.group = new ServiceGroup({ root, stopGraceMs: 5_000, buildHint: 'npm run build' });
    cleanup.add('services', () => {
      for (const p of this.group.processes) if (!p.exited) p.child.kill('SIGKILL');
    });
  }

  get databaseUrl(): string {
    return this.pg.url(DATABASE);
  }

  /** Creates database, stream and key, starts every instance; resolves when both gateways serve. */
  async start(): Promise<void> {
    await ensureDatabase(this.databaseUrl);
    await createReplicatedStream(this.nats.url, Math.min(3, this.nats.nodes.length));
    const stdout = await runKeysCli({
      root: this.root,
      databaseUrl: this.databaseUrl,
      args: [
        'create',
        '--tenant',
        TENANT,
        '--role',
        'admin',
        '--name',
        'chaos',
        '--rate-limit',
        '10000000',
        '--json',
      ],
      timeoutMs: 60_000,
    });
    this.apiKey = CreatedKey.parse(JSON.parse(stdout)).key;
    const base: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      DATABASE_URL: this.databaseUrl,
      DATABASE_POOL_SIZE: '4',
      NATS_URL: this.nats.url,
      NATS_SUBJECT_PREFIX: PREFIX,
      NATS_STREAM: STREAM,
      HOST: '127.0.0.1',
      DEFAULT_TENANT_ID: TENANT,
      RATE_LIMIT_KEY_REQUESTS: '10000000',
      RATE_LIMIT_USER_REQUESTS: '10000000',
      MAX_SESSIONS_PER_USER: '0',
      // Two instances of each service share the machine: no fixed metrics port (9101-9104) for them.
      METRICS_PORT: '0',
    };
    // Every instance at once: migrations on start are serialized by an advisory lock.
    for (let slot = 0; slot < INSTANCES; slot++) {
      for (const name of SERVICES) {
        const env: NodeJS.ProcessEnv = { ...base };
        if (name === 'gateway') {
          const port = await freePort();
          env['PORT'] = String(port);
          this.gatewayUrls.push(`http://127.0.0.1:${port}`);
        }
        this.envs.set(`${name}#${slot}`, env);
        this.instances.push({ name, slot, proc: this.launch(name, env), launches: 1 });
      }
    }
    await this.waitReady(Date.now() + 180_000);
    this.db = await Db.connect({ url: this.databaseUrl, poolSize: 4, applicationName: 'threadline-chaos' });
  }

  private launch(name: ServiceName, env: NodeJS.ProcessEnv): ServiceProcess {
    return this.group.launch(name, env, ['--max-old-space-size=512']);
  }

  /**
   * Resolves when every started gateway answers /health and one query reaching each service that
   * answers requests (polling every 200 ms).
   * @throws at `deadline` (epoch ms), or when an instance exited without the harness asking.
   */
  async waitReady(deadline: number): Promise<void> {
    for (const url of this.gatewayUrls) {
      for (const path of [
        '/health',
        '/sessions?limit=1',
        '/users/chaos-ready/turns?limit=1',
        '/sessions/stats',
      ]) {
        let last = 'no answer';
        for (;;) {
          const dead = this.crashed()[0];
          if (dead) throw new Error(`${dead.name}#${dead.slot} exited: ${this.tail(dead, 1500)}`);
          try {
            const res = await fetch(`${url}${path}`, {
              signal: AbortSignal.timeout(3_000),
              headers: { authorization: `Bearer ${this.apiKey}` },
            });
            await res.arrayBuffer();
            if (res.status === 200) break;
            last = `status ${res.status}`;
          } catch (error) {
            last = error instanceof Error ? error.message : String(error);
          }
          if (Date.now() > deadline)
            throw new Error(`${url}${path} did not answer 200 in time (last: ${last})`);
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    }
  }

  /** Resident set size of every running instance, in KiB (`VmRSS` of /proc/<pid>/status). */
  rss(): Map<string, number> {
    const out = new Map<string, number>();
    for (const i of this.instances) {
      if (i.proc.exited) continue;
      try {
        const status = readFileSync(`/proc/${i.proc.pid}/status`, 'utf8');
        const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
        if (kb !== undefined) out.set(`${i.name}#${i.slot}`, Number(kb));
      } catch {
        /* exited meanwhile */
      }
    }
    return out;
  }

  /** The instances of service `name`. */
  of(name: ServiceName): Instance[] {
    return this.instances.filter((i) => i.name === name);
  }

  /** SIGKILL (kill -9) to `instance`; resolves when it exited. */
  async kill(instance: Instance): Promise<void> {
    instance.proc.stopping = true;
    if (instance.proc.exited) return;
    instance.proc.child.kill('SIGKILL');
    await instance.proc.exit;
  }

  /** Launches `instance`'s service again in its slot (same environment, same gateway port). */
  relaunch(instance: Instance): void {
    const env = this.envs.get(`${instance.name}#${instance.slot}`);
    instance.proc = this.launch(instance.name, env ?? {});
    instance.launches++;
  }

  /** Instances whose process exited without the harness asking. */
  crashed(): Instance[] {
    return this.instances.filter((i) => i.proc.exited && !i.proc.stopping);
  }

  /** The last `chars` characters `instance` wrote. */
  tail(instance: Instance, chars = 2000): string {
    return instance.proc.output.slice(-chars);
  }

  report(): string {
    return this.group.report();
  }

  async stop(): Promise<void> {
    await this.db?.close().catch(() => undefined);
    await this.group.stop();
  }
}
