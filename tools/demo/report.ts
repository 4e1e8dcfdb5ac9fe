import type { ImportResult } from './importer';
import type { PlanTotals } from './mapping';
import type { ReadBack } from './readback';

/** Lines of a list shown before the rest is only counted. */
const MAX_LINES = 20;

/** What an import sent, computed from its outcomes. */
export interface ImportTotals {
  dialogs: number;
  dialogsFailed: number;
  sessions: number;
  turns: number;
  toolCalls: number;
  /** Final failures by kind, including dialogs that could not be mapped (`invalid`). */
  errors: Record<string, number>;
  /** Retries the client made (not failures unless they ran out). */
  retries: number;
  elapsedMs: number;
}

/** Sums an {@link ImportResult}; `invalid` dialogs (mapping failures) are added to the errors. */
export function importTotals(result: ImportResult, invalid: number, retries: number): ImportTotals {
  const errors = { ...result.errors, ...(invalid > 0 ? { invalid } : {}) };
  return {
    dialogs: result.outcomes.filter((o) => o.error === undefined).length,
    dialogsFailed: result.outcomes.filter((o) => o.error !== undefined).length + invalid,
    sessions: result.outcomes.filter((o) => o.sessionId !== undefined).length,
    turns: result.outcomes.reduce((n, o) => n + o.turnsSent, 0),
    toolCalls: result.outcomes.reduce((n, o) => n + o.toolCallsSent, 0),
    errors,
    retries,
    elapsedMs: result.elapsedMs,
  };
}

/** Total of an error record. */
export const errorCount = (errors: Record<string, number>): number =>
  Object.values(errors).reduce((a, b) => a + b, 0);

const perSecond = (n: number, ms: number): string => (ms > 0 ? ((n * 1000) / ms).toFixed(1) : '0.0');

function limited(lines: readonly string[]): string[] {
  return lines.length > MAX_LINES
    ? [...lines.slice(0, MAX_LINES), `... and ${lines.length - MAX_LINES} more`]
    : [...lines];
}

/** The dataset as the mapping sees it (what a complete import sends). */
export function formatPlan(file: string, totals: PlanTotals, invalid: readonly string[]): string {
  return [
    `dataset ${file}:`,
    `  ${totals.dialogs} dialogs, ${totals.utterances} utterances -> ${totals.turns} turns, ` +
      `${totals.agentResponses} agent responses, ${totals.toolCalls} tool calls`,
    ...(invalid.length > 0
      ? [`  ${invalid.length} dialogs cannot be sent:`, ...limited(invalid).map((l) => `    ${l}`)]
      : []),
  ].join('\n');
}

/** The import summary: counts, rates per second, errors by kind and the first failures. */
export function formatImport(totals: ImportTotals, planned: number, failures: readonly string[]): string {
  const s = (totals.elapsedMs / 1000).toFixed(2);
  const errors = Object.entries(totals.errors)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, n]) => `${kind}: ${n}`)
    .join(', ');
  return [
    `imported: ${totals.dialogs}/${planned} dialogs (${totals.sessions} sessions), ${totals.turns} turns, ${totals.toolCalls} tool calls in ${s} s`,
    `  ${perSecond(totals.dialogs, totals.elapsedMs)} dialogs/s, ${perSecond(totals.turns, totals.elapsedMs)} turns/s, ` +
      `${perSecond(totals.toolCalls, totals.elapsedMs)} tool calls/s`,
    `  errors: ${errors === '' ? 'none' : errors} (retries: ${totals.retries})`,
    ...limited(failures).map((l) => `    ${l}`),
  ].join('\n');
}

/** The read-back summary: user lists, sampled sessions with tokens and cost, stats, mismatches. */
export function formatReadBack(readBack: ReadBack): string {
  const created = readBack.users.reduce((n, u) => n + u.created, 0);
  const listed = readBack.users.reduce((n, u) => n + (u.listed ?? 0), 0);
  const usersOk = readBack.users.filter((u) => u.listed === u.created).length;
  const sum = (pick: (c: ReadBack['sessions'][number]) => number): number =>
    readBack.sessions.reduce((n, c) => n + pick(c), 0);
  const lines = [
    `read back through the API:`,
    `  GET /users/{user}/sessions: ${listed} sessions listed of ${created} created (${usersOk}/${readBack.users.length} users match)`,
    `  GET /sessions/{id}/turns for ${readBack.sessions.length} sampled sessions: ${sum((c) => c.readTurns)} turns read of ` +
      `${sum((c) => c.sentTurns)} sent, ${sum((c) => c.readToolCalls)} tool calls read of ${sum((c) => c.sentToolCalls)} sent`,
    `  tokens: ${sum((c) => c.inputTokens)} input, ${sum((c) => c.outputTokens)} output, ${sum((c) => c.totalTokens)} total; ` +
      `cost $${sum((c) => c.costUsd).toFixed(6)} (usage estimated for ${sum((c) => c.estimatedResponses)}/${sum((c) => c.responses)} responses)`,
  ];
  if (readBack.stats !== undefined) lines.push(`  GET /sessions/stats: ${JSON.stringify(readBack.stats)}`);
  if (readBack.failures.length > 0) {
    lines.push(
      `  ${readBack.failures.length} read-back requests failed:`,
      ...limited(readBack.failures).map((l) => `    ${l}`),
    );
  }
  lines.push(
    readBack.mismatches.length === 0
      ? '  everything read back matches what was sent'
      : `  ${readBack.mismatches.length} mismatches:`,
    ...limited(readBack.mismatches).map((l) => `    ${l}`),
  );
  return lines.join('\n');
}
