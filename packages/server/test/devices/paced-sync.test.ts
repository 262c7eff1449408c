/**
 * Paced device sync against a real server on both stores: a device registered with a bandwidth budget
 * and collection priorities misses 1,000 changes, reconnects, and receives its backlog with the
 * higher-priority collection first, never more than 10% over the budget in any one-second window
 * (measured from the bytes the socket received); with `conflate: true` it receives at most one event
 * per record, announced by `conflated` frames, and a later resume from its cursors is exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

type Msg = Record<string, unknown>;
type Event = { seq: number; collection: string; id: string; version: number; data: Msg };

/** 64 KiB/s, as the documents scenario names it. */
const BUDGET = 64 * 1024;

/** A raw device socket that records when each frame arrived and how many bytes it had. */
class MeteredDevice {
  readonly frames: { at: number; bytes: number; message: Msg }[] = [];
  private readonly ws: WebSocket;
  private nextRid = 1;
  private waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (data: Buffer) => {
      this.frames.push({ at: performance.now(), bytes: data.length, message: JSON.parse(data.toString()) });
      this.waiters = this.waiters.filter((w) => (w.test() ? (w.resolve(), false) : true));
    });
  }

  async open(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  send(message: Msg): string {
    const rid = `r${this.nextRid++}`;
    this.ws.send(JSON.stringify({ ...message, rid }));
    return rid;
  }

  until(test: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out; ${this.events().length} events`)),
        timeoutMs,
      );
      this.waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Every record event received, in arrival order, with its channel. */
  events(): (Event & { channel: string })[] {
    const out: (Event & { channel: string })[] = [];
    for (const { message } of this.frames) {
      if (message.type === 'event')
        out.push({ ...(message as unknown as Event), channel: message.channel as string });
      if (message.type === 'events')
        for (const e of message.events as Event[]) out.push({ ...e, channel: message.channel as string });
    }
    return out;
  }

  /** The most bytes received in any window of `ms` milliseconds that starts at a frame. */
  maxBytesInWindow(ms: number): number {
    let max = 0;
    let sum = 0;
    let end = 0;
    for (let start = 0; start < this.frames.length; start++) {
      while (end < this.frames.length && this.frames[end]!.at < this.frames[start]!.at + ms) {
        sum += this.frames[end]!.bytes;
        end += 1;
      }
      max = Math.max(max, sum);
      sum -= this.frames[start]!.bytes;
    }
    return max;
  }

  close(): void {
    this.ws.close();
  }
}

describe.each(kinds)('paced device sync (%s)', (kind: StoreKind) => {
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

  /** Connects the device, says hello with its settings and subscribes both channels after `since`. */
  async function connectDevice(token: string, device: Msg, since: Record<string, number>) {
    const socket = new MeteredDevice(srv.wsUrl);
    await socket.open();
    socket.send({ type: 'hello', token, deviceId: 'phone', device, capabilities: ['batch'] });
    await socket.until(() => socket.frames.some((f) => f.message.type === 'welcome'));
    for (const [channel, seq] of Object.entries(since))
      socket.send({ type: 'subscribe', channel, since: seq });
    return socket;
  }

  it('sends a 1,000-change backlog within a 64 KiB/s budget, the higher-priority collection first', async () => {
    const tenant = `paced-${kind}`;
    const token = await srv.token(tenant, 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'seed', collection: 'seed', id: 's', op: 'put', data: {} }],
    });
    // The device was last connected before these changes: documents first, settings last in the log.
    const start = await srv.server.store.headSeq(tenant);
    await write(writer, 'documents', 300, 900, 'a');
    await write(writer, 'settings', 20, 100, 'a');

    const device = { bandwidth: { bytesPerSecond: BUDGET }, priorities: { settings: 10, documents: 1 } };
    const socket = await connectDevice(token, device, {
      'records:documents': start,
      'records:settings': start,
    });
    await socket.until(() => socket.events().length >= 1000);
    const events = socket.events();
    expect(events).toHaveLength(1000);
    // Every settings change arrives before the first documents change.
    const lastSettings = events.findLastIndex((e) => e.channel === 'records:settings');
    const firstDocuments = events.findIndex((e) => e.channel === 'records:documents');
    expect(lastSettings).toBeLessThan(firstDocuments);
    // Within a channel, seq order.
    for (const channel of ['records:documents', 'records:settings']) {
      const seqs = events.filter((e) => e.channel === channel).map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    // The rate limit: no one-second window carries more than the budget plus 10%.
    const total = socket.frames.reduce((sum, f) => sum + f.bytes, 0);
    expect(total).toBeGreaterThan(2 * BUDGET);
    expect(socket.maxBytesInWindow(1000)).toBeLessThanOrEqual(BUDGET * 1.1);

    // Live changes after the catch-up are paced too, and arrive after the backlog.
    await write(writer, 'documents', 10, 10, 'live');
    await socket.until(() => socket.events().length >= 1010);
    expect(socket.maxBytesInWindow(1000)).toBeLessThanOrEqual(BUDGET * 1.1);
    socket.close();
    await writer.close();
  }, 60_000);

  it('conflates a long backlog to one event per record when the device allows it; a later resume is exact', async () => {
    const tenant = `conflate-${kind}`;
    const token = await srv.token(tenant, 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'seed', collection: 'seed', id: 's', op: 'put', data: {} }],
    });
    const start = await srv.server.store.headSeq(tenant);
    await write(writer, 'documents', 40, 800, 'a');
    await write(writer, 'settings', 10, 200, 'a');

    const device = {
      bandwidth: { bytesPerSecond: BUDGET },
      priorities: { settings: 10, documents: 1 },
      conflate: true,
    };
    const socket = await connectDevice(token, device, {
      'records:documents': start,
      'records:settings': start,
    });
    await socket.until(() => socket.events().length >= 50);
    const markers = socket.frames.map((f) => f.message).filter((m) => m.type === 'conflated');
    expect(markers.map((m) => [m.channel, m.skipped]).sort()).toEqual([
      ['records:documents', 760],
      ['records:settings', 190],
    ]);
    const events = socket.events();
    expect(events).toHaveLength(50);
    const ids = events.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    // Each record arrives at its latest version: the last write of documents-k is n = 760 + k.
    const doc3 = events.find((e) => e.id === 'documents-3')!;
    expect(doc3.data.n).toBe(763);
    expect(doc3.version).toBe(20);
    const cursors = {
      'records:documents': Math.max(
        ...events.filter((e) => e.channel === 'records:documents').map((e) => e.seq),
      ),
      'records:settings': Math.max(
        ...events.filter((e) => e.channel === 'records:settings').map((e) => e.seq),
      ),
    };
    // A channel's last event is at most the window's end (later entries of the log were other channels').
    for (const m of markers)
      expect(cursors[m.channel as keyof typeof cursors]).toBeLessThanOrEqual(Number(m.through));
    socket.close();

    // Offline again: 12 more changes, one per record. The resume from the cursors brings exactly those.
    await write(writer, 'documents', 8, 8, 'b');
    await write(writer, 'settings', 4, 4, 'b');
    const again = await connectDevice(token, device, cursors);
    await again.until(() => again.events().length >= 12);
    const resumed = again.events();
    expect(resumed).toHaveLength(12);
    expect(again.frames.some((f) => f.message.type === 'conflated')).toBe(false);
    expect(resumed.filter((e) => e.channel === 'records:documents').map((e) => e.data.n)).toEqual([
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
  }, 60_000);
});
