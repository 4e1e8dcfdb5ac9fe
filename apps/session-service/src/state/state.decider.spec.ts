import { MAX_TOOL_CALLS, type SessionEvent } from '@threadline/contracts';
import { DomainError } from '@threadline/platform';
import { DeciderSpecification } from '@threadline/testing';
import {
  decide,
  evolve,
  initialState,
  lifecycleEventOf,
  mergePatch,
  type StateCommand,
  type StateDeciderEvent,
  type StateDomainEvent,
  viewOf,
  type WorkflowState,
} from './state.decider';

const now = new Date('2025-03-11T10:00:00.000Z');
const at = now.toISOString();
const earlier = '2025-03-11T09:00:00.000Z';

const spec = DeciderSpecification<WorkflowState, StateCommand, StateDeciderEvent>({
  decide: (command, state) => decide(command, state, now),
  evolve,
  initialState,
});

const created: StateDeciderEvent = {
  type: 'SessionCreated.v1',
  data: {
    sessionId: 's1',
    userId: 'u1',
    title: 't',
    metadata: {},
    createdFrom: null,
    startedAt: earlier,
  },
};
const deleted: StateDeciderEvent = {
  type: 'SessionDeleted.v1',
  data: { sessionId: 's1', deletedAt: earlier },
};
const updated = (patch: Extract<StateDomainEvent, { type: 'SessionStateUpdated.v1' }>['data']['patch']) =>
  ({
    type: 'SessionStateUpdated.v1',
    data: { sessionId: 's1', patch, updatedAt: earlier },
  }) satisfies StateDeciderEvent;
const planned = (name: string, description: string | null = null) =>
  ({
    type: 'ToolCallPlanned.v1',
    data: { sessionId: 's1', name, description, plannedAt: earlier },
  }) satisfies StateDeciderEvent;
const changed = (
  name: string,
  status: 'pending' | 'running' | 'completed' | 'failed',
  result: { [k: string]: string } | null = null,
  error: string | null = null,
) =>
  ({
    type: 'ToolCallStatusChanged.v1',
    data: { sessionId: 's1', name, status, result, error, changedAt: earlier },
  }) satisfies StateDeciderEvent;

const patchCmd = (
  patch: Extract<StateCommand, { type: 'UpdateSessionState' }>['data']['patch'],
  extra: { actingUserId?: string; expectedVersion?: number } = {},
): StateCommand => ({ type: 'UpdateSessionState', data: { sessionId: 's1', patch, ...extra } });
const toolCmd = (
  data: Omit<Extract<StateCommand, { type: 'SetToolCallStatus' }>['data'], 'sessionId'>,
): StateCommand => ({ type: 'SetToolCallStatus', data: { sessionId: 's1', ...data } });

const expectCode = (code: string) => (error: unknown) => {
  expect(error).toBeInstanceOf(DomainError);
  expect((error as DomainError).code).toBe(code);
};

describe('mergePatch (RFC 7396 appendix A)', () => {
  it.each([
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [
      ['a', 'b'],
      ['c', 'd'],
      ['c', 'd'],
    ],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ])('merges %j with %j into %j', (target, patch, expected) => {
    expect(mergePatch(target, patch)).toEqual(expected);
  });
});

describe('workflow state decider', () => {
  describe('UpdateSessionState', () => {
    it('appends the patch as given', () => {
      spec
        .given([created])
        .when(patchCmd({ constraints: { kpi: ['orders'] }, strategy: '## Plan', status: 'processing' }))
        .then([
          {
            type: 'SessionStateUpdated.v1',
            data: {
              sessionId: 's1',
              patch: { constraints: { kpi: ['orders'] }, strategy: '## Plan', status: 'processing' },
              updatedAt: at,
            },
          },
        ]);
    });

    it('appends nothing when the merge changes nothing (same values, removal of absent keys)', () => {
      spec
        .given([created, updated({ constraints: { kpi: ['orders'], cfc: 'CFC-1' }, summary: 'x' })])
        .when(patchCmd({ constraints: { kpi: ['orders'], missing: null }, status: null, summary: 'x' }))
        .then([]);
    });

    it('folds only creation and deletion of the lifecycle: an ended session keeps taking state', () => {
      const ended = lifecycleEventOf({
        type: 'SessionEnded.v1',
        data: { sessionId: 's1', reason: 'user', endedAt: earlier },
      });
      expect(ended).toBeNull();
      expect(lifecycleEventOf(created as SessionEvent)).toBe(created);
    });

    it('is SESSION.NOT_FOUND for a session never created, deleted, or another user’s', () => {
      spec
        .given([])
        .when(patchCmd({ summary: 'x' }))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created, deleted])
        .when(patchCmd({ summary: 'x' }))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created])
        .when(patchCmd({ summary: 'x' }, { actingUserId: 'u2' }))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
    });

    it('checks If-Match against the state version (lifecycle events do not count)', () => {
      spec
        .given([created, updated({ summary: 'a' })])
        .when(patchCmd({ summary: 'b' }, { expectedVersion: 0 }))
        .thenThrows(expectCode('SESSION.VERSION_MISMATCH'));
      spec
        .given([created, updated({ summary: 'a' })])
        .when(patchCmd({ summary: 'b' }, { expectedVersion: 1, actingUserId: 'u1' }))
        .then([
          {
            type: 'SessionStateUpdated.v1',
            data: { sessionId: 's1', patch: { summary: 'b' }, updatedAt: at },
          },
        ]);
    });

    it('is REQUEST.INVALID when the merged state would exceed its size bound', () => {
      // Each field is bounded by the contract; merging can still grow one object past the total.
      const big = 'x'.repeat(60 * 1024);
      const grown = ['a', 'b', 'c', 'd'].map((k) => updated({ constraints: { [k]: big } }));
      spec
        .given([created, ...grown])
        .when(patchCmd({ constraints: { e: big } }))
        .thenThrows(expectCode('REQUEST.INVALID'));
      spec
        .given([created, ...grown])
        .when(patchCmd({ constraints: { a: null, e: big } }))
        .then([
          {
            type: 'SessionStateUpdated.v1',
            data: { sessionId: 's1', patch: { constraints: { a: null, e: big } }, updatedAt: at },
          },
        ]);
    });
  });

  describe('SetToolCallStatus', () => {
    it('plans a new tool call and sets a status other than pending', () => {
      spec
        .given([created])
        .when(toolCmd({ name: 'Orders Trend', status: 'running', description: 'orders query' }))
        .then([
          {
            type: 'ToolCallPlanned.v1',
            data: { sessionId: 's1', name: 'Orders Trend', description: 'orders query', plannedAt: at },
          },
          {
            type: 'ToolCallStatusChanged.v1',
            data: {
              sessionId: 's1',
              name: 'Orders Trend',
              status: 'running',
              result: null,
              error: null,
              changedAt: at,
            },
          },
        ]);
    });

    it('only plans a new tool call put as pending', () => {
      spec
        .given([created])
        .when(toolCmd({ name: 'q', status: 'pending' }))
        .then([
          {
            type: 'ToolCallPlanned.v1',
            data: { sessionId: 's1', name: 'q', description: null, plannedAt: at },
          },
        ]);
    });

    it('changes the status and result of a known call; the same again is a no-op', () => {
      spec
        .given([created, planned('q')])
        .when(toolCmd({ name: 'q', status: 'completed', result: { sql: 'SELECT 1' } }))
        .then([
          {
            type: 'ToolCallStatusChanged.v1',
            data: {
              sessionId: 's1',
              name: 'q',
              status: 'completed',
              result: { sql: 'SELECT 1' },
              error: null,
              changedAt: at,
            },
          },
        ]);
      spec
        .given([created, planned('q'), changed('q', 'completed', { sql: 'SELECT 1' })])
        .when(toolCmd({ name: 'q', status: 'completed', result: { sql: 'SELECT 1' } }))
        .then([]);
    });

    it('re-describes a known call without touching its status', () => {
      spec
        .given([created, planned('q', 'old'), changed('q', 'running')])
        .when(toolCmd({ name: 'q', status: 'running', description: 'new' }))
        .then([
          {
            type: 'ToolCallPlanned.v1',
            data: { sessionId: 's1', name: 'q', description: 'new', plannedAt: at },
          },
        ]);
    });

    it('rejects an error without status failed, and records one with it', () => {
      spec
        .given([created, planned('q')])
        .when(toolCmd({ name: 'q', status: 'completed', error: 'boom' }))
        .thenThrows(expectCode('REQUEST.INVALID'));
      spec
        .given([created, planned('q')])
        .when(toolCmd({ name: 'q', status: 'failed', error: 'boom' }))
        .then([
          {
            type: 'ToolCallStatusChanged.v1',
            data: {
              sessionId: 's1',
              name: 'q',
              status: 'failed',
              result: null,
              error: 'boom',
              changedAt: at,
            },
          },
        ]);
    });

    it('is SESSION.NOT_FOUND / VERSION_MISMATCH like the patch', () => {
      spec
        .given([])
        .when(toolCmd({ name: 'q', status: 'pending' }))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created, deleted])
        .when(toolCmd({ name: 'q', status: 'pending' }))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created])
        .when(toolCmd({ name: 'q', status: 'pending', actingUserId: 'other' }))
        .thenThrows(expectCode('SESSION.NOT_FOUND'));
      spec
        .given([created, planned('q')])
        .when(toolCmd({ name: 'q', status: 'running', expectedVersion: 3 }))
        .thenThrows(expectCode('SESSION.VERSION_MISMATCH'));
    });

    it(`refuses a tool call past ${MAX_TOOL_CALLS}`, () => {
      const many = Array.from({ length: MAX_TOOL_CALLS }, (_, i) => planned(`t${i}`));
      spec
        .given([created, ...many])
        .when(toolCmd({ name: 'one more', status: 'pending' }))
        .thenThrows(expectCode('REQUEST.INVALID'));
      spec
        .given([created, ...many])
        .when(toolCmd({ name: 't0', status: 'running' }))
        .then([changed('t0', 'running')].map((e) => ({ ...e, data: { ...e.data, changedAt: at } })));
    });
  });

  describe('evolve and the view', () => {
    it('folds the document, tool calls, version and is_complete', () => {
      const state = [
        created,
        updated({ constraints: { kpi: ['orders'], cfc: ['CFC-1'] }, strategy: { steps: 2 } }),
        updated({ constraints: { cfc: null }, strategy: 'text now', summary: 's' }),
        planned('a', 'first'),
        planned('b'),
        changed('a', 'completed', { rows: '3' }),
      ].reduce(evolve, initialState());
      const view = viewOf('s1', state);
      expect(view).toEqual({
        session_id: 's1',
        version: 5,
        constraints: { kpi: ['orders'] },
        strategy: 'text now',
        response_plan: null,
        summary: 's',
        status: null,
        tool_calls: [
          {
            name: 'a',
            description: 'first',
            status: 'completed',
            result: { rows: '3' },
            error: null,
            planned_at: earlier,
            updated_at: earlier,
          },
          {
            name: 'b',
            description: null,
            status: 'pending',
            result: null,
            error: null,
            planned_at: earlier,
            updated_at: earlier,
          },
        ],
        is_complete: false,
        updated_at: earlier,
      });
      expect(viewOf('s1', evolve(state, changed('b', 'completed'))).is_complete).toBe(true);
      expect(viewOf('s1', initialState())).toMatchObject({
        version: 0,
        is_complete: true,
        tool_calls: [],
        updated_at: null,
      });
    });
  });
});
