/**
 * A device's cursor is what it acknowledged, and it cannot acknowledge what is not in the log: an `ack`
 * beyond the log's head is stored as the head (with an error telling the client so), instead of as is,
 * for ever (the cursor only rises), so that the device would be told nothing waits and an `events:`
 * channel resumed from it would skip everything written after. Acks of seqs the connection was sent,
 * or that are in the log, are stored as they are.
 */
import type { MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

/** A connection that names its device in `hello`; resolves once welcomed. */
async function device(wsUrl: string, token: string, deviceId: string): Promise<TestWsClient> {
  const c = await TestWsClient.connect(wsUrl);
  const welcome = await c.request({ type: 'hello', token, deviceId, protocol: 1 });
  expect(welcome.type).toBe('welcome');
  return c;
}

/** Reconnects as the device until its welcome carries a cursor (saves land within about a second). */
async function cursorOf(wsUrl: string, token: string, deviceId: string): Promise<unknown> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const c = await device(wsUrl, token, deviceId);
    const welcome = c.messages.find((m) => m.type === 'welcome')!;
    await c.close();
    if (welcome.cursor !== undefined || Date.now() > deadline) return welcome.cursor;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(kinds)('ack bounds (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('stores an ack beyond the log head as the head, so what is written next still reaches the device', async () => {
    const token = await srv.token('acme', 'alice');
    const c = await device(srv.wsUrl, token, 'phone-1');
    await c.request({ type: 'subscribe', channel: 'events:*' });
    for (let i = 0; i < 3; i++) await c.request({ type: 'publish', event: { type: 'tick', payload: { i } } });
    await c.waitForEvents(3);
    c.send({ type: 'ack', seq: 1_000_000 });
    const error = await c.waitFor((m) => m.type === 'error', 5000);
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toMatch(/ack 1000000 is beyond the log's head \(3\)/);
    await c.close();
    expect(await cursorOf(srv.wsUrl, token, 'phone-1')).toBe(3);

    // Written while the device is away: it is told so, and a resume from its cursor gets it.
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    for (let i = 0; i < 2; i++)
      await writer.request({ type: 'publish', event: { type: 'later', payload: { i } } });
    await writer.close();
    const back = await device(srv.wsUrl, token, 'phone-1');
    expect(await back.waitFor((m) => m.type === 'pending')).toMatchObject({ cursor: 3, events: 2, head: 5 });
    await back.request({ type: 'subscribe', channel: 'events:*', since: 3 });
    expect((await back.waitForEvents(2)).map((e) => e.seq)).toEqual([4, 5]);
    await back.close();
  });

  it('stores acks of seqs the connection was sent or that are in the log as they are', async () => {
    const token = await srv.token('acks', 'bob');
    const other = await TestWsClient.connect(srv.wsUrl, token);
    const c = await device(srv.wsUrl, token, 'laptop');
    const reply = await c.request({
      type: 'mutate',
      mutations: [{ mid: 'b1', collection: 'notes', id: 'n', op: 'put', data: { x: 1 } }],
    });
    c.send({ type: 'ack', seq: (reply.results as MutationResult[])[0]!.seq! });
    // A seq written by another connection, known to this client by other means (REST, say).
    const written = await other.request({
      type: 'mutate',
      mutations: [{ mid: 'b2', collection: 'notes', id: 'n', op: 'put', data: { x: 2 } }],
    });
    const seq = (written.results as MutationResult[])[0]!.seq!;
    c.send({ type: 'ack', seq });
    await c.request({ type: 'ping' });
    await c.close();
    await other.close();
    expect(await cursorOf(srv.wsUrl, token, 'laptop')).toBe(seq);
    expect(c.messages.filter((m) => m.type === 'error')).toEqual([]);
  });

  it('stores no cursor past an empty log', async () => {
    const token = await srv.token('empty', 'carol');
    const c = await device(srv.wsUrl, token, 'watch');
    c.send({ type: 'ack', seq: 7 });
    expect((await c.waitFor((m) => m.type === 'error', 5000)).code).toBe('BAD_REQUEST');
    await c.close();
    expect(await cursorOf(srv.wsUrl, token, 'watch')).toBe(0);
  });
});
