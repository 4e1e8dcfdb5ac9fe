import { SessionView } from '@threadline/contracts';
import { ApiError, type ApiClient, type FailureKind } from './http';
import type { DialogPlan } from './mapping';

/** What happened to one dialog. */
export interface DialogOutcome {
  plan: DialogPlan;
  /** Set once `POST /sessions` succeeded. */
  sessionId?: string;
  /** Turns (and their tool calls) the API accepted, in order. */
  turnsSent: number;
  toolCallsSent: number;
  /** Why the dialog stopped early; its later turns were not sent (their numbering would be off). */
  error?: { kind: FailureKind; message: string };
}

/** Progress of a running import, for the progress display. */
export interface ImportProgress {
  /** Dialogs finished (imported or failed) of `total`. */
  done: number;
  total: number;
  turns: number;
  toolCalls: number;
  errors: number;
}

export interface ImportOptions {
  /** Dialogs in flight at once (each dialog's requests are sequential). */
  concurrency: number;
  /** Run id: part of every idempotency key and correlation id of this run. */
  runId: string;
  onProgress?: (progress: ImportProgress) => void;
}

export interface ImportResult {
  outcomes: DialogOutcome[];
  /** Final failures by kind (HTTP status, `network`, `timeout`, `bad-reply`). */
  errors: Record<FailureKind, number>;
  /** Wall time of the import, ms. */
  elapsedMs: number;
}

/**
 * Sends the plans through the API: `options.concurrency` dialogs in flight; per dialog
 * `POST /sessions`, then each turn with `POST /sessions/{id}/turns` in order. Each request carries
 * an `Idempotency-Key` (`demo:<runId>:<dialog index>:session|turn:<n>`) so that the client's retries
 * never log a turn twice, and `X-Correlation-Id: demo-<runId>-<dialog index>`. A dialog stops at
 * its first failed request (counted in `errors` under its kind). Never throws for API failures.
 */
export async function importPlans(
  client: ApiClient,
  plans: readonly DialogPlan[],
  options: ImportOptions,
): Promise<ImportResult> {
  const started = performance.now();
  const outcomes: DialogOutcome[] = new Array<DialogOutcome>(plans.length);
  const errors: Record<FailureKind, number> = {};
  const progress: ImportProgress = { done: 0, total: plans.length, turns: 0, toolCalls: 0, errors: 0 };
  let next = 0;

  const fail = (outcome: DialogOutcome, kind: FailureKind, message: string): void => {
    outcome.error = { kind, message };
    errors[kind] = (errors[kind] ?? 0) + 1;
    progress.errors += 1;
  };

  const importOne = async (plan: DialogPlan): Promise<DialogOutcome> => {
    const outcome: DialogOutcome = { plan, turnsSent: 0, toolCallsSent: 0 };
    const correlationId = `demo-${options.runId}-${plan.index}`;
    const key = `demo:${options.runId}:${plan.index}`;
    try {
      const created = await client.request('POST', '/sessions', {
        body: plan.session,
        idempotencyKey: `${key}:session`,
        correlationId,
      });
      const session = SessionView.safeParse(created.body);
      if (!session.success) {
        fail(outcome, 'bad-reply', `POST /sessions answered ${created.status} without a session view`);
        return outcome;
      }
      outcome.sessionId = session.data.session_id;
      const path = `/sessions/${encodeURIComponent(session.data.session_id)}/turns`;
      for (const [i, turn] of plan.turns.entries()) {
        await client.request('POST', path, {
          body: turn,
          idempotencyKey: `${key}:turn:${i + 1}`,
          correlationId,
        });
        const calls = turn.tool_calls?.length ?? 0;
        outcome.turnsSent += 1;
        outcome.toolCallsSent += calls;
        progress.turns += 1;
        progress.toolCalls += calls;
        options.onProgress?.({ ...progress });
      }
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      fail(outcome, error.kind, error.message);
    }
    return outcome;
  };

  const worker = async (): Promise<void> => {
    for (let i = next++; i < plans.length; i = next++) {
      const plan = plans[i];
      if (plan === undefined) continue;
      outcomes[i] = await importOne(plan);
      progress.done += 1;
      options.onProgress?.({ ...progress });
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, options.concurrency), plans.length) }, worker));
  return { outcomes, errors, elapsedMs: performance.now() - started };
}
