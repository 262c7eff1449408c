/**
 * Paced device sync over server-sent events (`GET /v1/stream?deviceId=`), against a real server on both
 * stores: a device registered over REST with a bandwidth budget and collection priorities misses 1,000
 * changes and reopens its stream; the higher-priority collection's backlog arrives first and no
 * one-second window of the HTTP body carries more than the budget plus 10%. With `conflate: true` it
 * receives at most one event per record after `conflated` SSE events, and a resume with the stream's
 * last id (Last-Event-ID) is exact. A server shutting down does not wait for a paced stream's backlog.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestSseClient } from '../helpers/sse-client.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

type Msg = Record<string, unknown>;

/** 64 KiB/s, as the documents scenario names it. */
const BUDGET = 64 * 1024;
const CHANNELS = ['records:documents', 'records:settings'];

describe.each(kinds)('paced device sync over SSE (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  /** Writes `count` puts of `records` records of `collection` (each record in turn), 500 a request. */
  async function write(
    writer: TestWsClient,
    collection: string,
    records: number,
    count: number,
    tag: string,
  ) {
    for (let start = 0; start < count; start += 500) {
      const mutations = [];
      for (let i = start; i < Math.min(count, start + 500); i++) {
        mutations.push({
          mid: `${tag}-${collection}-${i}`,
          collection,
          id: `${collection}-${i % records}`,
          op: 'put',
          data: { n: i, body: 'x'.repeat(16) },
        });
      }
      const reply = await writer.request({ type: 'mutate', mutations }, 20_000);
      expect((reply.results as Msg[]).every((r) => r.status === 'applied')).toBe(true);
    }
  }

  /** Registers the device `phone` of alice over REST with `settings`. */
  async function register(token: string, settings: Msg): Promise<void> {
    const res = await fetch(`${srv.url}/v1/devices`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ id: 'phone', ...settings }),
    });
    expect(res.status).toBe(201);
  }

  /** A tenant whose log has a seed entry; returns its token and the seq before what the device misses. */
  async function setUp(tenant: string) {
    const token = await srv.token(tenant, 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'seed', collection: 'seed', id: 's', op: 'put', data: {} }],
    });
    return { token, writer, start: await srv.server.store.headSeq(tenant) };
  }

  function open(token: string, since: number, headers: Record<string, string> = {}) {
    const query = `${CHANNELS.map((c) => `channels=${encodeURIComponent(c)}`).join('&')}&since=${since}&deviceId=phone`;
    return TestSseClient.open(srv.url, query, { Authorization: `Bearer ${token}`, ...headers });
  }

  const eventsOf = (client: TestSseClient) => client.logEvents().map((e) => e.data);

  it('sends a 1,000-change backlog within a 64 KiB/s budget, the higher-priority collection first', async () => {
    const { token, writer, start } = await setUp(`sse-paced-${kind}`);
    await write(writer, 'documents', 300, 900, 'a');
    await write(writer, 'settings', 20, 100, 'a');
    await register(token, {
      bandwidth: { bytesPerSecond: BUDGET },
      priorities: { settings: 10, documents: 1 },
    });

    const stream = await open(token, start);
    expect(stream.status).toBe(200);
    await stream.waitFor(() => stream.logEvents().length >= 1000, 60_000, '1,000 events');
    const events = eventsOf(stream);
    expect(events).toHaveLength(1000);
    // Every settings change arrives before the first documents change (documents were written first).
    const lastSettings = events.findLastIndex((e) => e.channel === 'records:settings');
    const firstDocuments = events.findIndex((e) => e.channel === 'records:documents');
    expect(lastSettings).toBeLessThan(firstDocuments);
    for (const channel of CHANNELS) {
      const seqs = events.filter((e) => e.channel === channel).map((e) => e.seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    // The rate limit, measured on the HTTP body as it arrived: at most the budget plus 10% a second.
    const total = stream.chunks.reduce((sum, c) => sum + c.bytes, 0);
    expect(total).toBeGreaterThan(2 * BUDGET);
    expect(stream.maxBytesInWindow(1000)).toBeLessThanOrEqual(BUDGET * 1.1);

    // Live changes after the catch-up are paced too.
    await write(writer, 'documents', 10, 10, 'live');
    await stream.waitFor(() => stream.logEvents().length >= 1010, 30_000, '10 live events');
    expect(stream.maxBytesInWindow(1000)).toBeLessThanOrEqual(BUDGET * 1.1);
    stream.close();
    await writer.close();
  }, 90_000);

  it('shuts down while a paced stream is mid-catch-up, telling it to go away', async () => {
    const own = await startTestServer(kind);
    let closed = false;
    try {
      const token = await own.token('sse-shutdown', 'alice');
      const writer = await TestWsClient.connect(own.wsUrl, token);
      await writer.request({
        type: 'mutate',
        mutations: [{ mid: 'seed', collection: 'seed', id: 's', op: 'put', data: {} }],
      });
      const start = await own.server.store.headSeq('sse-shutdown');
      await write(writer, 'documents', 50, 200, 'a');
      await writer.close();
      const res = await fetch(`${own.url}/v1/devices`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ id: 'phone', bandwidth: { bytesPerSecond: 1024 } }),
      });
      expect(res.status).toBe(201);
      const stream = await TestSseClient.open(
        own.url,
        `channels=records%3Adocuments&since=${start}&deviceId=phone`,
        { Authorization: `Bearer ${token}` },
      );
      await stream.waitFor((e) => e.data.type === 'event', 30_000, 'a first event');
      // The backlog (some 40 KB) needs about 40 s at 1 KiB/s: the shutdown must not wait for it.
      closed = true;
      await own.close();
      const bye = await stream.waitFor((e) => e.event === 'close', 15_000, 'the close event');
      expect(bye.data.code).toBe(1001);
      expect(stream.logEvents().length).toBeLessThan(200);
    } finally {
      if (!closed) await own.close();
    }
  }, 60_000);

  it('conflates a long backlog to one event per record after `conflated` events; Last-Event-ID resumes exactly', async () => {
    const { token, writer, start } = await setUp(`sse-conflate-${kind}`);
    await write(writer, 'documents', 40, 800, 'a');
    await write(writer, 'settings', 10, 200, 'a');
    await register(token, {
      bandwidth: { bytesPerSecond: BUDGET },
      priorities: { settings: 10, documents: 1 },
      conflate: true,
    });

    const stream = await open(token, start);
    await stream.waitFor(() => stream.logEvents().length >= 50, 60_000, '50 events');
    const markers = stream.events.filter((e) => e.data.type === 'conflated');
    expect(markers.map((m) => [m.data.channel, m.data.skipped]).sort()).toEqual([
      ['records:documents', 760],
      ['records:settings', 190],
    ]);
    for (const m of markers) expect(m.data.after).toBe(start);
    const events = eventsOf(stream);
    expect(events).toHaveLength(50);
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Settings (priority 10) entirely before documents, each record at its latest version.
    expect(events.slice(0, 10).every((e) => e.channel === 'records:settings')).toBe(true);
    const doc3 = events.find((e) => e.id === 'documents-3')!;
    expect(doc3.data).toMatchObject({ n: 763 });
    expect(doc3.version).toBe(20);
    const resumeId = stream.lastEventId!;
    stream.close();

    // Offline again: 12 more changes, one per record. Last-Event-ID brings exactly those, unconflated.
    await write(writer, 'documents', 8, 8, 'b');
    await write(writer, 'settings', 4, 4, 'b');
    const again = await open(token, start, { 'Last-Event-ID': resumeId });
    await again.waitFor(() => again.logEvents().length >= 12, 30_000, '12 events');
    const resumed = eventsOf(again);
    expect(resumed).toHaveLength(12);
    expect(again.events.some((e) => e.data.type === 'conflated')).toBe(false);
    expect(resumed.filter((e) => e.channel === 'records:documents').map((e) => (e.data as Msg).n)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7,
    ]);
    expect(resumed.filter((e) => e.channel === 'records:settings').map((e) => e.id)).toEqual([
      'settings-0',
      'settings-1',
      'settings-2',
      'settings-3',
    ]);
    again.close();
    await writer.close();
  }, 90_000);
});
