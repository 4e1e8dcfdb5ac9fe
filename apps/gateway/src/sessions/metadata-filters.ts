import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ListUserSessionsQuery } from '@threadline/contracts';
import { requestInvalid } from '../http/problem-details';

export const METADATA_PREFIX = 'metadata.';
/** At most this many `metadata.<key>` filters in one request. */
export const MAX_METADATA_FILTERS = 16;

// Same bounds as the ListUserSessions query contract's `metadata` record.
const FilterKey = z.string().min(1, 'give a key after "metadata."').max(128);
const FilterValue = z.string('give one value per metadata key').max(1024);

/**
 * Splits the `metadata.<key>=<value>` filters out of a parsed query string (`?metadata.color=red`
 * gives `{ color: 'red' }`; `undefined` when there is none). Keys are 1-128 characters, values one
 * string of at most 1024, at most {@link MAX_METADATA_FILTERS} filters. Any other parameter not in
 * `known` is rejected, so a misspelled `statuss=` does not silently list everything.
 * Throws `ValidationError` (400) naming each bad parameter.
 */
export function extractMetadataFilters(
  query: Readonly<Record<string, unknown>>,
  known: readonly string[],
): Record<string, string> | undefined {
  const filters: Record<string, string> = {};
  const issues: { path: string[]; message: string }[] = [];
  let count = 0;
  for (const [name, value] of Object.entries(query)) {
    if (!name.startsWith(METADATA_PREFIX)) {
      if (!known.includes(name)) issues.push({ path: [name], message: 'unknown query parameter' });
      continue;
    }
    count += 1;
    const key = FilterKey.safeParse(name.slice(METADATA_PREFIX.length));
    const parsed = FilterValue.safeParse(value);
    for (const issue of [...(key.error?.issues ?? []), ...(parsed.error?.issues ?? [])]) {
      issues.push({ path: [name], message: issue.message });
    }
    if (key.success && parsed.success) filters[key.data] = parsed.data;
  }
  if (count > MAX_METADATA_FILTERS) {
    issues.push({ path: ['metadata'], message: `at most ${MAX_METADATA_FILTERS} metadata filters` });
  }
  if (issues.length > 0) throw requestInvalid('query', issues);
  return count > 0 ? filters : undefined;
}

const KNOWN_LIST_PARAMS = Object.keys(ListUserSessionsQuery.shape);

/**
 * Parameter decorator of `GET /users/{user_id}/sessions`: its `metadata.<key>` filters (see
 * {@link extractMetadataFilters}); 400 before the handler runs when one is invalid.
 */
export const MetadataFilters = createParamDecorator((_data: unknown, ctx: ExecutionContext) => {
  const request = ctx.switchToHttp().getRequest<FastifyRequest>();
  const query = z.record(z.string(), z.unknown()).parse(request.query ?? {});
  return extractMetadataFilters(query, KNOWN_LIST_PARAMS);
});
