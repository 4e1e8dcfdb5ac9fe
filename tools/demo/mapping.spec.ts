import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { LogTurnBody } from '@threadline/contracts';
import { DEFAULT_DATASET, parseDataset, type Dialog } from './dataset';
import { DEMO_AGENT, DEMO_MODEL, mapDialog, MappingError, planDialogs, totalsOf, userIdFor } from './mapping';

// fixtures/dialogs.json: two dialogs shaped like data_00.json with annotations on both speakers,
// consecutive assistant utterances, two user utterances in a row, an assistant opening, a call
// without a request, and a request and a response that are not valid JSON.
const FIXTURE = join(__dirname, 'fixtures/dialogs.json');
const dialogs = (): Dialog[] => parseDataset(JSON.parse(readFileSync(FIXTURE, 'utf8')), FIXTURE);

function first(): Dialog {
  const [dialog] = dialogs();
  if (!dialog) throw new Error('fixture has no dialog');
  return dialog;
}

describe('mapDialog', () => {
  const plan = mapDialog(first(), { index: 0, userId: 'demo-user-1', runId: 'run-1' });

  it('makes one session per dialog with the scenario as title and the source in metadata', () => {
    expect(plan.session).toEqual({
      user_id: 'demo-user-1',
      title: 'Auto template 26 order match and chai latte drinks no mods',
      metadata: { source: 'taskmaster4', conversation_id: 'dlg-1', vertical: 'Coffee', demo_run: 'run-1' },
      created_from: 'demo',
    });
  });

  it('starts a turn at each user utterance, even one followed by another user utterance', () => {
    expect(plan.turns.map((t) => t.user_input)).toEqual([
      'one Chai Latte please',
      'oat, extra foam',
      'thanks',
      'bye',
    ]);
    expect(plan.turns[2]?.agent_responses).toEqual([]);
    expect(plan.turns[3]?.agent_responses).toEqual([]);
  });

  it('keeps consecutive assistant utterances as separate responses with increasing turn_order, usage omitted', () => {
    expect(plan.turns[0]?.agent_responses).toEqual([
      { agent_name: DEMO_AGENT, response: 'Any milk preference?', turn_order: 0, model: DEMO_MODEL },
      { agent_name: DEMO_AGENT, response: 'We have oat and soy.', turn_order: 1, model: DEMO_MODEL },
    ]);
  });

  it('pairs api_call_<n> with api_response_<n> into tool calls on the turn of the utterance carrying them', () => {
    expect(plan.turns[0]?.tool_calls).toEqual([
      {
        name: 'get_menu_items',
        request: { query: 'Chai Latte' },
        status: 'completed',
        result: { menu_items: [{ menu_item_id: 'chai-latte-1928', name: 'Chai Latte' }] },
      },
      // show_menu has no request annotation in the data: no request is sent.
      { name: 'show_menu', status: 'completed', result: { success: true } },
    ]);
  });

  it('keeps a request or response that is not valid JSON as its raw string, and takes calls from assistant utterances', () => {
    expect(plan.turns[1]?.tool_calls).toEqual([
      {
        name: 'add_order_item',
        request: '{"menu_item_id": ""chai-latte-1928"","quantity": "1"}',
        status: 'completed',
        result: { order_id: '28740', order_item_id: '92049' },
      },
      {
        name: 'get_order_details',
        request: { order_id: '28740' },
        status: 'completed',
        result: '{"menu_items":[{"name":" \tAssam"}]}',
      },
    ]);
    expect(plan.toolCalls).toBe(4);
    expect(plan.utterances).toBe(7);
  });

  it('produces bodies the API schema accepts', () => {
    for (const turn of plan.turns) expect(LogTurnBody.safeParse(turn).success).toBe(true);
  });

  it('puts assistant utterances before the first user utterance in an opening turn with empty user_input', () => {
    const second = dialogs()[1];
    if (!second) throw new Error('fixture has no second dialog');
    const opened = mapDialog(second, { index: 1, userId: 'demo-user-2', runId: 'run-1' });
    expect(opened.turns.map((t) => [t.user_input, t.agent_responses?.map((r) => r.response)])).toEqual([
      ['', ['Welcome! What can I get you?']],
      ['a cortado', ['Coming up.']],
    ]);
  });

  it('marks a call without a recorded response as pending', () => {
    const dialog: Dialog = {
      ...first(),
      utterances: [
        {
          index: 0,
          speaker: 'user',
          text: 'hi',
          annotations: [
            { name: 'api_call', value: 'finish_order', context: 'api_call_0' },
            { name: 'request', value: '{"order_id": "1"}', context: 'api_call_0' },
          ],
        },
      ],
    };
    expect(mapDialog(dialog, { index: 0, userId: 'u', runId: 'r' }).turns[0]?.tool_calls).toEqual([
      { name: 'finish_order', request: { order_id: '1' }, status: 'pending' },
    ]);
  });

  it('rejects a dialog whose utterance the API would refuse, naming the dialog and the field', () => {
    const dialog: Dialog = {
      ...first(),
      utterances: [{ index: 0, speaker: 'user', text: 'x'.repeat(100_001), annotations: [] }],
    };
    expect(() => mapDialog(dialog, { index: 0, userId: 'u', runId: 'r' })).toThrow(MappingError);
    expect(() => mapDialog(dialog, { index: 0, userId: 'u', runId: 'r' })).toThrow(
      /dialog dlg-1: turn 1 .*user_input/,
    );
  });
});

describe('planDialogs', () => {
  it('assigns users round robin and honours the limit', () => {
    const planned = planDialogs([...dialogs(), ...dialogs()], { users: 3, runId: 'r', limit: 4 });
    expect(planned.map((p) => (p.ok ? p.plan.userId : p.error.message))).toEqual([
      'demo-user-1',
      'demo-user-2',
      'demo-user-3',
      'demo-user-1',
    ]);
    expect(userIdFor(5, 20)).toBe('demo-user-6');
  });

  it('sums what the fixture sends', () => {
    const plans = planDialogs(dialogs(), { users: 20, runId: 'r' }).flatMap((p) => (p.ok ? [p.plan] : []));
    expect(totalsOf(plans)).toEqual({
      dialogs: 2,
      utterances: 10,
      turns: 6,
      agentResponses: 5,
      toolCalls: 4,
    });
  });
});

// The bundled dataset: the mapping's totals against counts taken independently from the raw JSON
// (user utterances, api_call contexts).
const BUNDLED = resolve(__dirname, '../..', DEFAULT_DATASET);
describe('the bundled data_00.json', () => {
  it('maps every dialog, one turn per user utterance and one tool call per api_call', () => {
    const raw = JSON.parse(gunzipSync(readFileSync(BUNDLED)).toString('utf8')) as {
      utterances: { speaker: string; annotations: { name: string; context: string }[] }[];
    }[];
    const userUtterances = raw.flatMap((d) => d.utterances).filter((u) => u.speaker === 'user').length;
    const apiCalls = raw
      .flatMap((d) => d.utterances)
      .flatMap((u) => u.annotations)
      .filter((a) => a.name === 'api_call').length;
    const planned = planDialogs(parseDataset(raw, BUNDLED), { users: 20, runId: 'r' });
    expect(planned.filter((p) => !p.ok)).toEqual([]);
    const totals = totalsOf(planned.flatMap((p) => (p.ok ? [p.plan] : [])));
    expect(totals.dialogs).toBe(raw.length);
    expect(totals.dialogs).toBe(500);
    expect(totals.turns).toBe(userUtterances); // every dialog opens with the user
    expect(totals.toolCalls).toBe(apiCalls);
  });
});
