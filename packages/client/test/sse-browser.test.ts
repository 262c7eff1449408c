/**
 * The SDK's SSE transport in a real browser (Debian's Chromium driven by playwright-core): the SDK,
 * bundled by esbuild for the browser, runs in a page of the server's own origin with
 * `transports: ['sse']` (fetch streaming, no WebSocket), subscribes, writes over REST, and sees a
 * write made by a Node client on the WebSocket; `status` names the transport.
 *
 * Without /usr/bin/chromium the test is skipped with a loud message, except under CI=true, where it fails.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { SyncClient } from '../src/index.ts';
import { FAST_BACKOFF, waitFor } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const banner = '!'.repeat(100);
  const message = `${CHROMIUM} is missing: the SDK's SSE browser test cannot run (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${banner}\n!!! SKIPPED: ${message}\n${banner}\n`);
}

interface PageSdk {
  state(): string;
  transport(): string;
  qty(): number | undefined;
  increment(): Promise<string>;
}
declare const sdk: PageSdk;

describe.skipIf(!haveChromium)('the SDK over SSE in Chromium', () => {
  let srv: TestServer;
  let browser: Browser;
  let bundle: string;
  const clients: SyncClient[] = [];

  beforeAll(async () => {
    srv = await startTestServer('sqlite');
    const result = await build({
      stdin: {
        contents: `import { SyncClient } from './src/index.ts';
          globalThis.startSdk = (url, token) => {
            const c = new SyncClient({ url, token, transports: ['sse'], backoff: { baseMs: 50, capMs: 400 } });
            const stock = c.collection('stock');
            stock.subscribe(() => undefined);
            globalThis.sdk = {
              state: () => c.state,
              transport: () => c.transport,
              qty: () => stock.get('sku-1')?.data.qty,
              increment: async () => (await stock.increment('sku-1', { qty: 1 })).status,
            };
          };`,
        resolveDir: join(import.meta.dirname, '..'),
        loader: 'ts',
      },
      bundle: true,
      format: 'iife',
      platform: 'browser',
      target: 'es2022',
      write: false,
      conditions: process.env.NODE_OPTIONS?.includes('@syncbridge/source') ? ['@syncbridge/source'] : [],
      logLevel: 'silent',
    });
    bundle = result.outputFiles[0]!.text;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await browser?.close();
    await srv?.close();
  });

  it('subscribes, writes over REST and receives others’ writes', async () => {
    const token = await srv.token('web', 'alice');
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${srv.url}/v1/health`);
    await page.addScriptTag({ content: bundle });
    await page.evaluate(
      ([url, t]) => (globalThis as unknown as { startSdk(u: string, t: string): void }).startSdk(url!, t!),
      [srv.wsUrl, token],
    );
    await page.waitForFunction(() => sdk.state() === 'open');
    expect(await page.evaluate(() => sdk.transport())).toBe('sse');
    expect(await page.evaluate(() => sdk.increment())).toBe('applied');
    const node = new SyncClient({ url: srv.wsUrl, token, transports: ['websocket'], backoff: FAST_BACKOFF });
    clients.push(node);
    await waitFor(() => node.state === 'open', 'the Node client to open');
    await node.collection('stock').increment('sku-1', { qty: 1 });
    await page.waitForFunction(() => sdk.qty() === 2);
    await page.close();
  });
});
