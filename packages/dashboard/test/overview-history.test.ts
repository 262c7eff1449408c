/**
 * The overview of a tenant that already has history, in Chromium: the chart and the latest activity show
 * the log written before the page loaded (not "Waiting for writes…"), and the connections card counts a
 * connection open before the page loaded and the dashboard's own socket. Skipped without Chromium.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { TestWsClient } from '../../server/test/helpers/ws-client.ts';
import { restClient } from '../../server/test/http/rest.ts';

const CHROMIUM = '/usr/bin/chromium';

describe.skipIf(!existsSync(CHROMIUM))('overview of a tenant with history', () => {
  let srv: TestServer;
  let browser: Browser;
  let app: TestWsClient;
  beforeAll(async () => {
    srv = await startTestServer('sqlite');
    const api = restClient(srv.url, { apiKey: srv.adminKey, tenant: 'hist' });
    for (let i = 0; i < 6; i++) await api.put(`/v1/records/orders/o-${i}`, { json: { qty: i } });
    await api.post('/v1/events', { json: { type: 'trade_closed', payload: { n: 1 } } });
    app = await TestWsClient.connect(srv.wsUrl, await srv.token('hist', 'alice'));
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu'],
      headless: true,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await srv?.close();
  });

  it('shows the earlier writes in the chart and the activity list, and counts the open connections', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${srv.url}/dashboard`);
    await page.getByLabel('Tenant', { exact: true }).fill('hist');
    await page.getByLabel('Admin key, tenant API key or token').fill(srv.adminKey);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();

    await page.locator('table.activity tr', { hasText: 'orders/o-5' }).waitFor();
    await page.locator('table.activity tr', { hasText: 'trade_closed' }).waitFor();
    expect(await page.getByText('Waiting for writes').count()).toBe(0);
    const chart = page.locator('.chart');
    await expect.poll(async () => Number(await chart.getAttribute('data-records'))).toBe(6);
    expect(Number(await chart.getAttribute('data-events'))).toBe(1);

    // alice's socket and the dashboard's own, as soon as that one is open (not a poll later).
    await page.locator('.live[data-state="open"]').waitFor();
    const card = page.locator('.card', { hasText: 'connections' });
    await expect
      .poll(async () => ((await card.textContent()) ?? '').match(/\d+/)?.[0], { timeout: 3000 })
      .toBe('2');
    await page.close();
  });
});
