/**
 * IndexedDbStorage with two tabs of one origin in Chromium (Debian's, driven by playwright-core): a tab
 * still open on an older version of the database blocks the SDK's upgrade, which the SDK's client
 * reports as a STORAGE error (`details.reason: 'blocked'`) while its `whenLoaded()` waits, and which goes
 * on once that tab lets go; and when another tab upgrades the database to a newer version, the SDK's
 * storage closes its connection at once (the upgrade is not blocked), reports `versionchange`, and
 * refuses later calls with STORAGE.
 *
 * Without /usr/bin/chromium the test is skipped with a loud message, except under CI=true, where it fails.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const message = `${CHROMIUM} is missing: the IndexedDB tabs test cannot run (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${'!'.repeat(100)}\n!!! SKIPPED: ${message}\n${'!'.repeat(100)}\n`);
}

// The page: the SDK, and helpers to play an older or a newer version of the app from another tab.
const PAGE_SCRIPT = `
import { IndexedDbStorage, SyncClient } from './src/index.ts';
window.errors = [];
window.sdk = {
  start(name) {
    window.storage = new IndexedDbStorage({ name });
    window.client = new SyncClient({
      url: 'ws://127.0.0.1:9/v1/realtime', token: 't', replicaKey: 'alice', storage: window.storage, autoConnect: false,
    });
    window.client.on('error', (e) => window.errors.push({ code: e.code, details: e.details }));
    window.loaded = false;
    window.client.whenLoaded().then(() => { window.loaded = true; });
  },
  async append() {
    try { await window.storage.append([]); return 'ok'; } catch (e) { return { code: e.code, details: e.details }; }
  },
  openRaw(name, version) {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(name, version);
      request.onupgradeneeded = () => {
        if (!request.result.objectStoreNames.contains('mutations'))
          request.result.createObjectStore('mutations', { keyPath: 'position' });
      };
      request.onsuccess = () => { window.raw = request.result; resolve(request.result.version); };
      request.onerror = () => reject(request.error);
      request.onblocked = () => resolve('blocked');
    });
  },
  closeRaw() { window.raw.close(); },
};
`;

interface PageApi {
  start(name: string): void;
  append(): Promise<unknown>;
  openRaw(name: string, version: number): Promise<number | 'blocked'>;
  closeRaw(): void;
}
declare const sdk: PageApi;
declare const errors: Array<{ code: string; details: { reason: string } }>;
declare const loaded: boolean;

describe.skipIf(!haveChromium)('IndexedDbStorage and other tabs, in Chromium', () => {
  let site: Server;
  let url = '';
  let browser: Browser;

  beforeAll(async () => {
    const bundle = await build({
      stdin: { contents: PAGE_SCRIPT, resolveDir: new URL('..', import.meta.url).pathname, loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0]!.text;
    site = createServer((req, res) => {
      if (req.url?.startsWith('/app.js'))
        return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<!doctype html><script type="module" src="/app.js"></script>');
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(site.address() as { port: number }).port}/`;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
      headless: true,
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.close(resolve));
  });

  async function tabs(): Promise<[Page, Page]> {
    const context = await browser.newContext();
    const open = async () => {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      await page.goto(url);
      await page.waitForFunction(() => typeof sdk === 'object');
      return page;
    };
    return [await open(), await open()];
  }

  it('reports an older version held open by another tab, and loads once that tab lets go', async () => {
    const [older, app] = await tabs();
    expect(await older.evaluate(() => sdk.openRaw('tabs', 3))).toBe(3);
    await app.evaluate(() => sdk.start('tabs'));
    await app.waitForFunction(() => errors.length > 0);
    expect(await app.evaluate(() => errors)).toMatchObject([
      { code: 'STORAGE', details: { reason: 'blocked', oldVersion: 3, version: 4 } },
    ]);
    expect(await app.evaluate(() => loaded)).toBe(false);
    await older.evaluate(() => sdk.closeRaw());
    await app.waitForFunction(() => loaded);
    expect(await app.evaluate(() => sdk.append())).toBe('ok');
  });

  it('closes for a newer version opened in another tab, reports it, and refuses later calls', async () => {
    const [app, newer] = await tabs();
    await app.evaluate(() => sdk.start('tabs-newer'));
    await app.waitForFunction(() => loaded);
    // Not blocked: the SDK's tab closed its connection on versionchange.
    expect(await newer.evaluate(() => sdk.openRaw('tabs-newer', 7))).toBe(7);
    await app.waitForFunction(() => errors.length > 0);
    expect(await app.evaluate(() => errors)).toMatchObject([
      { code: 'STORAGE', details: { reason: 'versionchange', version: 4, newVersion: 7 } },
    ]);
    expect(await app.evaluate(() => sdk.append())).toMatchObject({
      code: 'STORAGE',
      details: { reason: 'versionchange' },
    });
  });
});
