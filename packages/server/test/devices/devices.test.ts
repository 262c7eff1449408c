/**
 * Devices and selective sync against a real server on both stores: registration over REST and in
 * `hello`, who may see whose devices, categories refusing records channels (and ending live ones when
 * they change), the pending count after a device's cursor, `events` batches for clients that speak
 * them, and permessage-deflate negotiated per connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pendingFrom } from '../../src/devices/registry.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

type Msg = Record<string, unknown>;

describe.each(kinds)('devices and selective sync (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    // A buffer limit below the ~700 KB of results the compression test sends in one frame.
    srv = await startTestServer(kind, { maxBufferedBytes: 256 * 1024 });
  });
  afterAll(async () => srv?.close());

  const rest = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Msg };
  };

  /** A connection that says hello with the given extras and waits for welcome. */
  async function hello(token: string, extras: Msg = {}) {
    const client = await TestWsClient.connect(srv.wsUrl);
    const welcome = await client.request({ type: 'hello', token, ...extras });
    return { client, welcome };
  }

  async function put(client: TestWsClient, collection: string, id: string, data: Msg, mid: string) {
    const reply = await client.request({
      type: 'mutate',
      mutations: [{ mid, collection, id, op: 'put', data }],
    });
    return (reply.results as Msg[])[0]!;
  }

  it('registers, lists, reads, changes and forgets devices over REST; users see only their own', async () => {
    const alice = await srv.token('dev-rest', 'alice');
    const bob = await srv.token('dev-rest', 'bob');
    const admin = await srv.token('dev-rest', 'root', { roles: ['admin'] });

    const created = await rest('POST', '/v1/devices', alice, {
      id: 'phone-1',
      type: 'mobile',
      name: 'Alice’s phone',
      platform: 'iOS 18',
      appVersion: '2.1.0',
      capabilities: ['offline', 'batch'],
      categories: ['documents', 'settings'],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: 'phone-1',
      user: 'alice',
      type: 'mobile',
      categories: ['documents', 'settings'],
      capabilities: ['offline', 'batch'],
    });
    const generated = await rest('POST', '/v1/devices', alice, { type: 'browser' });
    expect(generated.status).toBe(201);
    expect(generated.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(generated.body.categories).toBeNull();

    // Registering a known id again changes only the fields given.
    const again = await rest('POST', '/v1/devices', alice, { id: 'phone-1', appVersion: '2.2.0' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ appVersion: '2.2.0', name: 'Alice’s phone', type: 'mobile' });

    const list = await rest('GET', '/v1/devices', alice);
    expect((list.body.devices as Msg[]).map((d) => d.id).sort()).toEqual(
      ['phone-1', generated.body.id as string].sort(),
    );
    expect((await rest('GET', '/v1/devices', bob)).body.devices).toEqual([]);
    expect((await rest('GET', '/v1/devices/phone-1', bob)).status).toBe(404);
    expect((await rest('GET', '/v1/devices?user=alice', bob)).status).toBe(403);
    expect(((await rest('GET', '/v1/devices', admin)).body.devices as Msg[]).length).toBe(2);
    expect((await rest('GET', '/v1/devices/phone-1?user=alice', admin)).status).toBe(200);

    const one = await rest('GET', '/v1/devices/phone-1', alice);
    expect(one.body).toMatchObject({ id: 'phone-1', pending: { cursor: 0, count: 0, events: 0 } });

    const patched = await rest('PATCH', '/v1/devices/phone-1', alice, {
      categories: null,
      name: 'old phone',
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ categories: null, name: 'old phone', appVersion: '2.2.0' });
    expect((await rest('PATCH', '/v1/devices/nope', alice, { name: 'x' })).status).toBe(404);
    const bad = await rest('POST', '/v1/devices', alice, { id: 'has space', categories: ['ok'] });
    expect(bad.status).toBe(400);
    const badCategory = await rest('POST', '/v1/devices', alice, { categories: ['no/slash'] });
    expect(badCategory.status).toBe(400);

    expect((await rest('DELETE', '/v1/devices/phone-1', alice)).status).toBe(204);
    expect((await rest('GET', '/v1/devices/phone-1', alice)).status).toBe(404);
    expect((await rest('DELETE', '/v1/devices/phone-1', alice)).status).toBe(404);
  });

  it('registers a device in hello and refuses records channels outside its categories', async () => {
    const token = await srv.token('dev-hello', 'alice');
    const { client, welcome } = await hello(token, {
      deviceId: 'tablet',
      device: { type: 'tablet', name: 'Kitchen tablet', categories: ['documents'] },
    });
    expect(welcome.type).toBe('welcome');
    const refused = await client.request({ type: 'subscribe', channel: 'records:photos' });
    expect(refused).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect(await client.request({ type: 'subscribe', channel: 'records:documents' })).toMatchObject({
      type: 'subscribed',
    });
    // Domain events are not narrowed by categories.
    expect(await client.request({ type: 'subscribe', channel: 'events:*' })).toMatchObject({
      type: 'subscribed',
    });
    const device = await rest('GET', '/v1/devices/tablet', token);
    expect(device.body).toMatchObject({ type: 'tablet', name: 'Kitchen tablet', categories: ['documents'] });
    expect(typeof device.body.lastSeenAt).toBe('string');

    // A hello with device info needs a deviceId.
    const anonymous = await TestWsClient.connect(srv.wsUrl);
    const reply = await anonymous.request({ type: 'hello', token, device: { type: 'browser' } });
    expect(reply).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    await anonymous.close();

    // A connection that names the device without registering again gets its stored categories.
    const second = await hello(token, { deviceId: 'tablet' });
    expect(await second.client.request({ type: 'subscribe', channel: 'records:photos' })).toMatchObject({
      code: 'FORBIDDEN',
    });
    await second.client.close();
    await client.close();
  });

  it('ends live subscriptions outside new categories when the device is changed over REST', async () => {
    const token = await srv.token('dev-patch', 'alice');
    const { client } = await hello(token, { deviceId: 'laptop', device: { categories: null } });
    await client.request({ type: 'subscribe', channel: 'records:photos' });
    await client.request({ type: 'subscribe', channel: 'records:documents' });
    const patched = await rest('PATCH', '/v1/devices/laptop', token, { categories: ['documents'] });
    expect(patched.status).toBe(200);
    const ended = await client.waitFor((m) => m.type === 'unsubscribed' && m.channel === 'records:photos');
    expect(ended.reason).toMatch(/photos/);
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    await put(writer, 'photos', 'p1', { n: 1 }, 'p1');
    await put(writer, 'documents', 'd1', { n: 1 }, 'd1');
    await client.waitForEvents(1, 'records:documents');
    expect(client.events('records:photos')).toEqual([]);
    await writer.close();
    await client.close();
  });

  it('reports what is pending after the device’s cursor, in its categories, when it connects', async () => {
    const token = await srv.token('dev-pending', 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    const first = await hello(token, { deviceId: 'phone', device: { categories: ['documents', 'notes'] } });
    const pendingAtFirst = await first.client.waitFor((m) => m.type === 'pending');
    expect(pendingAtFirst).toMatchObject({ deviceId: 'phone', cursor: 0, count: 0, events: 0, head: 0 });
    const seen = await put(writer, 'documents', 'd1', { v: 1 }, 'w1');
    first.client.send({ type: 'ack', seq: seen.seq });
    await first.client.request({ type: 'ping' });
    await first.client.close();

    // While the phone is away: two document changes, one note, three photos and a domain event.
    await put(writer, 'documents', 'd1', { v: 2 }, 'w2');
    await put(writer, 'documents', 'd2', { v: 1 }, 'w3');
    await put(writer, 'notes', 'n1', { v: 1 }, 'w4');
    for (let i = 0; i < 3; i++) await put(writer, 'photos', `p${i}`, { i }, `w-photo-${i}`);
    const published = await writer.request({ type: 'publish', event: { type: 'synced', payload: {} } });

    const back = await hello(token, { deviceId: 'phone' });
    expect(back.welcome.cursor).toBe(seen.seq);
    const pending = await back.client.waitFor((m) => m.type === 'pending');
    expect(pending).toMatchObject({
      deviceId: 'phone',
      cursor: seen.seq,
      head: published.seq,
      count: 3,
      events: 1,
      collections: { documents: 2, notes: 1 },
    });
    // The count reads at most `limit` entries after the cursor: a connect's work stays bounded.
    const few = await srv.server.store.countEventsAfter('dev-pending', seen.seq as number, 3);
    expect(few.reduce((n, row) => n + row.count, 0)).toBe(3);
    expect(few.find((row) => row.collection === 'documents')?.count).toBe(2);
    expect(pendingFrom(few, seen.seq as number, published.seq as number, ['documents'], 3)).toMatchObject({
      count: 2,
      capped: true,
    });
    const rested = await rest('GET', '/v1/devices/phone', token);
    expect(rested.body.pending).toMatchObject({ cursor: seen.seq, count: 3, events: 1 });
    // A connection without a device id gets no pending message.
    const anonymous = await TestWsClient.connect(srv.wsUrl, token);
    await anonymous.request({ type: 'ping' });
    expect(anonymous.messages.some((m) => m.type === 'pending')).toBe(false);
    await anonymous.close();
    await back.client.close();
    await writer.close();
  });

  it('sends a batch-capable connection its backlog and a commit’s events in fewer frames, in order', async () => {
    const token = await srv.token('dev-batch', 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    const backlog = Array.from({ length: 120 }, (_, i) => ({
      mid: `b${i}`,
      collection: 'documents',
      id: `d${i % 7}`,
      op: 'put',
      data: { i },
    }));
    await writer.request({ type: 'mutate', mutations: backlog });

    const batched = (await hello(token, { capabilities: ['batch'] })).client;
    const plain = (await hello(token, { capabilities: [] })).client;
    for (const c of [batched, plain]) {
      await c.request({ type: 'subscribe', channel: 'records:documents', since: 0 });
    }
    const seqsOf = (c: TestWsClient) =>
      c.messages.flatMap((m) =>
        m.type === 'event'
          ? [m.seq as number]
          : m.type === 'events'
            ? (m.events as Msg[]).map((e) => e.seq as number)
            : [],
      );
    const waitSeqs = async (c: TestWsClient, n: number) => {
      const deadline = Date.now() + 5000;
      while (seqsOf(c).length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} events, got ${seqsOf(c).length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await waitSeqs(batched, 120);
    await waitSeqs(plain, 120);
    const expected = Array.from({ length: 120 }, (_, i) => i + 1);
    expect(seqsOf(batched)).toEqual(expected);
    expect(seqsOf(plain)).toEqual(expected);
    const frames = (c: TestWsClient) => c.messages.filter((m) => m.type === 'event' || m.type === 'events');
    expect(frames(plain).length).toBe(120);
    expect(frames(batched).length).toBeLessThan(5);
    const batch = frames(batched).find((m) => m.type === 'events')!;
    expect(batch.channel).toBe('records:documents');
    expect((batch.events as Msg[])[0]).toMatchObject({ seq: 1, kind: 'record', id: 'd0', data: { i: 0 } });
    expect((batch.events as Msg[])[0]).not.toHaveProperty('type');

    // Live: one commit of 30 changes reaches the batch connection in one frame.
    const before = frames(batched).length;
    await writer.request({
      type: 'mutate',
      mutations: Array.from({ length: 30 }, (_, i) => ({
        mid: `l${i}`,
        collection: 'documents',
        id: `live${i}`,
        op: 'put',
        data: { i },
      })),
    });
    await waitSeqs(batched, 150);
    await waitSeqs(plain, 150);
    expect(seqsOf(batched)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(frames(batched).length - before).toBe(1);
    // A lone change still goes as a plain event frame.
    await put(writer, 'documents', 'solo', { x: 1 }, 'solo');
    await waitSeqs(batched, 151);
    expect(frames(batched).at(-1)).toMatchObject({ type: 'event', seq: 151, id: 'solo' });
    for (const c of [batched, plain, writer]) await c.close();
  });

  it('negotiates permessage-deflate for connections that ask with compress=1; large frames arrive whole', async () => {
    const token = await srv.token('dev-deflate', 'alice');
    const big = { body: 'lorem ipsum dolor sit amet '.repeat(400) };
    const open = (query: string, perMessageDeflate = true) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${srv.wsUrl}?token=${encodeURIComponent(token)}${query}`, {
          perMessageDeflate,
        });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
      });
    const received = (ws: WebSocket) => {
      const messages: Msg[] = [];
      ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Msg));
      return messages;
    };
    const compressed = await open('&compress=1');
    const offeredOnly = await open('');
    const refusing = await open('&compress=1', false);
    expect(compressed.extensions).toContain('permessage-deflate');
    // The client offered the extension, but did not ask for compression: none.
    expect(offeredOnly.extensions).toBe('');
    expect(refusing.extensions).toBe('');
    const sockets = [compressed, offeredOnly, refusing];
    const inboxes = sockets.map(received);
    for (const ws of sockets)
      ws.send(JSON.stringify({ type: 'subscribe', rid: 's', channel: 'records:documents' }));
    const waitUntil = async (check: () => boolean) => {
      const deadline = Date.now() + 5000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await waitUntil(() => inboxes.every((m) => m.some((x) => x.type === 'subscribed')));
    // The compressed client writes large records (compressed on their way in, ~1 MB of results on the way
    // out: more than the buffer limit, which a frame waiting for the compressor must not trip) and every
    // connection gets them whole.
    compressed.send(
      JSON.stringify({
        type: 'mutate',
        rid: 'm',
        mutations: Array.from({ length: 60 }, (_, i) => ({
          mid: `big${i}`,
          collection: 'documents',
          id: `big${i}`,
          op: 'put',
          data: { ...big, i },
        })),
      }),
    );
    await waitUntil(() => inboxes.every((m) => m.filter((x) => x.type === 'event').length === 60));
    for (const messages of inboxes) {
      expect(messages.find((m) => m.type === 'event')).toMatchObject({ id: 'big0', data: { ...big, i: 0 } });
    }
    await waitUntil(() => inboxes[0]!.some((m) => m.type === 'results'));
    expect((inboxes[0]!.find((m) => m.type === 'results')!.results as Msg[]).length).toBe(60);
    expect(compressed.readyState).toBe(WebSocket.OPEN);
    for (const ws of sockets) ws.close();
  });
});
