import { requestInvalid } from '../http/problem-details';

/**
 * Deepest nesting of arrays and objects a request body may have (levels). Well above what any
 * schema allows (metadata: 8), and far below what would exhaust the stack of the recursive zod
 * schemas that parse JSON values (a 1 MB body can nest ~200 000 levels deep).
 */
export const MAX_BODY_DEPTH = 64;

/**
 * True when `value` nests deeper than `max` levels; iterative (no recursion, so any depth is safe)
 * and stops at the first level past `max`.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  let level: unknown[] = [value];
  for (let depth = 0; level.length > 0; depth += 1) {
    const next: unknown[] = [];
    for (const item of level) {
      if (item === null || typeof item !== 'object') continue;
      if (depth >= max) return true;
      const children: unknown[] = Array.isArray(item) ? (item as unknown[]) : Object.values(item);
      for (const child of children) next.push(child);
    }
    level = next;
  }
  return false;
}

/** Throws `ValidationError` (400 naming the body) when `body` nests deeper than {@link MAX_BODY_DEPTH}. */
export function assertBodyDepth(body: unknown): void {
  if (nestsDeeperThan(body, MAX_BODY_DEPTH)) {
    throw requestInvalid('body', [{ path: [], message: `JSON nested deeper than ${MAX_BODY_DEPTH} levels` }]);
  }
}
