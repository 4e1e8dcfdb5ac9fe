import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import {
  GlobalStatsView,
  SessionPage,
  SessionStatsView,
  UsageStatsView,
  UserStatsView,
  TurnPage,
} from '@threadline/contracts';
import { freePort } from '@threadline/stack';
import { Api } from './http-client';
import type { Stack } from './stack';
import { startStackWithEnv } from './stack-env';

/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against the whole
 * stack with Taskmaster-4 dialogs imported by the demo importer (`npm run demo`'s CLI): signing in,
 * each page's figures against the API's own answers, paging, a wrong key, a user token, and CORS
 * from a page on another loopback origin. Screenshots of each page go to tmp/dashboard-screenshots/.
 * `tools/dashboard/ensure-chromium.sh` installs chromium where it is missing.
 */

// Each step drives a browser against a loaded machine: more room than the preset's 30 s.
jest.setTimeout(90_000);

const ROOT = resolve(__dirname, '../../..');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const SCREENSHOTS = resolve(ROOT, 'tmp/dashboard-screenshots');
const DIALOGS = 40;
const USERS = 8;
const run = promisify(execFile);

/**
 * The dataset: `DEMO_DATASET` when set, else the copy bundled in the repository (gzipped; the
 * importer unpacks it), else the importer's small test fixture.
 */
function datasetFile(): string {
  const candidates = [
    ...(process.env['DEMO_DATASET'] ? [resolve(process.env['DEMO_DATASET'])] : []),
    resolve(ROOT, 'tools/demo/data/taskmaster4/data_00.json.gz'),
    resolve(ROOT, 'tools/demo/fixtures/dialogs.json'),
  ];
  const found = candidates.find((file) => existsSync(file));
  if (found === undefined) throw new Error(`no demo dataset at ${candidates.join(' or ')}`);
  return found;
}

/** A page on `http://127.0.0.1:<port>/` with `window.callApi(url, token, init)`: a browser client of the API. */
async function startClientPage(port: number): Promise<Server> {
  const html = `<!doctype html><html><body><h1>client on port ${port}</h1><script>
    window.callApi = async (url, token, init = {}) => {
      try {
        const headers = { authorization: 'Bearer ' + token, ...(init.headers || {}) };
        const r = await fetch(url, { ...init, headers });
        return { status: r.status, body: await r.json(), etag: r.headers.get('etag'),
                 position: r.headers.get('x-threadline-position') };
      } catch (e) { return { error: String(e) }; }
    };
  </script></body></html>`;
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  return server;
}

/** A figure's raw value (`data-value`) and shown text by its test id. */
async function figure(page: Page, testId: string): Promise<{ value: string; text: string }> {
  const locator = page.getByTestId(testId).first();
  await locator.waitFor();
  return {
    value: (await locator.getAttribute('data-value')) ?? '',
    text: (await locator.innerText()).trim(),
  };
}

/** Asserts the figure shows `expected` as an integer (`1,234`). */
async function expectInt(page: Page, testId: string, expected: number): Promise<void> {
  const f = await figure(page, testId);
  expect({ testId, value: Number(f.value), text: Number(f.text.replace(/,/g, '')) }).toEqual({
    testId,
    value: expected,
    text: expected,
  });
}

/** Asserts the figure shows `expected` USD: the raw value exactly, the text rounded to its shown decimals. */
async function expectUsd(page: Page, testId: string, expected: number): Promise<void> {
  const f = await figure(page, testId);
  expect(Number(f.value)).toBe(expected);
  const shown = /^\$([\d,]+)\.(\d+)$/.exec(f.text);
  expect(shown).not.toBeNull();
  const decimals = shown![2]!.length;
  expect(Number(`${shown![1]!.replace(/,/g, '')}.${shown![2]!}`)).toBeCloseTo(expected, decimals - 1);
}

/** The `name` attribute of every element `locator` matches now, in document order. */
async function attributes(locator: Locator, name = 'data-value'): Promise<(string | null)[]> {
  return Promise.all((await locator.all()).map((element) => element.getAttribute(name)));
}

/** {@link attributes} as numbers. */
const numbers = async (locator: Locator): Promise<number[]> => (await attributes(locator)).map(Number);

/** Resolves once `check` holds (polled every 100 ms); throws naming `what` after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** The browser client page's `callApi` (startClientPage), as the evaluated functions reach it. */
interface ClientPage {
  callApi(url: string, token: string, init?: RequestInit): Promise<unknown>;
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

describe('dashboard in a browser (chromium)', () => {
  let stack: Stack;
  let api: Api;
  let context: BrowserContext;
  let page: Page;
  let workDir: string;
  const servers: Server[] = [];
  let allowedOrigin: string;
  let otherOrigin: string;
  const pageErrors: string[] = [];
  let sessionsTotal = 0;
  let usersTotal = 0;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: run tools/dashboard/ensure-chromium.sh (apt-get install chromium)`,
      );
    }
    workDir = mkdtempSync(join(tmpdir(), 'threadline-dashboard-'));
    mkdirSync(SCREENSHOTS, { recursive: true });
    const [allowedPort, otherPort] = [await freePort(), await freePort()];
    allowedOrigin = `http://127.0.0.1:${allowedPort}`;
    otherOrigin = `http://127.0.0.1:${otherPort}`;
    servers.push(await startClientPage(allowedPort), await startClientPage(otherPort));
    stack = await startStackWithEnv({ CORS_ORIGINS: allowedOrigin });
    api = new Api(stack.baseUrl);

    // The demo dataset, imported through the API by the demo CLI with the stack's admin key.
    const dataset = datasetFile();
    await run(
      process.execPath,
      [
        resolve(ROOT, 'dist/tools/demo/main.js'),
        ...['--url', stack.baseUrl, '--api-key', stack.adminKey.key, '--file', dataset],
        ...['--limit', String(DIALOGS), '--users', String(USERS), '--sample', '0', '--catch-up-ms', '0'],
      ],
      { cwd: ROOT, timeout: 180_000 },
    );
    // Wait until the analytics projection has applied every event (figures no longer move).
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stats = GlobalStatsView.parse((await api.get('/sessions/stats')).json);
      const sessions = SessionPage.parse((await api.get('/sessions?limit=1')).json);
      if (stats.projection_lag === 0 && stats.sessions.total === sessions.total && stats.turns > 0) break;
      if (Date.now() > deadline) throw new Error(`stats did not catch up: ${JSON.stringify(stats)}`);
      await new Promise((ok) => setTimeout(ok, 250));
    }

    context = await chromium.launchPersistentContext(join(workDir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1280, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // The page's own CSP must not block anything it needs (a blocked style or script logs this).
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy/.test(message.text()))
        pageErrors.push(message.text());
    });
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    for (const server of servers) await new Promise((ok) => server.close(ok));
    await stack?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  }, 60_000);

  it('serves the assets without credentials, the index revalidated and the hashed bundles immutable', async () => {
    const redirect = await fetch(`${stack.baseUrl}/dashboard`, { redirect: 'manual' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.get('location')).toBe('/dashboard/');
    const index = await fetch(`${stack.baseUrl}/dashboard/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await index.text();
    const script = /src="\.\/(assets\/app-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const bundle = await fetch(`${stack.baseUrl}/dashboard/${script}`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toMatch(/javascript/);
    expect(bundle.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // The API behind it still needs credentials.
    expect((await fetch(`${stack.baseUrl}/sessions/stats`)).status).toBe(401);
  });

  it('shows an error, not a blank page, for a wrong key', async () => {
    await page.goto(`${stack.baseUrl}/dashboard/`);
    await page.getByTestId('credential').fill('tl_not_a_real_key_0000000000000000');
    await page.getByTestId('sign-in').click();
    const error = page.getByTestId('signin-error');
    await error.waitFor();
    expect(await error.innerText()).toMatch(/Sign-in refused/);
    expect(await page.evaluate<number>('sessionStorage.length')).toBe(0);
    await shot(page, '0-wrong-key');
  });

  it('signs in with the admin key; the overview shows the API figures and refreshes', async () => {
    await page.getByTestId('credential').fill(stack.adminKey.key);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('page-overview').waitFor();
    // The credential lives in sessionStorage, never in the URL.
    expect(page.url()).not.toContain(stack.adminKey.key);
    expect(await page.evaluate<string[]>('Object.values({ ...sessionStorage })')).toEqual([
      stack.adminKey.key,
    ]);
    expect(await page.getByTestId('signed-in-as').innerText()).toBe('admin key');

    const stats = GlobalStatsView.parse((await api.get('/sessions/stats')).json);
    sessionsTotal = SessionPage.parse((await api.get('/sessions?limit=1')).json).total;
    expect(stats.sessions.total).toBe(sessionsTotal);
    usersTotal = stats.users;
    await expectInt(page, 'sessions-active', stats.sessions.active);
    await expectInt(page, 'sessions-ended', stats.sessions.ended);
    await expectInt(page, 'sessions-expired', stats.sessions.expired);
    await expectInt(page, 'sessions-total', stats.sessions.total);
    await expectInt(page, 'users', stats.users);
    await expectInt(page, 'turns', stats.turns);
    await expectInt(page, 'turns-failed', stats.turns_failed);
    await expectInt(page, 'tokens-total', stats.total_tokens);
    await expectUsd(page, 'cost', stats.cost_usd);
    const errorRate = await figure(page, 'error-rate');
    expect(Number(errorRate.value)).toBe(stats.turns_failed / stats.turns);

    const usage = UsageStatsView.parse((await api.get('/stats/usage?group_by=day')).json);
    const dayTokens = await numbers(page.getByTestId('day-tokens'));
    expect(dayTokens.reduce((a, b) => a + b, 0)).toBe(usage.rows.reduce((a, r) => a + r.total_tokens, 0));
    expect(await page.locator('[data-testid="chart-per-day"] canvas').count()).toBeGreaterThan(0);

    // Live: a new turn shows up without a reload (the overview polls).
    const before = stats.turns;
    const session = SessionPage.parse((await api.get('/sessions?limit=1')).json).sessions[0]!;
    const logged = await api.post(`/sessions/${session.session_id}/turns`, {
      user_input: 'one more coffee please',
      agent_responses: [{ agent_name: 'coffee-agent', response: 'coming up', model: 'gpt-4o-mini' }],
    });
    expect(logged.status).toBe(201);
    await page.locator(`[data-testid="turns"][data-value="${before + 1}"]`).waitFor({ timeout: 20_000 });
    await shot(page, '1-overview');
  });

  it('lists users with search and per-user usage, opens a user and pages their sessions', async () => {
    await page.getByTestId('nav-users').click();
    await page.getByTestId('users-table').waitFor();
    await page.getByTestId('users-scan').filter({ hasNotText: 'reading' }).waitFor();
    expect(await page.getByTestId('users-scan').innerText()).toMatch(
      new RegExp(`^${usersTotal} users in ${sessionsTotal} of ${sessionsTotal} sessions`),
    );
    await page.getByTestId('users-search').fill('demo-user-3');
    await page
      .locator('tr[data-user="demo-user-3"] [data-testid="user-turns"][data-value]:not([data-value=""])')
      .waitFor();
    expect(await page.locator('[data-testid="users-table"] tbody tr').count()).toBe(1);
    const user = UserStatsView.parse((await api.get('/users/demo-user-3/stats')).json);
    const row = page.locator('tr[data-user="demo-user-3"]');
    expect(Number(await row.getByTestId('user-turns').getAttribute('data-value'))).toBe(user.turns);
    expect(Number(await row.getByTestId('user-tokens').getAttribute('data-value'))).toBe(user.total_tokens);
    await shot(page, '2-users');

    await row.getByTestId('user-link').click();
    await page.getByTestId('page-user').waitFor();
    expect(await page.getByTestId('user-id').innerText()).toBe('demo-user-3');
    await expectInt(page, 'user-sessions-total', user.sessions.total);
    await expectInt(page, 'user-turns', user.turns);
    await expectInt(page, 'user-tokens', user.total_tokens);
    await expectUsd(page, 'user-cost', user.cost_usd);
    const sessions = SessionPage.parse((await api.get('/users/demo-user-3/sessions?limit=20')).json);
    await page.getByTestId('sessions-table').waitFor();
    expect(Number(await page.getByTestId('sessions-total').getAttribute('data-value'))).toBe(sessions.total);
    const shownIds = await attributes(
      page.locator('[data-testid="sessions-table"] tbody tr[data-session]'),
      'data-session',
    );
    expect(shownIds).toEqual(sessions.sessions.map((s) => s.session_id));

    // Filter (status) and sort change what the API is asked.
    await page.getByTestId('filter-sort').selectOption('created_at:asc');
    const ascending = SessionPage.parse(
      (await api.get('/users/demo-user-3/sessions?limit=20&sort=created_at&order=asc')).json,
    );
    await page
      .locator(
        `[data-testid="sessions-table"] tbody tr:first-child[data-session="${ascending.sessions[0]!.session_id}"]`,
      )
      .waitFor();
    // A metadata filter: the imported sessions carry source=taskmaster4, none carries source=other.
    await page.getByTestId('filter-meta-key').fill('source');
    await page.getByTestId('filter-meta-value').fill('other');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator('[data-testid="sessions-total"][data-value="0"]').waitFor();
    await page.getByTestId('filter-meta-value').fill('taskmaster4');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.locator(`[data-testid="sessions-total"][data-value="${sessions.total}"]`).waitFor();
    await page.getByTestId('filter-meta-key').fill('');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByTestId('filter-status').selectOption('expired');
    await page.locator('[data-testid="sessions-total"][data-value="0"]').waitFor();
    await page.getByTestId('filter-status').selectOption('all');
    await page.getByTestId('sessions-table').locator('tbody tr[data-session]').first().waitFor();
    await shot(page, '3-user');
  });

  it('opens a session: metadata, figures, and its turns as a timeline with responses and tool calls', async () => {
    // The session of demo-user-3 with the most turns.
    const sessions = SessionPage.parse(
      (await api.get('/users/demo-user-3/sessions?limit=200')).json,
    ).sessions;
    const chosen = [...sessions].sort((a, b) => b.turn_count - a.turn_count)[0]!;
    await page.locator(`tr[data-session="${chosen.session_id}"] [data-testid="session-link"]`).click();
    await page.getByTestId('page-session').waitFor();
    expect(await page.getByTestId('session-id').innerText()).toBe(chosen.session_id);
    const stats = SessionStatsView.parse((await api.get(`/sessions/${chosen.session_id}/stats`)).json);
    await expectInt(page, 'session-interactions', stats.interactions);
    await expectInt(page, 'session-tokens', stats.total_tokens);
    await expectInt(page, 'session-tool-calls', stats.tool_calls.total);
    await expectUsd(page, 'session-cost', stats.cost_usd);

    const turns = TurnPage.parse((await api.get(`/sessions/${chosen.session_id}/turns?limit=20`)).json).turns;
    await page.getByTestId('turn').first().waitFor();
    expect(await page.getByTestId('turn').count()).toBe(turns.length);
    const shownTokens = await numbers(page.getByTestId('turn-tokens'));
    expect(shownTokens).toEqual(turns.map((t) => t.usage.total_tokens));
    expect(await page.getByTestId('agent-response').count()).toBe(
      turns.reduce((n, t) => n + t.agent_responses.length, 0),
    );
    expect(await page.getByTestId('tool-call').count()).toBe(
      turns.reduce((n, t) => n + t.tool_calls.length, 0),
    );
    expect(await page.getByTestId('history-event').count()).toBeGreaterThan(0);
    await shot(page, '4-session');
  });

  it('pages a long list of sessions, 20 at a time, forwards and back', async () => {
    for (let i = 0; i < 25; i++) {
      expect((await api.post('/sessions', { user_id: 'paging-user', title: `paged ${i}` })).status).toBe(201);
    }
    await page.goto(`${stack.baseUrl}/dashboard/#/users/paging-user`);
    const rows = page.locator('[data-testid="sessions-table"] tbody tr[data-session]');
    const ids = () => attributes(rows, 'data-session');
    await page.locator('[data-testid="sessions-total"][data-value="25"]').waitFor();
    await rows.nth(19).waitFor();
    const first = SessionPage.parse((await api.get('/users/paging-user/sessions?limit=20')).json);
    expect(await ids()).toEqual(first.sessions.map((s) => s.session_id));
    await page.getByTestId('page-next').click();
    await page.getByTestId('page-number').filter({ hasText: 'page 2' }).waitFor();
    const second = SessionPage.parse(
      (await api.get(`/users/paging-user/sessions?limit=20&cursor=${encodeURIComponent(first.next_cursor!)}`))
        .json,
    );
    await until('the second page of 5 sessions', async () => (await rows.count()) === 5);
    expect(await ids()).toEqual(second.sessions.map((s) => s.session_id));
    expect(await page.getByTestId('page-next').isDisabled()).toBe(true);
    await page.getByTestId('page-previous').click();
    await until('the first page of 20 sessions again', async () => (await rows.count()) === 20);
    expect(await ids()).toEqual(first.sessions.map((s) => s.session_id));
  });

  it('shows usage by model and by agent over a chosen range', async () => {
    await page.getByTestId('nav-usage').click();
    await page.getByTestId('usage-model-table').waitFor();
    const today = new Date().toISOString().slice(0, 10);
    await page.getByTestId('usage-from').fill(today);
    await page.getByTestId('usage-to').fill(today);
    await page.getByTestId('usage-apply').click();
    await page.getByText(`Per day, ${today} to ${today} (UTC)`).waitFor();
    const models = UsageStatsView.parse(
      (await api.get(`/stats/usage?group_by=model&from=${today}&to=${today}`)).json,
    );
    const agents = UsageStatsView.parse(
      (await api.get(`/stats/usage?group_by=agent&from=${today}&to=${today}`)).json,
    );
    expect(models.rows.length).toBeGreaterThan(0);
    const modelTokens = await numbers(
      page.locator('[data-testid="usage-model-table"] [data-testid="usage-tokens"]'),
    );
    expect(modelTokens).toEqual(models.rows.map((r) => r.total_tokens));
    const agentCalls = await numbers(
      page.locator('[data-testid="usage-agent-table"] [data-testid="usage-calls"]'),
    );
    expect(agentCalls).toEqual(agents.rows.map((r) => r.calls));
    await shot(page, '5-usage');
  });

  it('shows service health and the projection lag', async () => {
    await page.getByTestId('nav-system').click();
    await page.getByTestId('health-table').waitFor();
    expect(await page.locator('tr[data-path="/health"] [data-testid="health-status"]').innerText()).toBe(
      'up (200)',
    );
    const stats = GlobalStatsView.parse((await api.get('/sessions/stats')).json);
    await expectInt(page, 'head-position', stats.head_position);
    await expectInt(page, 'projection-lag', stats.projection_lag);
    await shot(page, '6-system');
  });

  it('signs in with a user token, which sees its own user only', async () => {
    const minted = await api.post('/auth/user-tokens', { user_id: 'demo-user-2', ttl_seconds: 600 });
    expect(minted.status).toBe(201);
    const token = (minted.json as { token: string }).token;
    await page.getByTestId('sign-out').click();
    await page.getByTestId('credential').fill(token);
    await page.getByTestId('sign-in').click();
    // Signing in keeps the page the tab was on (the system page); the overview is one click away.
    await page.getByTestId('page-system').waitFor();
    await page.getByTestId('nav-overview').click();
    await page.getByTestId('page-overview').waitFor();
    expect(await page.getByTestId('signed-in-as').innerText()).toBe('user demo-user-2');
    const own = UserStatsView.parse((await api.get('/users/demo-user-2/stats')).json);
    await expectInt(page, 'turns', own.turns);
    await expectInt(page, 'sessions-total', own.sessions.total);
    await shot(page, '7-user-token-overview');
    // Another user's page: the API answers 404, the page says so.
    await page.goto(`${stack.baseUrl}/dashboard/#/users/demo-user-1`);
    const error = page.getByTestId('error').first();
    await error.waitFor();
    expect(await error.innerText()).toMatch(/Not found/);
    await page.getByTestId('sign-out').click();
  });

  it('lets a page on an allowed origin call the API with a user token, and no other origin', async () => {
    const minted = await api.post('/auth/user-tokens', { user_id: 'demo-user-4', ttl_seconds: 600 });
    const token = (minted.json as { token: string }).token;
    const own = UserStatsView.parse((await api.get('/users/demo-user-4/stats')).json);
    const client = await context.newPage();
    try {
      await client.goto(`${allowedOrigin}/`);
      const read = await client.evaluate(
        ([url, t]) => (globalThis as unknown as ClientPage).callApi(url!, t!),
        [`${stack.baseUrl}/users/demo-user-4/stats`, token],
      );
      expect(read).toMatchObject({ status: 200, body: { user_id: 'demo-user-4', turns: own.turns } });
      // A write with a JSON body and the API's own headers needs a preflight; exposed headers are readable.
      const created = await client.evaluate(
        ([url, t]) =>
          (globalThis as unknown as ClientPage).callApi(url!, t!, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': 'cors-e2e-1' },
            body: JSON.stringify({ title: 'from the browser' }),
          }),
        [`${stack.baseUrl}/sessions`, token],
      );
      expect(created).toMatchObject({
        status: 201,
        body: { user_id: 'demo-user-4', title: 'from the browser' },
        etag: '"1"',
      });
      expect((created as { position: string | null }).position).toMatch(/^\d+$/);

      await client.goto(`${otherOrigin}/`);
      const refused = await client.evaluate(
        ([url, t]) => (globalThis as unknown as ClientPage).callApi(url!, t!),
        [`${stack.baseUrl}/users/demo-user-4/stats`, token],
      );
      expect(Object.keys(refused as object)).toEqual(['error']);
      expect((refused as { error: string }).error).toMatch(/TypeError/);
    } finally {
      await client.close();
    }
    // The preflight as the API answers it: allowed origin yes, other origin no CORS headers.
    const preflight = (origin: string) =>
      fetch(`${stack.baseUrl}/sessions`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
    const allowed = await preflight(allowedOrigin);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(allowedOrigin);
    expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
    const other = await preflight(otherOrigin);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    expect(pageErrors).toEqual([]);
  });
});
