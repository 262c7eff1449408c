/**
 * The dashboard as an operator uses it: a real server serves it at /dashboard, Debian's Chromium
 * (driven by playwright-core) logs in through the form with the admin key, sees a REST write appear on
 * the overview, resolves a manual conflict with an edited merge (checked over REST), and retries a dead
 * webhook delivery until it is delivered. A screenshot of every page goes to docs/images/dashboard-*.png
 * (referenced by docs/dashboard.md).
 *
 * Serving (no key needed for the page, ETag, gzip, CSP) is checked without a browser. Without
 * /usr/bin/chromium the browser part is skipped with a loud message, except under CI=true, where it fails.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { providerPullSpec } from '../../../examples/open-banking-pull/provider.ts';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { restClient } from '../../server/test/http/rest.ts';
import { Receiver } from '../../server/test/webhooks/receiver.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const banner = '!'.repeat(100);
  const message = `${CHROMIUM} is missing: the dashboard's browser test cannot run (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${banner}\n!!! SKIPPED: ${message}\n${banner}\n`);
}

const IMAGES = fileURLToPath(new URL('../../../docs/images/', import.meta.url));
const TENANT = 'ops';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer('sqlite', {
    webhookAllowPrivate: ['127.0.0.1/32'],
    webhookRetrySchedule: '100ms,200ms',
    webhookPollMs: 100,
  });
});
afterAll(async () => srv?.close());

describe('serving the dashboard', () => {
  it('serves the page, script and stylesheet without a key, with an ETag, gzip and a strict CSP', async () => {
    const redirect = await fetch(`${srv.url}/dashboard`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/dashboard/');

    const page = await fetch(`${srv.url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script type="module" src="/dashboard/app.js">');
    // Nothing comes from another origin.
    expect(html).not.toMatch(/https?:\/\//);

    const script = await fetch(`${srv.url}/dashboard/app.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
    const etag = script.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const body = Buffer.from(await script.arrayBuffer());
    expect(body.toString()).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)/);

    const again = await fetch(`${srv.url}/dashboard/app.js`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);

    // A raw request (fetch would decompress for us): the gzip body is the same script.
    const gz = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      import('node:http')
        .then(({ get }) =>
          get(`${srv.url}/dashboard/app.js`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }),
            );
          }).on('error', reject),
        )
        .catch(reject);
    });
    expect(gz.encoding).toBe('gzip');
    expect(gunzipSync(gz.body).equals(body)).toBe(true);

    const css = await fetch(`${srv.url}/dashboard/app.css`);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect((await fetch(`${srv.url}/dashboard/nothing.js`)).status).toBe(404);
    // The data behind it still needs a key.
    expect((await fetch(`${srv.url}/v1/sync/health`)).status).toBe(401);
  });
});

describe.skipIf(!haveChromium)('the dashboard in Chromium', () => {
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const admin = () => restClient(srv.url, { apiKey: srv.adminKey, tenant: TENANT });

  beforeAll(async () => {
    mkdirSync(IMAGES, { recursive: true });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
    page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
    });
    // Conflicts in `accounts` wait for a person.
    const res = await admin().put('/v1/collections/accounts', { json: { strategy: 'manual' } });
    expect(res.status, res.text).toBe(200);
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function open(path: string, heading: string): Promise<void> {
    await page.goto(`${srv.url}/dashboard/#/${path}`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  }

  async function screenshot(name: string): Promise<void> {
    await page.screenshot({ path: `${IMAGES}dashboard-${name}.png`, fullPage: true });
  }

  it('logs in with the admin key and shows a REST write on the overview, live', async () => {
    await page.goto(`${srv.url}/dashboard`);
    await page.getByLabel('Tenant', { exact: true }).fill(TENANT);
    await page.getByLabel('Admin key, tenant API key or token').fill('not-the-key');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page
      .getByRole('alert')
      .filter({ hasText: /API key/i })
      .waitFor();
    problems.length = 0; // the browser logs the refused call; from here on nothing may fail

    await page.getByLabel('Admin key, tenant API key or token').fill(srv.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.locator('.live[data-state="open"]').waitFor();
    // The key is in the tab's session storage, not in the URL.
    expect(page.url()).not.toContain(srv.adminKey);

    const api = admin();
    const put = await api.put('/v1/records/accounts/acc-1', { json: { owner: 'alice', balance: 100 } });
    expect(put.status, put.text).toBe(201);
    const row = page.locator('table.activity tr', { hasText: 'accounts/acc-1' });
    await row.waitFor();
    expect(await row.textContent()).toContain('v1');

    // A little traffic for the chart and the screenshot.
    for (let i = 0; i < 12; i++) {
      await api.put(`/v1/records/orders/o-${i}`, { json: { qty: i, status: 'new' } });
      await api.post('/v1/events', { json: { type: 'trade_closed', payload: { n: i }, target: 'bfc' } });
    }
    await page.locator('table.activity tr', { hasText: 'trade_closed' }).first().waitFor();
    // `orders` is new: the dashboard finds it in the log and reads its changes from where it started.
    await page.locator('table.activity tr', { hasText: 'orders/o-11' }).waitFor();
    await screenshot('overview');
  });

  it('resolves a manual conflict with an edited merge, and the record changes', async () => {
    const api = admin();
    const bob = restClient(srv.url, { token: await srv.token(TENANT, 'bob') });
    // The server moves on to v2 while bob, still at v1, renames the owner and adds a note.
    expect((await api.patch('/v1/records/accounts/acc-1', { json: { balance: 150 } })).status).toBe(200);
    const stale = await bob.put('/v1/records/accounts/acc-1', {
      json: { owner: 'alice b.', balance: 100, note: 'from phone' },
      headers: { 'if-match': '1' },
    });
    expect(stale.status, stale.text).toBe(409);

    await open('conflicts', 'Conflicts');
    const detail = page.locator('[data-conflict-detail]');
    await detail.getByText('accounts/acc-1').first().waitFor();
    // Side by side: base, server and client, the fields each side changed marked.
    const balance = detail.locator('table.diff tr', { hasText: 'balance' });
    expect((await balance.locator('td').allTextContents()).map((t) => t.trim())).toEqual([
      '100',
      '150',
      '100',
    ]);
    expect(
      await detail.locator('table.diff tr', { hasText: 'note' }).locator('td').allTextContents(),
    ).toEqual(['absent', 'absent', '"from phone"']);
    await screenshot('conflicts');

    await detail.getByRole('button', { name: 'Edit merged' }).click();
    // Proposed: the server's balance with bob's owner and note.
    const merged = JSON.parse(await detail.locator('textarea[name="merged"]').inputValue());
    expect(merged).toEqual({ owner: 'alice b.', balance: 150, note: 'from phone' });
    await detail
      .locator('textarea[name="merged"]')
      .fill(JSON.stringify({ ...merged, note: 'checked by ops' }));
    await detail.getByRole('button', { name: 'Resolve with merged' }).click();
    await page.getByText('No open conflict. All clear.').waitFor();

    const record = await api.get('/v1/records/accounts/acc-1');
    expect(record.body).toMatchObject({
      version: 3,
      data: { owner: 'alice b.', balance: 150, note: 'checked by ops' },
    });
    const resolved = await api.get('/v1/conflicts?status=resolved');
    expect(resolved.body.conflicts).toHaveLength(1);
    expect(resolved.body.conflicts[0]).toMatchObject({ resolution: 'merge', resolvedBy: 'admin' });
  });

  it('retries a dead delivery from the Webhooks page until it is delivered', async () => {
    const api = admin();
    let healthy = false;
    const receiver = await Receiver.start(() => ({ status: healthy ? 200 : 500, body: 'down' }));
    try {
      const created = await api.post('/v1/webhooks', {
        json: { name: 'bfc ledger', platform: 'bfc', url: receiver.url, eventTypes: ['payment_*'] },
      });
      expect(created.status, created.text).toBe(201);
      const hook = created.body as { id: string };
      const published = await api.post('/v1/events', {
        json: { type: 'payment_settled', payload: { amount: 42 }, target: 'bfc' },
      });
      expect(published.status).toBe(201);
      await receiver.waitFor(3); // first try and both retries

      await open('webhooks', 'Webhooks');
      await page.locator(`tr[data-webhook="${hook.id}"]`).waitFor();
      await page.locator('select[name="delivery-status"]').selectOption('failed');
      const dead = page.locator('tr[data-status="failed"]', { hasText: 'payment_settled' });
      await dead.waitFor();
      await dead.getByTitle('Show the attempts').click();
      await page.locator('tr.details', { hasText: 'HTTP 500' }).waitFor();
      await screenshot('webhooks');

      healthy = true;
      await dead.getByRole('button', { name: 'Retry' }).click();
      await receiver.waitFor(4);
      await page.locator('select[name="delivery-status"]').selectOption('success');
      await page.locator('tr[data-status="success"]', { hasText: 'payment_settled' }).waitFor();
      const deliveries = await api.get(`/v1/webhooks/${hook.id}/deliveries`);
      expect(deliveries.body.deliveries).toHaveLength(1);
      expect(deliveries.body.deliveries[0]).toMatchObject({ status: 'success', attempts: 4 });

      // Replay the last hour, delivered events included: the receiver gets the event once more.
      await page.getByLabel('only events not yet delivered').uncheck();
      await page.getByRole('button', { name: 'Replay' }).click();
      await page.getByText('1 queued').waitFor();
      const again = await receiver.waitFor(5);
      expect(JSON.parse(again[4]!.body)).toMatchObject({ type: 'payment_settled' });
    } finally {
      await receiver.close();
    }
  });

  it('shows platforms, events, connections and devices, and connectors', async () => {
    await restClient(srv.url, { token: await srv.token(TENANT, 'bob') }).post('/v1/devices', {
      json: { id: 'bob-phone', type: 'phone', name: "Bob's phone", categories: ['accounts'] },
    });

    await open('platforms', 'Platforms & sync health');
    await page.locator('tr[data-platform="bfc"]').waitFor();
    await screenshot('platforms');

    await open('events', 'Events');
    await page.locator('table.log tr', { hasText: 'payment_settled' }).waitFor();
    await screenshot('events');

    await open('connections', 'Connections & devices');
    await page.getByRole('cell', { name: 'dashboard' }).first().waitFor(); // the dashboard's own socket
    await page.getByRole('cell', { name: "Bob's phone (bob-phone)" }).waitFor();
    await screenshot('connections');

    // A market-data feed whose upstream is down: it backs off and says why.
    const feed = await admin().post('/v1/connectors', {
      json: {
        name: 'nse-feed',
        kind: 'ws-feed',
        url: 'ws://127.0.0.1:9/feed',
        subscribeMessage: { op: 'sub' },
      },
    });
    expect(feed.status, feed.text).toBe(201);
    // A scheduled pull can be run now; a stream (ws-feed, pg-cdc) cannot, and shows no button.
    const pull = await admin().post('/v1/connectors', {
      json: providerPullSpec({
        name: 'bank-pull',
        tenant: TENANT,
        baseUrl: 'http://127.0.0.1:9',
        apiKey: 'unused',
        connections: [],
      }),
    });
    expect(pull.status, pull.text).toBe(201);
    await open('connectors', 'Connectors');
    const row = page.locator('tr[data-connector="nse-feed"]');
    await row.getByText('backing off').waitFor();
    await page.locator('tr[data-connector="bank-pull"]').getByRole('button', { name: 'Run now' }).waitFor();
    expect(await row.getByRole('button', { name: 'Run now' }).count()).toBe(0);
    await screenshot('connectors');

    expect(problems).toEqual([]);
  });

  it('shows a user (no admin role) the tenant as the access rules show it, and no admin pages', async () => {
    const T = 'ruled';
    const boss = restClient(srv.url, { token: await srv.token(T, 'boss', { roles: ['admin'] }) });
    const rules = { read: 'record.locationId in auth.claims.locations' };
    expect((await boss.put('/v1/collections/stock', { json: { rules } })).status).toBe(200);
    await boss.put('/v1/records/stock/visible-wh1', { json: { locationId: 'wh-1', sku: 'drill' } });
    await boss.put('/v1/records/stock/hidden-wh2', { json: { locationId: 'wh-2', sku: 'saw' } });
    const token = await srv.token(T, 'clerk', { claims: { locations: ['wh-1'] } });
    const context = await browser.newContext();
    const tab = await context.newPage();
    tab.setDefaultTimeout(15_000);
    const failures: string[] = [];
    tab.on('response', (r) => {
      if (r.status() >= 400) failures.push(`${r.status()} ${r.url()}`);
    });
    try {
      await tab.goto(`${srv.url}/dashboard`);
      await tab.getByLabel('Admin key, tenant API key or token').fill(token);
      await tab.getByRole('button', { name: 'Log in' }).click();
      await tab.locator('.live[data-state="open"]').waitFor();
      await tab.getByText('(user view)').waitFor();
      const nav = await tab.locator('header nav').textContent();
      expect(nav).not.toContain('Webhooks');
      expect(nav).not.toContain('Connectors');
      await tab.goto(`${srv.url}/dashboard/#/events`);
      await tab.locator('table.log tr', { hasText: 'visible-wh1' }).waitFor();
      expect(await tab.locator('main').textContent()).not.toContain('hidden-wh2');
      expect(await tab.locator('main').textContent()).not.toContain('Dead deliveries');
      await tab.goto(`${srv.url}/dashboard/#/webhooks`);
      await tab.getByRole('note').filter({ hasText: 'for tenant admins' }).waitFor();
      await tab.goto(`${srv.url}/dashboard/#/overview`);
      await tab.locator('main h1').first().waitFor();
      await new Promise((r) => setTimeout(r, 500));
      expect(await tab.locator('body').textContent()).not.toContain('hidden-wh2');
      // No page a user reaches asks for what only admins may see.
      expect(failures.filter((f) => f.startsWith('403'))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('logs in with a user token too (tenant read from it), and says so when the token is refused', async () => {
    const token = await srv.token(TENANT, 'carol', { roles: ['admin'] });
    const context = await browser.newContext();
    const tab = await context.newPage();
    tab.setDefaultTimeout(15_000);
    try {
      await tab.goto(`${srv.url}/dashboard`);
      await tab.getByLabel('Admin key, tenant API key or token').fill(token);
      await tab.getByRole('button', { name: 'Log in' }).click();
      await tab.locator('.live[data-state="open"]').waitFor();
      expect(await tab.locator('header .who b').textContent()).toBe(TENANT);
      expect(tab.url()).not.toContain(token);
      // A token the server no longer accepts (as when it expires): the dashboard asks for a new login.
      await tab.evaluate(`(() => {
        const key = 'syncbridge.dashboard.session';
        const session = JSON.parse(sessionStorage.getItem(key));
        sessionStorage.setItem(key, JSON.stringify({ ...session, secret: session.secret.slice(0, -6) + 'AAAAAA' }));
      })()`);
      await tab.reload();
      await tab.getByRole('alert').filter({ hasText: 'no longer accepts' }).waitFor();
      await tab.getByRole('button', { name: 'Log in again' }).click();
      await tab.getByRole('button', { name: 'Log in' }).waitFor();
      expect(await tab.evaluate('sessionStorage.length')).toBe(0);
    } finally {
      await context.close();
    }
  });
});
