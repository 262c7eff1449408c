/**
 * GET /metrics after real traffic: WebSocket messages and bytes by type, append and fan-out latency,
 * subscription positions, conflicts, store reads, webhook attempts to a local receiver, and the bus
 * between two nodes. Every figure is read from the parsed exposition and compared with what the test
 * itself sent and received.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { MemoryBusNetwork } from '../../src/bus/memory-bus.ts';
import { type Exposition, scrape } from '../helpers/prometheus.ts';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  TEST_ADMIN_KEY,
  type TestServer,
} from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { Receiver } from '../webhooks/receiver.ts';
import { adminClient, register, startWebhookServer } from '../webhooks/support.ts';

/** Counts the bytes and frames a raw socket sends and receives, by message type. */
function meter(ws: WebSocket) {
  const m = { bytesIn: 0, bytesOut: 0, sent: new Map<string, number>(), received: new Map<string, number>() };
  ws.on('message', (data: Buffer) => {
    m.bytesIn += data.length;
    const type = (JSON.parse(data.toString()) as { type: string }).type;
    m.received.set(type, (m.received.get(type) ?? 0) + 1);
  });
  return {
    counts: m,
    /** Sends a text frame as is, counting it under `type` (`invalid` for what is not a message). */
    send(text: string, type: string) {
      m.bytesOut += Buffer.byteLength(text);
      m.sent.set(type, (m.sent.get(type) ?? 0) + 1);
      ws.send(text);
    },
  };
}

/** Scrapes until `ready` holds (counters are updated when an answer has already left). */
async function scrapeUntil(url: string, ready: (e: Exposition) => boolean): Promise<Exposition> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const e = await scrape(url, { apiKey: TEST_ADMIN_KEY });
    if (ready(e) || Date.now() > deadline) return e;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Prometheus metrics of the write path', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', { collections: { strict: { strategy: 'server_wins' } } });
  });
  afterAll(async () => srv?.close());

  it('counts mutations by outcome and times group commits', async () => {
    const token = await srv.token('m', 'writer');
    const post = (mutations: unknown[]) =>
      fetch(`${srv.url}/v1/mutations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ mutations }),
      });
    await post([
      { mid: 'a', collection: 'strict', id: 'x', op: 'put', data: { v: 1 } },
      { mid: 'b', collection: 'strict', id: 'x', op: 'put', data: { v: 2 }, baseVersion: 0 },
    ]);
    await post([{ mid: 'a', collection: 'strict', id: 'x', op: 'put', data: { v: 1 } }]);
    const e = await scrape(srv.url, { apiKey: TEST_ADMIN_KEY });
    expect(e.value('syncbridge_mutations_total', { status: 'applied' })).toBe(1);
    expect(e.value('syncbridge_mutations_total', { status: 'rejected' })).toBe(1);
    expect(e.value('syncbridge_mutations_total', { status: 'duplicate' })).toBe(1);
    expect(e.value('syncbridge_commit_duration_seconds_count')).toBeGreaterThan(0);
    expect(e.value('syncbridge_log_events_total', { kind: 'record' })).toBe(1);
    // The stale put (baseVersion 0 against version 1) was refused by its strategy.
    expect(
      e.value('syncbridge_conflicts_detected_total', { strategy: 'server_wins', outcome: 'rejected' }),
    ).toBe(1);
    expect(e.value('syncbridge_append_duration_seconds_count', { kind: 'mutations' })).toBe(2);
  });
});

describe('Prometheus metrics of realtime traffic, conflicts and webhooks', () => {
  let srv: TestServer;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start();
    srv = await startWebhookServer('sqlite', { collections: { stock: { strategy: 'manual' } } });
  });
  afterAll(async () => {
    await srv?.close();
    await receiver?.close();
  });

  it('counts WebSocket messages and bytes by type, latencies, positions, conflicts and store reads', async () => {
    const tenant = 'rt';
    const client = await TestWsClient.connect(srv.wsUrl);
    const wire = meter(client.ws);
    let rid = 0;
    const request = (message: Record<string, unknown>) => {
      const id = `q${++rid}`;
      wire.send(JSON.stringify({ ...message, rid: id }), message.type as string);
      return client.waitFor((m) => m.rid === id);
    };
    await request({ type: 'hello', token: await srv.token(tenant, 'alice'), protocol: 1 });
    await request({ type: 'subscribe', channel: 'records:stock' });
    await request({ type: 'ping' });
    wire.send('not json', 'invalid');
    wire.send('{"type":"bogus","rid":"b1"}', 'invalid');
    await client.waitFor((m) => m.rid === 'b1');

    const put = (mid: string, id: string, data: unknown, baseVersion?: number) =>
      request({
        type: 'mutate',
        mutations: [{ mid, collection: 'stock', id, op: 'put', data, baseVersion }],
      });
    await put('m1', 'p1', { qty: 5 });
    await put('m2', 'p2', { qty: 1 });
    await put('m3', 'p1', { qty: 7 }, 1);
    await put('m4', 'p2', { qty: 2 }, 1);
    const first = (await put('m5', 'p1', { qty: 3 }, 1)).results as Array<{ conflictId: string }>;
    const second = (await put('m6', 'p2', { qty: 9 }, 1)).results as Array<{ status: string }>;
    expect(second[0]!.status).toBe('conflict');
    await request({ type: 'resolve', conflictId: first[0]!.conflictId, resolution: 'accept_server' });
    // Every record change reached the subscriber (4 changes; accept_server changes nothing).
    await client.waitForEvents(4, 'records:stock');
    await client.waitFor(
      (m) => m.type === 'conflict' && (m.conflict as { status: string }).status === 'resolved',
    );

    const e = await scrapeUntil(
      srv.url,
      (x) => x.value('syncbridge_ws_sent_bytes_total') === wire.counts.bytesIn,
    );
    for (const [type, n] of wire.counts.sent) {
      expect(e.value('syncbridge_ws_messages_received_total', { type }), `received ${type}`).toBe(n);
    }
    expect(e.value('syncbridge_ws_messages_received_total', { type: 'invalid' })).toBe(2);
    expect(e.value('syncbridge_ws_messages_received_total', { type: 'mutate' })).toBe(6);
    expect(e.sum('syncbridge_ws_messages_received_total')).toBe(
      [...wire.counts.sent.values()].reduce((a, b) => a + b, 0),
    );
    expect(e.value('syncbridge_ws_received_bytes_total')).toBe(wire.counts.bytesOut);
    for (const [type, n] of wire.counts.received) {
      expect(e.value('syncbridge_ws_messages_sent_total', { type }), `sent ${type}`).toBe(n);
    }
    expect(e.value('syncbridge_ws_messages_sent_total', { type: 'error' })).toBe(2);
    expect(e.value('syncbridge_ws_messages_sent_total', { type: 'event' })).toBe(4);
    expect(e.value('syncbridge_ws_sent_bytes_total')).toBe(wire.counts.bytesIn);
    expect(e.value('syncbridge_events_delivered_total')).toBe(4);

    // Append latency: one observation per acknowledged write, by kind.
    expect(e.value('syncbridge_append_duration_seconds_count', { kind: 'mutations' })).toBe(6);
    expect(e.value('syncbridge_append_duration_seconds_count', { kind: 'resolve' })).toBe(1);
    // Fan-out latency: one observation per commit that reached a socket (the four record changes).
    expect(e.value('syncbridge_fanout_latency_seconds_count', { origin: 'local' })).toBe(4);
    expect(e.value('syncbridge_fanout_latency_seconds_bucket', { origin: 'local', le: '+Inf' })).toBe(4);

    // Conflicts: two stale puts became stored conflicts; one is resolved, one still open.
    expect(e.value('syncbridge_conflicts_detected_total', { strategy: 'manual', outcome: 'conflict' })).toBe(
      2,
    );
    expect(e.value('syncbridge_conflicts_detected_total', { strategy: 'manual', outcome: 'applied' })).toBe(
      0,
    );
    expect(e.value('syncbridge_conflicts_resolved_total', { resolution: 'accept_server' })).toBe(1);
    expect(e.value('syncbridge_conflicts_open', { tenant })).toBe(1);

    // Positions: the one subscription is live and not behind; this connection's buffer is drained.
    expect(e.value('syncbridge_subscriptions_by_state', { state: 'live' })).toBe(1);
    expect(e.value('syncbridge_subscriptions_by_state', { state: 'catching_up' })).toBe(0);
    expect(e.value('syncbridge_subscription_lag_events_bucket', { le: '0' })).toBe(1);
    expect(e.value('syncbridge_subscription_lag_events_bucket', { le: '+Inf' })).toBe(1);
    expect(e.value('syncbridge_subscription_lag_max_events')).toBe(0);
    expect(e.value('syncbridge_connection_unsent_bytes_bucket', { le: '+Inf' })).toBe(1);
    expect(e.types.get('syncbridge_subscription_lag_events_bucket')).toBe('gauge');

    // Store reads: subscribing read the head and the (empty) backlog.
    expect(e.value('syncbridge_store_read_duration_seconds_count', { operation: 'headSeq' })).toBeGreaterThan(
      0,
    );
    expect(
      e.value('syncbridge_store_read_duration_seconds_count', { operation: 'readEvents' }),
    ).toBeGreaterThan(0);

    expect(
      e.value('syncbridge_node_info', { node: srv.server.config.nodeId, store: 'sqlite', bus: 'memory' }),
    ).toBe(1);
    await client.close();
  });

  it('counts a batch of events sent to a `batch` client as one `events` frame', async () => {
    const before = await scrape(srv.url, { apiKey: TEST_ADMIN_KEY });
    const client = await TestWsClient.connect(srv.wsUrl);
    const wire = meter(client.ws);
    const token = await srv.token('batch', 'bob');
    wire.send(
      JSON.stringify({ type: 'hello', token, protocol: 1, capabilities: ['batch'], rid: 'h' }),
      'hello',
    );
    await client.waitFor((m) => m.rid === 'h');
    wire.send(JSON.stringify({ type: 'subscribe', channel: 'records:stock', rid: 's' }), 'subscribe');
    await client.waitFor((m) => m.rid === 's');
    const mutations = [1, 2, 3].map((i) => ({
      mid: `b${i}`,
      collection: 'stock',
      id: `b${i}`,
      op: 'put',
      data: { i },
    }));
    wire.send(JSON.stringify({ type: 'mutate', mutations, rid: 'm' }), 'mutate');
    await client.waitFor((m) => m.rid === 'm');
    const batch = await client.waitFor((m) => m.type === 'events');
    expect((batch.events as unknown[]).length).toBe(3);
    const after = await scrapeUntil(
      srv.url,
      (x) =>
        x.value('syncbridge_ws_sent_bytes_total') - before.value('syncbridge_ws_sent_bytes_total') ===
        wire.counts.bytesIn,
    );
    const delta = (type: string) =>
      after.value('syncbridge_ws_messages_sent_total', { type }) -
      before.value('syncbridge_ws_messages_sent_total', { type });
    expect(delta('events')).toBe(1);
    expect(delta('event')).toBe(0);
    expect(wire.counts.received.get('events')).toBe(1);
    // Three deliveries (one per subscription and event), one commit fanned out.
    expect(
      after.value('syncbridge_events_delivered_total') - before.value('syncbridge_events_delivered_total'),
    ).toBe(3);
    expect(
      after.value('syncbridge_fanout_latency_seconds_count', { origin: 'local' }) -
        before.value('syncbridge_fanout_latency_seconds_count', { origin: 'local' }),
    ).toBe(1);
    await client.close();
  });

  it('counts webhook attempts by outcome and the lag from commit to delivery by platform', async () => {
    const api = adminClient(srv, 'hooks');
    receiver.answer((_req, index) => ({ status: index === 0 ? 500 : 200 }));
    await register(api, { url: receiver.url, platform: 'erp', eventTypes: ['order_placed'] });
    const res = await api.post('/v1/events', { json: { type: 'order_placed', payload: { n: 1 } } });
    expect(res.status, res.text).toBe(201);
    await receiver.waitFor(2);
    const e = await scrapeUntil(srv.url, (x) => x.sum('syncbridge_webhook_attempts_total') === 2);
    expect(e.value('syncbridge_webhook_attempts_total', { outcome: 'http_error' })).toBe(1);
    expect(e.value('syncbridge_webhook_attempts_total', { outcome: 'success' })).toBe(1);
    expect(e.value('syncbridge_webhook_attempt_duration_seconds_count')).toBe(2);
    expect(e.value('syncbridge_webhook_delivery_lag_seconds_count', { platform: 'erp' })).toBe(1);
    // The retry waited at least the first step of the schedule (100 ms) after the commit.
    expect(e.value('syncbridge_webhook_delivery_lag_seconds_bucket', { platform: 'erp', le: '0.05' })).toBe(
      0,
    );
    expect(e.value('syncbridge_webhook_dead_letters_total')).toBe(0);
  });
});

const hasPostgres = (await storeKinds()).includes('postgres');

describe.skipIf(!hasPostgres)('Prometheus metrics of the bus between two nodes (postgres)', () => {
  const nodes: TestServer[] = [];
  const storage = hasPostgres ? createTestStorage('postgres') : null;
  beforeAll(async () => {
    const busNetwork = new MemoryBusNetwork();
    for (const nodeId of ['node-a', 'node-b']) {
      nodes.push(await startTestServer('postgres', { nodeId }, storage!, { busNetwork }));
    }
  });
  afterAll(async () => {
    for (const node of nodes) await node.close({ keepData: true });
    await storage?.cleanup();
  });

  it('counts messages received, their transit, and their fan-out on the receiving node', async () => {
    const [a, b] = nodes as [TestServer, TestServer];
    const reader = await TestWsClient.connect(b.wsUrl, await b.token('bus', 'reader'));
    await reader.request({ type: 'subscribe', channel: 'records:notes' });
    const writer = await TestWsClient.connect(a.wsUrl, await a.token('bus', 'writer'));
    for (let i = 0; i < 3; i++) {
      await writer.request({
        type: 'mutate',
        mutations: [{ mid: `n${i}`, collection: 'notes', id: `n${i}`, op: 'put', data: { i } }],
      });
    }
    await reader.waitForEvents(3, 'records:notes');
    const eb = await scrape(b.url, { apiKey: TEST_ADMIN_KEY });
    const ea = await scrape(a.url, { apiKey: TEST_ADMIN_KEY });
    expect(eb.value('syncbridge_bus_messages_received_total', { bus: 'memory', type: 'events' })).toBe(3);
    expect(eb.value('syncbridge_bus_transit_seconds_count', { bus: 'memory' })).toBe(3);
    expect(eb.value('syncbridge_fanout_latency_seconds_count', { origin: 'bus' })).toBe(3);
    expect(eb.value('syncbridge_fanout_latency_seconds_count', { origin: 'local' })).toBe(0);
    expect(ea.value('syncbridge_bus_publish_duration_seconds_count', { bus: 'memory' })).toBe(3);
    expect(ea.value('syncbridge_bus_reconnects_total', { bus: 'memory' })).toBe(0);
    expect(eb.value('syncbridge_sequencer_gap_fills_total')).toBe(0);
    // Each node says which it is.
    expect(ea.find('syncbridge_node_info').map((s) => s.labels.node)).toEqual(['node-a']);
    expect(eb.find('syncbridge_node_info').map((s) => s.labels.node)).toEqual(['node-b']);
    await Promise.all([reader.close(), writer.close()]);
  });
});
