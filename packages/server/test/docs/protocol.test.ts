/**
 * docs/protocol.md against the server: every client frame the page shows is accepted by the server's
 * validator, the worked example's code is the quickstart's code, and the behaviours the page promises
 * (domain event frames, duplicate results, reset, device cursors, filter rules) hold on both stores.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { CLIENT_MESSAGE_SCHEMAS, Conflict, MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClientFrame } from '../../src/realtime/validate.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const PAGE = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
const kinds = await storeKinds();

/** Code blocks of the page with their language. */
function blocks(lang: string): string[] {
  return [...PAGE.matchAll(/```(\w+)\n([\s\S]*?)```/g)].filter((m) => m[1] === lang).map((m) => m[2]!);
}

/** Every line of the page's json blocks that is a whole JSON object with a `type`. */
function documentedFrames(): Record<string, unknown>[] {
  const frames: Record<string, unknown>[] = [];
  for (const block of blocks('json')) {
    for (const line of block.split('\n')) {
      try {
        const value = JSON.parse(line) as Record<string, unknown>;
        if (typeof value.type === 'string') frames.push(value);
      } catch {
        // a line of a multi-line example
      }
    }
  }
  return frames;
}

describe('docs/protocol.md examples', () => {
  it('every client message the page shows passes the server’s validation', () => {
    const clientFrames = documentedFrames().filter((f) =>
      Object.hasOwn(CLIENT_MESSAGE_SCHEMAS, f.type as string),
    );
    expect(new Set(clientFrames.map((f) => f.type))).toEqual(
      new Set(['hello', 'subscribe', 'unsubscribe', 'mutate', 'publish', 'resolve', 'ack', 'ping']),
    );
    for (const frame of clientFrames) {
      const parsed = parseClientFrame(JSON.stringify(frame));
      expect(parsed.ok, `${JSON.stringify(frame)}: ${parsed.ok ? '' : parsed.error.message}`).toBe(true);
    }
  });

  it('every server message the page shows has the fields its table lists', () => {
    const required: Record<string, string[]> = {
      welcome: ['connectionId', 'tenant', 'user', 'roles', 'serverTime', 'heartbeatMs', 'protocol'],
      subscribed: ['channel', 'cursor'],
      event: ['channel', 'seq', 'eventId', 'kind', 'actor', 'ts'],
      snapshot: ['channel', 'records', 'cursor', 'done'],
      reset: ['channel', 'reason'],
      ok: ['seq', 'eventId'],
      pong: ['serverTime'],
      error: ['code', 'message'],
      conflict: ['conflict'],
      results: ['results'],
    };
    const shown = documentedFrames().filter((f) => Object.hasOwn(required, f.type as string));
    expect(new Set(shown.map((f) => f.type))).toEqual(new Set(Object.keys(required)));
    for (const frame of shown) {
      if (frame.type === 'conflict') expect(Value.Check(Conflict, frame.conflict)).toBe(true);
      if (frame.type === 'results') {
        for (const result of frame.results as unknown[])
          expect(Value.Check(MutationResult, result)).toBe(true);
      }
      for (const field of required[frame.type as string]!)
        expect(frame, `${frame.type}.${field}`).toHaveProperty(field);
    }
  });

  it('the worked example’s code is the quickstart’s code', () => {
    const source = readFileSync(join(ROOT, 'examples/quickstart/quickstart.ts'), 'utf8');
    const normalize = (s: string) =>
      s
        .replace(/\s+/g, ' ')
        .replace(/,\s*([}\])])/g, '$1')
        .replace(/([{[(])\s+/g, '$1')
        .replace(/\s+([}\])])/g, '$1')
        .trim();
    const code = blocks('ts').find((b) => b.includes('resumedFrom'));
    expect(code).toBeDefined();
    const lines = code!
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('//'));
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) expect(normalize(source)).toContain(normalize(line));
  });
});

describe.each(kinds)('docs/protocol.md behaviours (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('a domain event frame has type "event" and eventType, live and from the backlog alike', async () => {
    const token = await srv.token('proto-events', 'alice');
    const live = await TestWsClient.connect(srv.wsUrl, token);
    await live.request({ type: 'subscribe', channel: 'events:trade_closed?target=bfc' });
    const ok = await live.request({
      type: 'publish',
      event: {
        type: 'trade_closed',
        payload: { tradeId: 'T-17', pnl: 42.5 },
        source: 'vyomo',
        target: 'bfc',
        priority: 5,
        idempotencyKey: 'trade-T-17',
      },
    });
    expect(ok).toMatchObject({ type: 'ok', seq: 1 });
    const [liveFrame] = await live.waitForEvents(1, 'events:trade_closed?target=bfc');
    expect(liveFrame).toMatchObject({
      type: 'event',
      channel: 'events:trade_closed?target=bfc',
      seq: 1,
      kind: 'event',
      eventType: 'trade_closed',
      payload: { tradeId: 'T-17', pnl: 42.5 },
      source: 'vyomo',
      target: 'bfc',
      priority: 5,
      actor: 'alice',
    });
    expect(typeof liveFrame!.hlc).toBe('string');

    const again = await live.request({
      type: 'publish',
      event: { type: 'trade_closed', payload: { tradeId: 'T-17', pnl: 42.5 }, idempotencyKey: 'trade-T-17' },
    });
    expect(again).toMatchObject({ type: 'ok', seq: 1, eventId: ok.eventId, duplicate: true });

    const later = await TestWsClient.connect(srv.wsUrl, token);
    await later.request({ type: 'subscribe', channel: 'events:trade_closed?target=bfc', since: 0 });
    const [backlogFrame] = await later.waitForEvents(1, 'events:trade_closed?target=bfc');
    expect(backlogFrame).toEqual(liveFrame);
    await Promise.all([live.close(), later.close()]);
  });

  it('a replayed mid answers duplicate with originalStatus and the first result, applied or rejected', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, await srv.token('proto-dup', 'alice'));
    const mutations = [
      { mid: 'd-1', collection: 'stock', id: 'sku-1', op: 'increment', data: { qty: -2 } },
      { mid: 'd-2', collection: 'todos', id: 'nope', op: 'delete' },
    ];
    const first = (await client.request({ type: 'mutate', mutations })).results as MutationResult[];
    expect(first.map((r) => r.status)).toEqual(['applied', 'rejected']);
    expect(first[1]!.error).toEqual({ code: 'NOT_FOUND', message: 'record does not exist' });
    const second = (await client.request({ type: 'mutate', mutations })).results as MutationResult[];
    expect(second).toEqual([
      { ...first[0], status: 'duplicate', originalStatus: 'applied' },
      { ...first[1], status: 'duplicate', originalStatus: 'rejected' },
    ]);
    const record = await fetch(`${srv.url}/v1/records/stock/sku-1`, {
      headers: { 'X-Api-Key': srv.adminKey, 'X-Tenant': 'proto-dup' },
    });
    expect(((await record.json()) as { data: unknown; version: number }).data).toEqual({ qty: -2 });
    await client.close();
  });

  it('a since ahead of the log gets subscribed, reset, then a snapshot', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, await srv.token('proto-reset', 'alice'));
    await client.request({
      type: 'mutate',
      mutations: [{ mid: 'r-1', collection: 'todos', id: 't1', op: 'put', data: { title: 'x' } }],
    });
    const subscribed = await client.request({ type: 'subscribe', channel: 'records:todos', since: 9999 });
    expect(subscribed).toMatchObject({ type: 'subscribed', channel: 'records:todos', cursor: 1 });
    const reset = await client.waitFor((m) => m.type === 'reset');
    expect(reset).toEqual({
      type: 'reset',
      channel: 'records:todos',
      reason: 'cursor 9999 is ahead of the log (head 1)',
    });
    const snapshot = await client.waitFor((m) => m.type === 'snapshot');
    expect(snapshot).toMatchObject({ channel: 'records:todos', cursor: 1, done: true });
    expect((snapshot.records as { id: string }[]).map((r) => r.id)).toEqual(['t1']);
    await client.close();
  });

  it('an acked seq comes back as welcome.cursor for the same user and device', async () => {
    const token = await srv.token('proto-cursor', 'bob');
    const first = await TestWsClient.connect(srv.wsUrl);
    const welcome = await first.request({ type: 'hello', token, deviceId: 'laptop-1' });
    expect(welcome).toMatchObject({ type: 'welcome', tenant: 'proto-cursor', user: 'bob', protocol: 1 });
    expect(welcome).not.toHaveProperty('cursor');
    // An ack is stored up to the log's head at most: the log needs seven entries for an ack of 7.
    for (let i = 0; i < 7; i++)
      await first.request({ type: 'publish', event: { type: 'note', payload: { i } } });
    first.send({ type: 'ack', seq: 7 });
    await first.request({ type: 'ping' });
    await first.close();

    // The cursor is saved when the connection closes (and within about a second): reconnect until the
    // save has landed, naming the device at the upgrade this time.
    const deadline = Date.now() + 5000;
    for (;;) {
      const again = await TestWsClient.connect(`${srv.wsUrl}?deviceId=laptop-1`, undefined, {
        Authorization: `Bearer ${token}`,
      });
      const welcomed = await again.waitFor((m) => m.type === 'welcome');
      await again.close();
      if (welcomed.cursor === 7 || Date.now() > deadline) {
        expect(welcomed).toMatchObject({ type: 'welcome', user: 'bob', cursor: 7 });
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('filters compare numbers and booleans as JSON text, follow dotted paths, route deletes and leavers', async () => {
    const token = await srv.token('proto-filters', 'alice');
    const client = await TestWsClient.connect(srv.wsUrl, token);
    const channels = [
      'records:stock?qty=5',
      'records:stock?open=true',
      'records:stock?address.city=Oslo',
      'records:stock?price=1.5',
    ];
    for (const channel of channels) await client.request({ type: 'subscribe', channel });
    const put = (mid: string, id: string, data: Record<string, unknown>) => ({
      mid,
      collection: 'stock',
      id,
      op: 'put',
      data,
    });
    await client.request({
      type: 'mutate',
      mutations: [
        put('f-1', 'a', { qty: 5, open: true, address: { city: 'Oslo' }, price: 1.5 }),
        put('f-2', 'b', { qty: '5', open: 'true', address: 'Oslo', price: null }),
        put('f-3', 'c', { qty: 6, open: false }),
        { mid: 'f-4', collection: 'stock', id: 'a', op: 'patch', data: { qty: 6 } },
        { mid: 'f-5', collection: 'stock', id: 'b', op: 'delete' },
      ],
    });
    await client.request({ type: 'ping' });
    const seen = (channel: string) => client.events(channel).map((e) => `${e.id}:${e.op}`);
    // The string "5" also reads as 5: a filter compares text. The patch moving `a` out of qty=5 is sent
    // there too, with the old value in `previous`.
    expect(seen('records:stock?qty=5')).toEqual(['a:put', 'b:put', 'a:patch', 'b:delete']);
    expect(seen('records:stock?open=true')).toEqual(['a:put', 'b:put', 'a:patch', 'b:delete']);
    expect(seen('records:stock?address.city=Oslo')).toEqual(['a:put', 'a:patch']);
    expect(seen('records:stock?price=1.5')).toEqual(['a:put', 'a:patch']);
    const left = client.events('records:stock?qty=5').find((e) => e.op === 'patch');
    expect(left).toMatchObject({ id: 'a', data: { qty: 6 }, previous: { qty: 5 } });
    // The delete carries the record's last data.
    const del = client.events('records:stock?qty=5').find((e) => e.op === 'delete');
    expect(del).toMatchObject({ data: { qty: '5', open: 'true', address: 'Oslo', price: null }, version: 2 });
    await client.close();
  });
});
