import { ValidationError } from '@threadline/platform';
import { extractMetadataFilters, MAX_METADATA_FILTERS } from './metadata-filters';

// Asymmetric matchers are `any`; typed as unknown so they fit in object literals.
const anyString: unknown = expect.any(String);

const known = ['status', 'limit', 'cursor', 'sort', 'order'];

function issuesOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error.details?.['issues'];
    throw error;
  }
  throw new Error('expected a ValidationError');
}

describe('extractMetadataFilters', () => {
  it('is undefined without metadata.* parameters', () => {
    expect(extractMetadataFilters({ status: 'active', limit: '10' }, known)).toBeUndefined();
    expect(extractMetadataFilters({}, known)).toBeUndefined();
  });

  it('collects metadata.<key>=<value> pairs, keeping dots inside the key', () => {
    expect(
      extractMetadataFilters(
        { status: 'all', 'metadata.color': 'red', 'metadata.app.version': '2', 'metadata.empty': '' },
        known,
      ),
    ).toEqual({ color: 'red', 'app.version': '2', empty: '' });
  });

  it('rejects an empty key, a repeated parameter and over-long keys and values', () => {
    const issues = issuesOf(() =>
      extractMetadataFilters(
        {
          'metadata.': 'x',
          'metadata.tags': ['a', 'b'],
          [`metadata.${'k'.repeat(129)}`]: 'v',
          'metadata.big': 'v'.repeat(1025),
          'metadata.ok': 'fine',
        },
        known,
      ),
    );
    expect(issues).toEqual([
      { path: 'metadata.', message: anyString, in: 'query' },
      { path: 'metadata.tags', message: 'give one value per metadata key', in: 'query' },
      { path: `metadata.${'k'.repeat(129)}`, message: anyString, in: 'query' },
      { path: 'metadata.big', message: anyString, in: 'query' },
    ]);
  });

  it('accepts keys of 128 and values of 1024 characters', () => {
    const key = 'k'.repeat(128);
    expect(extractMetadataFilters({ [`metadata.${key}`]: 'v'.repeat(1024) }, known)).toEqual({
      [key]: 'v'.repeat(1024),
    });
  });

  it(`rejects more than ${MAX_METADATA_FILTERS} filters`, () => {
    const query = Object.fromEntries(
      Array.from({ length: MAX_METADATA_FILTERS + 1 }, (_, i) => [`metadata.k${i}`, 'v']),
    );
    expect(issuesOf(() => extractMetadataFilters(query, known))).toEqual([
      { path: 'metadata', message: `at most ${MAX_METADATA_FILTERS} metadata filters`, in: 'query' },
    ]);
    delete query[`metadata.k${MAX_METADATA_FILTERS}`];
    expect(Object.keys(extractMetadataFilters(query, known) ?? {})).toHaveLength(MAX_METADATA_FILTERS);
  });

  it('rejects unknown parameters so a typo does not silently widen the list', () => {
    expect(issuesOf(() => extractMetadataFilters({ statuss: 'active', meta: 'x' }, known))).toEqual([
      { path: 'statuss', message: 'unknown query parameter', in: 'query' },
      { path: 'meta', message: 'unknown query parameter', in: 'query' },
    ]);
  });
});
