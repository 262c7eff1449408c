/**
 * The replica in Chromium: a page fills IndexedDbStorage with `--records` records through a real client
 * (a protocol-level fake server sends the snapshot), then is reloaded with no server and times
 * `new SyncClient(...)` to the first `subscribe` call (`source: 'storage'`). Target <= 1 s.
 *
 *   node --import tsx bench/client-replica-browser.ts [--records 100000] [--reps 3]
 *
 * Needs /usr/bin/chromium (Debian's package) and playwright-core (a dev dependency of the client).
 */
import { createServer } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { SyncRecord } from '@syncbridge/protocol';
import { build } from 'esbuild';
import { FakeServer } from '../packages/client/test/fake-server.ts';
import { deadPort } from '../packages/client/test/helpers.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { records: { type: 'string' }, reps: { type: 'string' } },
  strict: true,
});
const RECORDS = Number(values.records ?? 100_000);
const REPS = Number(values.reps ?? 3);

const PAGE_SCRIPT = `
import { IndexedDbStorage, SyncClient } from './packages/client/src/index.ts';
const params = new URLSearchParams(location.search);
const t0 = performance.now();
const client = new SyncClient({
  url: params.get('ws'),
  token: 'bench',
  replicaKey: 'bench-user',
  storage: new IndexedDbStorage({ name: 'bench' }),
  autoConnect: params.get('mode') === 'fill',
});
const items = client.collection('items');
client.on('error', (e) => console.log('client error', e.code, e.message));
client.whenLoaded().then(() => console.log('loaded', items.list().length), (e) => console.log('load failed', e.message));
window.bench = new Promise((resolve) => {
  const off = items.subscribe((records, change) => {
    if (params.get('mode') === 'open') {
      off();
      resolve({ renderMs: performance.now() - t0, count: records.length, source: change.source });
    } else if (records.length === Number(params.get('n'))) {
      off();
      client.persisted().then(() => client.close()).then(() => resolve({ filled: records.length }));
    }
  });
});
`;

function snapshotRecord(i: number): SyncRecord {
  return {
    collection: 'items',
    id: `i${String(i).padStart(6, '0')}`,
    data: {
      sku: `sku-${i}`,
      name: `Item number ${i}`,
      qty: i % 97,
      price: i / 100,
      locationId: `wh-${i % 8}`,
    },
    version: 1,
    hlc: '000000000000001-0000-bench',
    updatedAt: '2026-12-07T00:00:00.000Z',
    updatedBy: 'bench',
    deleted: false,
  };
}

const bundle = await build({
  stdin: { contents: PAGE_SCRIPT, resolveDir: process.cwd(), loader: 'ts' },
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  write: false,
  external: ['ws', 'node:*'],
  logLevel: 'silent',
});
const js = bundle.outputFiles[0]!.text;
const site = createServer((req, res) => {
  if (req.url?.startsWith('/app.js'))
    return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
  res
    .writeHead(200, { 'content-type': 'text/html' })
    .end('<!doctype html><script type="module" src="/app.js"></script>');
});
await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
const siteUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}`;

const fake = await FakeServer.start();
fake.onMessage((m, reply) => {
  if (m.type !== 'subscribe') return;
  reply({ type: 'subscribed', rid: m.rid, channel: m.channel, cursor: RECORDS });
  for (let start = 0; start < RECORDS; start += 2000) {
    const records = [];
    for (let i = start; i < Math.min(RECORDS, start + 2000); i++) records.push(snapshotRecord(i));
    reply({ type: 'snapshot', channel: m.channel, records, cursor: RECORDS, done: start + 2000 >= RECORDS });
  }
});

const { chromium } = await import('playwright-core');
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  headless: true,
});
console.log(
  JSON.stringify({
    date: new Date().toISOString(),
    nproc: cpus().length,
    load1m: loadavg()[0],
    records: RECORDS,
  }),
);
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(300_000);
  page.on('console', (m) => console.log(`page: ${m.text()}`));
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  let t = performance.now();
  await page.goto(`${siteUrl}/?mode=fill&n=${RECORDS}&ws=${encodeURIComponent(fake.url)}`);
  console.log(
    JSON.stringify(await page.evaluate(() => (globalThis as unknown as { bench: Promise<unknown> }).bench)),
  );
  console.log(JSON.stringify({ fillMs: performance.now() - t }));
  const dead = `ws://127.0.0.1:${await deadPort()}/v1/realtime`;
  const renders: number[] = [];
  for (let rep = 0; rep < REPS; rep++) {
    t = performance.now();
    await page.goto(`${siteUrl}/?mode=open&ws=${encodeURIComponent(dead)}`);
    const result = (await page.evaluate(
      () => (globalThis as unknown as { bench: Promise<unknown> }).bench,
    )) as {
      renderMs: number;
      count: number;
      source: string;
    };
    console.log(JSON.stringify({ ...result, pageMs: performance.now() - t }));
    if (result.count !== RECORDS || result.source !== 'storage') throw new Error('bad first render');
    renders.push(result.renderMs);
  }
  renders.sort((a, b) => a - b);
  console.log(
    `\n| Chromium: new SyncClient to first render of ${RECORDS} records (median of ${REPS}) | ${Math.round(renders[Math.floor(REPS / 2)]!)} ms | <= 1000 ms |`,
  );
  console.log(JSON.stringify({ load1mEnd: loadavg()[0] }));
} finally {
  await browser.close();
  await fake.close();
  site.close();
}
process.exit(0);
