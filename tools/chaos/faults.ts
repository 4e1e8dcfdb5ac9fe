import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { z } from 'zod';
import { type ServiceName } from '@threadline/stack';
import { sleep } from './load';
import { type ChaosStack, type Instance } from './stack';

/** What a fault tells the runner: a line for the log and results (which process, what was done). */
export type Fault = (stack: ChaosStack, log: (line: string) => void) => Promise<string>;

/** A fault scenario: its id (`--scenarios`), what it does, the fault itself. */
export interface Scenario {
  id: string;
  title: string;
  fault: Fault;
}

/** How long a killed instance stays down before its "supervisor" starts it again, ms. */
const RESTART_AFTER_MS = 5_000;

const killOne =
  (name: ServiceName): Fault =>
  async (stack) => {
    const victim = stack.of(name)[0]!;
    const pid = victim.proc.pid;
    await stack.kill(victim);
    await sleep(RESTART_AFTER_MS);
    stack.relaunch(victim);
    return `kill -9 ${name}#${victim.slot} (pid ${pid}); started again after ${RESTART_AFTER_MS / 1000} s`;
  };

/** The local TCP ports' socket inodes (`/proc/net/tcp`): inode -> local port. */
function tcpInodes(): Map<string, number> {
  const map = new Map<string, number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    const inode = cols[9];
    if (!local || !inode) continue;
    map.set(inode, parseInt(local.split(':')[1] ?? '0', 16));
  }
  return map;
}

/** The instance that owns the local TCP port `port` (through its open socket inodes), if any. */
function instanceOwningPort(stack: ChaosStack, port: number): Instance | undefined {
  const ports = tcpInodes();
  for (const instance of stack.instances) {
    if (instance.proc.exited) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${instance.proc.pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${instance.proc.pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && ports.get(inode) === port) return instance;
    }
  }
  return undefined;
}

const LockHolder = z.object({ client_port: z.coerce.number() });

/**
 * The instance holding the relay's advisory lock (`threadline.relay`, see libs/event-store relay.ts):
 * the backend holding it in `pg_locks`, its client port in `pg_stat_activity`, and the process that
 * owns that port.
 */
export async function relayLeader(stack: ChaosStack): Promise<Instance | undefined> {
  const rows = await stack.db.query(
    `WITH k AS (SELECT hashtextextended('threadline.relay', 0) AS h)
     SELECT a.client_port
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, k
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.objid::bigint = (k.h & 4294967295) AND l.classid::bigint = ((k.h >> 32) & 4294967295)
        AND a.client_port IS NOT NULL`,
  );
  for (const row of rows) {
    const holder = instanceOwningPort(stack, LockHolder.parse(row).client_port);
    if (holder) return holder;
  }
  return undefined;
}

/** Every fault of issue 20, one scenario each, in the order they run. */
export const SCENARIOS: readonly Scenario[] = [
  { id: 'kill-gateway', title: 'kill -9 one gateway', fault: killOne('gateway') },
  { id: 'kill-session-service', title: 'kill -9 one session-service', fault: killOne('session-service') },
  { id: 'kill-chat-log-service', title: 'kill -9 one chat-log-service', fault: killOne('chat-log-service') },
  { id: 'kill-cleanup-worker', title: 'kill -9 one cleanup-worker', fault: killOne('cleanup-worker') },
  {
    id: 'kill-analytics-projector',
    title: 'kill -9 one analytics-projector',
    fault: killOne('analytics-projector'),
  },
  {
    id: 'kill-both-chat-log',
    title: 'kill -9 both chat-log-service instances, then restart',
    fault: async (stack) => {
      const both = stack.of('chat-log-service');
      await Promise.all(both.map((i) => stack.kill(i)));
      await sleep(RESTART_AFTER_MS);
      for (const i of both) stack.relaunch(i);
      return `kill -9 both chat-log-service instances; started again after ${RESTART_AFTER_MS / 1000} s`;
    },
  },
  {
    id: 'sigstop-chat-log',
    title: 'SIGSTOP one chat-log-service for 10 s',
    fault: async (stack) => {
      const victim = stack.of('chat-log-service')[0]!;
      process.kill(victim.proc.pid, 'SIGSTOP');
      try {
        await sleep(10_000);
      } finally {
        process.kill(victim.proc.pid, 'SIGCONT');
      }
      return `SIGSTOP chat-log-service#${victim.slot} (pid ${victim.proc.pid}) for 10 s, then SIGCONT`;
    },
  },
  {
    id: 'nats-restart-one',
    title: 'restart one NATS node',
    fault: async (stack) => {
      await stack.nats.stopNode(1);
      await sleep(2_000);
      await stack.nats.startAgain(1);
      return 'SIGTERM NATS node 2 of 3, started again after 2 s';
    },
  },
  {
    id: 'nats-restart-all',
    title: 'restart all NATS nodes',
    fault: async (stack) => {
      await Promise.all(stack.nats.nodes.map((_, i) => stack.nats.stopNode(i)));
      await sleep(2_000);
      await Promise.all(stack.nats.nodes.map((_, i) => stack.nats.startAgain(i)));
      return 'SIGTERM all 3 NATS nodes, started again after 2 s';
    },
  },
  {
    id: 'pg-restart-fast',
    title: 'restart Postgres (fast shutdown), no service restarted',
    fault: async (stack) => {
      const t = Date.now();
      await stack.pg.restart('fast');
      return `pg_ctl restart -m fast (${((Date.now() - t) / 1000).toFixed(1)} s)`;
    },
  },
  {
    id: 'pg-restart-immediate',
    title: 'restart Postgres (immediate shutdown), no service restarted',
    fault: async (stack) => {
      const t = Date.now();
      await stack.pg.restart('immediate');
      return `pg_ctl restart -m immediate (${((Date.now() - t) / 1000).toFixed(1)} s)`;
    },
  },
  {
    id: 'kill-relay-leader',
    title: "kill -9 the relay's lock holder mid-batch",
    fault: async (stack) => {
      const leader = await relayLeader(stack);
      if (!leader) throw new Error('no instance holds the relay lock');
      const pid = leader.proc.pid;
      await stack.kill(leader);
      await sleep(RESTART_AFTER_MS);
      stack.relaunch(leader);
      return `kill -9 relay holder ${leader.name}#${leader.slot} (pid ${pid}); started again after ${RESTART_AFTER_MS / 1000} s`;
    },
  },
  {
    id: 'slow-transaction',
    title: 'a transaction held open 30 s',
    fault: async (stack) => {
      await stack.db.transaction(async (tx) => {
        // An xid of its own: pg_snapshot_xmin stays at it, so every commit-safe tail waits behind it.
        await tx.query('SELECT pg_current_xact_id()');
        await sleep(30_000);
      });
      return 'BEGIN; SELECT pg_current_xact_id(); 30 s; COMMIT (from the harness)';
    },
  },
];

/** The scenarios of `npm run chaos -- --short`. */
export const SHORT_SCENARIOS = ['kill-chat-log-service', 'nats-restart-one'] as const;
