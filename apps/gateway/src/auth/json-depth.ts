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

/** Matches a lone UTF-16 surrogate: in a `u` regex a surrogate pair is one code point, not a match. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * The path (`metadata.a[0]`) of the first string or object key of `value` holding a lone UTF-16
 * surrogate (`"\ud800"` in the JSON text), or undefined. JSON.parse accepts such escapes, but the
 * text is not Unicode: Postgres' `json` type refuses it (22P02) when the event is appended, so it
 * must be refused as bad input first. Iterative, like {@link nestsDeeperThan}.
 */
export function loneSurrogatePath(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [node, path] = next;
    if (typeof node === 'string') {
      if (LONE_SURROGATE.test(node)) return path;
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      node.forEach((child, i) => stack.push([child, `${path}[${i}]`]));
      continue;
    }
    for (const [key, child] of Object.entries(node)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (LONE_SURROGATE.test(key)) return at;
      stack.push([child, at]);
    }
  }
  return undefined;
}

/** Throws `ValidationError` (400 naming the field) when a string of `body` holds a lone surrogate. */
export function assertWellFormedBody(body: unknown): void {
  const path = loneSurrogatePath(body);
  if (path !== undefined) {
    throw requestInvalid('body', [
      { path: path === '' ? [] : [path], message: 'text with a lone UTF-16 surrogate (not valid Unicode)' },
    ]);
  }
}
