/**
 * The SDK in a real browser: Debian's Chromium driven by playwright-core loads the example's documents
 * page (examples/multi-device-documents: the SDK bundled by esbuild, its queue in IndexedDB), served
 * from a temporary directory by a small static server. With the server stopped, the page writes, is
 * reloaded (the replica and the queue survive in IndexedDB: the record shows as the server last sent it,
 * with the queued write on top), and when the server is back the write lands exactly once
 * (an increment, checked over REST). A Node device sees the browser's writes and the browser sees its.
 *
 * Without /usr/bin/chromium the test is skipped with a loud message, except under CI=true, where it fails.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureDocuments } from '../../../examples/multi-device-documents/documents.ts';
import { buildPage } from '../../../examples/multi-device-documents/page.ts';
import {
  createTestStorage,
  startTestServer,
  type TestServer,
  type TestStorage,
} from '../../server/test/helpers/server.ts';
import { SyncClient } from '../src/index.ts';
import { FAST_BACKOFF, mintToken, waitFor } from './helpers.ts';

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
  const message = `${CHROMIUM} is missing: the browser test of the SDK cannot run (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${banner}\n!!! SKIPPED: ${message}\n${banner}\n`);
}

/** Serves the files of a directory on 127.0.0.1 (any free port). */
async function serveDirectory(dir: string): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript' };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const file = join(dir, path === '/' ? 'index.html' : path.slice(1));
    if (!file.startsWith(dir) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, url: `http://127.0.0.1:${port}` };
}

/** The page's device API (window.documentsDevice), as far as the test uses it. */
interface PageDevice {
  state(): string;
  pendingCount(): number;
  get(id: string): { data: Record<string, unknown>; version: number | null; pending: boolean } | undefined;
  put(id: string, data: Record<string, unknown>): Promise<{ status: string }>;
  increment(id: string, deltas: Record<string, number>): Promise<{ status: string }>;
  whenOpen(timeoutMs?: number): Promise<void>;
  flush(): Promise<void>;
}
declare const documentsDevice: PageDevice;

describe.skipIf(!haveChromium)('the SDK in Chromium', () => {
  let storage: TestStorage;
  let srv: TestServer | null = null;
  let port = 0;
  let pageDir: string;
  let site: { server: Server; url: string };
  let browser: Browser;
  const clients: SyncClient[] = [];

  beforeAll(async () => {
    storage = createTestStorage('sqlite');
    srv = await startTestServer('sqlite', {}, storage);
    port = srv.server.port;
    pageDir = mkdtempSync(join(tmpdir(), 'syncbridge-page-'));
    for (const [name, text] of Object.entries(await buildPage())) writeFileSync(join(pageDir, name), text);
    site = await serveDirectory(pageDir);
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await browser?.close();
    await new Promise((resolve) => site?.server.close(resolve));
    await srv?.close({ keepData: true });
    await storage?.cleanup();
    rmSync(pageDir, { recursive: true, force: true });
  });

  async function openPage(token: string): Promise<Page> {
    const page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    const query = new URLSearchParams({ ws: srv!.wsUrl, token, device: 'browser-1' });
    await page.goto(`${site.url}/?${query}`);
    await page.waitForFunction(() => typeof documentsDevice === 'object');
    return page;
  }

  async function serverRecord(token: string, id: string) {
    const res = await fetch(`http://127.0.0.1:${port}/v1/records/documents/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return (await res.json()) as { data: Record<string, unknown>; version: number };
  }

  it('writes offline, survives a reload with the queue in IndexedDB, and lands the write exactly once', async () => {
    const url = srv!.url;
    await configureDocuments(url, await mintToken(url, 'browser', 'root', { roles: ['admin'] }));
    const token = await mintToken(url, 'browser', 'alice');
    const page = await openPage(token);
    await page.evaluate(() => documentsDevice.whenOpen(5000));
    const put = await page.evaluate(() =>
      documentsDevice.put('counter', { title: 'visits', body: '', n: 0 }),
    );
    expect(put.status).toBe('applied');

    // A Node device of the same user sees the browser's write live.
    const laptop = new SyncClient({ url: srv!.wsUrl, token, deviceId: 'laptop', backoff: FAST_BACKOFF });
    clients.push(laptop);
    laptop.collection('documents').subscribe(() => undefined);
    await waitFor(() => laptop.collection('documents').get('counter')?.version === 1, 'the laptop to see it');

    // The server goes away: the page goes offline and queues its write in IndexedDB.
    await srv!.close({ keepData: true });
    srv = null;
    await page.waitForFunction(
      () => documentsDevice.state() === 'offline' || documentsDevice.state() === 'connecting',
    );
    await page.evaluate(() => {
      void documentsDevice.increment('counter', { n: 1 }).catch(() => undefined);
    });
    await page.waitForFunction(() => documentsDevice.pendingCount() === 1);
    expect(await page.evaluate(() => documentsDevice.get('counter')?.data.n)).toBe(1);

    // Reload while offline: the new page restores the replica (the record as the server last sent it)
    // and the queued write on top of it from IndexedDB.
    await page.reload();
    await page.waitForFunction(
      () => typeof documentsDevice === 'object' && documentsDevice.pendingCount() === 1,
    );
    expect(await page.evaluate(() => documentsDevice.get('counter'))).toMatchObject({
      data: { title: 'visits', body: '', n: 1 },
      version: 1,
      pending: true,
    });

    // The server comes back on the same port and data: the write lands once.
    srv = await startTestServer('sqlite', { port }, storage);
    await page.evaluate(() => documentsDevice.flush());
    await page.waitForFunction(() => documentsDevice.state() === 'open');
    const record = await serverRecord(token, 'counter');
    expect(record).toMatchObject({ version: 2, data: { title: 'visits', n: 1 } });
    expect(await page.evaluate(() => documentsDevice.get('counter'))).toMatchObject({
      data: { n: 1 },
      version: 2,
      pending: false,
    });
    // The log holds one increment, and the laptop converges on it.
    const log = await fetch(`${srv.url}/v1/events?collection=documents&id=counter`, {
      headers: { authorization: `Bearer ${token}` },
    }).then((r) => r.json() as Promise<{ events: Array<{ op: string }> }>);
    expect(log.events.map((e) => e.op)).toEqual(['put', 'increment']);
    await waitFor(
      () => laptop.collection('documents').get('counter')?.version === 2,
      'the laptop to converge',
    );
    expect(laptop.collection('documents').get('counter')?.data).toEqual(record.data);
    await page.close();
  });
});
