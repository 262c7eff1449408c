/**
 * A standard EventSource in a real browser (Debian's Chromium driven by playwright-core) on
 * GET /v1/stream, on SQLite and PostgreSQL: it receives live record events, the server is stopped and
 * started again on the same port and data, records are written right after the restart, and the
 * EventSource, resuming by itself with Last-Event-ID, ends up with every event exactly once, in order.
 * The page is one of the server's own (same origin), as behind a reverse proxy.
 *
 * Without /usr/bin/chromium the test is skipped with a loud message, except under CI=true, where it fails.
 */
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  const banner = '!'.repeat(100);
  const message = `${CHROMIUM} is missing: the EventSource test cannot run (apt-get install -y chromium)`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`\n${banner}\n!!! SKIPPED: ${message}\n${banner}\n`);
}

const kinds: StoreKind[] = haveChromium ? await storeKinds() : [];

declare const sse: { seqs: number[]; ids: string[]; opens: number; closes: number[] };

async function put(url: string, token: string, id: string): Promise<number> {
  const res = await fetch(`${url}/v1/records/notes/${id}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: id }),
  });
  if (!res.ok) throw new Error(`PUT ${id}: ${res.status}`);
  return Number(res.headers.get('x-seq'));
}

describe.skipIf(!haveChromium)('EventSource in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS, headless: true });
  });
  afterAll(async () => browser?.close());

  it.each(kinds)('resumes after a server restart with no gap and no duplicate (%s)', async (kind) => {
    const storage: TestStorage = createTestStorage(kind);
    let srv: TestServer | null = await startTestServer(kind, {}, storage);
    let page: Page | null = null;
    try {
      const port = srv.server.port;
      const token = await srv.token('web', 'alice', { ttlSeconds: 3600 });
      page = await browser.newPage();
      page.setDefaultTimeout(20_000);
      await page.goto(`${srv.url}/v1/health`);
      await page.evaluate((t) => {
        const state = { seqs: [] as number[], ids: [] as string[], opens: 0, closes: [] as number[] };
        (globalThis as unknown as { sse: typeof state }).sse = state;
        const es = new EventSource(`/v1/stream?channels=records:notes&access_token=${encodeURIComponent(t)}`);
        es.onopen = () => {
          state.opens += 1;
        };
        es.onmessage = (e) => {
          const m = JSON.parse(e.data) as { type: string; seq?: number };
          if (m.type === 'event') {
            state.seqs.push(m.seq!);
            state.ids.push(e.lastEventId);
          }
        };
        es.addEventListener('close', (e) => {
          state.closes.push((JSON.parse((e as MessageEvent).data) as { code: number }).code);
        });
      }, token);
      await page.waitForFunction(() => sse.opens === 1);
      const before = [await put(srv.url, token, 'a'), await put(srv.url, token, 'b')];
      await page.waitForFunction((n) => sse.seqs.length === n, before.length);

      // Restart on the same port and data; write at once, before the EventSource is back.
      await srv.close({ keepData: true });
      srv = null;
      srv = await startTestServer(kind, { port }, storage);
      const after = [await put(srv.url, token, 'c'), await put(srv.url, token, 'd')];
      await page.waitForFunction(() => sse.opens === 2);
      const after2 = [await put(srv.url, token, 'e')];
      const all = [...before, ...after, ...after2];
      await page.waitForFunction((n) => sse.seqs.length >= n, all.length);
      const seen = await page.evaluate(() => sse);
      expect(seen.seqs).toEqual(all);
      expect(seen.ids).toEqual(all.map(String));
      expect(seen.closes).toEqual([1001]);
    } finally {
      await page?.close();
      await srv?.close({ keepData: true });
      await storage.cleanup();
    }
  });
});
