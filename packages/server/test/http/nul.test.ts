/**
 * The NUL character (U+0000), on both stores and both transports: PostgreSQL cannot store it and SQLite
 * could, so it is refused before any store sees it, with BAD_REQUEST and where it was: in a record's
 * data (a value or a key), a record id or collection in the URL, a query filter, an event's payload, a
 * batch of mutations, a WebSocket frame, a connector's write. Nothing is stored, and the connection and
 * every other write carry on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector, ConnectorContext, ConnectorHealth } from '../../src/connectors/types.ts';
import { SyncError } from '../../src/core/errors.ts';
import { startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, restClient } from './rest.ts';

const kinds = await storeKinds();
const NUL = '\u0000';

/** A connector that only hands its context out, so the test can write as it. */
class HandleConnector implements Connector {
  readonly kind = 'handle';
  readonly tenant = 'acme';
  readonly name = 'handle';
  ctx: ConnectorContext | null = null;
  start(ctx: ConnectorContext): void {
    this.ctx = ctx;
  }
  stop(): void {
    this.ctx = null;
  }
  health(): ConnectorHealth {
    return { state: 'running', lastSuccessAt: null, lastError: null, stalenessMs: null, stale: false };
  }
}

describe.each(kinds)('NUL characters are refused before the store (%s)', (kind) => {
  let srv: TestServer;
  const connector = new HandleConnector();
  beforeAll(async () => {
    srv = await startTestServer(kind, {}, undefined, { connectors: [connector] });
  });
  afterAll(async () => {
    await srv.close();
  });

  it('over REST: in data values and keys, ids, collections, filters, events and batches', async () => {
    const api = restClient(srv.url, { token: await srv.token('acme', 'alice') });
    const cases = [
      { res: await api.put('/v1/records/notes/n1', { json: { title: `a${NUL}b` } }), path: '/title' },
      {
        res: await api.put('/v1/records/notes/n1', { json: { nested: { [`k${NUL}`]: 1 } } }),
        path: '/nested/k\\u0000',
      },
      { res: await api.patch('/v1/records/notes/n1', { json: { list: ['ok', NUL] } }), path: '/list/1' },
      { res: await api.put('/v1/records/notes/n%00x', { json: { title: 'x' } }), path: '/id' },
      { res: await api.put('/v1/records/no%00tes/n1', { json: { title: 'x' } }), path: '/collection' },
      { res: await api.get('/v1/records/notes?title=a%00b'), path: '/title' },
      {
        res: await api.post('/v1/events', { json: { type: 'note', payload: { text: NUL } } }),
        path: '/payload/text',
      },
      {
        res: await api.post('/v1/mutations', {
          json: {
            mutations: [
              { mid: 'm1', collection: 'notes', id: 'n2', op: 'put', data: { title: 'fine' } },
              { mid: 'm2', collection: 'notes', id: 'n3', op: 'put', data: { title: NUL } },
            ],
          },
        }),
        path: '/mutations/1/data/title',
      },
    ];
    for (const { res, path } of cases) {
      expectError(res, 400, 'BAD_REQUEST');
      expect(res.body.error.message).toMatch(/NUL character/);
      expect(res.body.error.details, res.text).toEqual({ path });
    }
    // Nothing of it was stored; a clean write still goes through.
    expect((await api.get('/v1/records/notes')).body.records).toEqual([]);
    expect((await api.get('/v1/events')).body.events).toEqual([]);
    expect((await api.put('/v1/records/notes/n1', { json: { title: 'clean' } })).status).toBe(201);
  });

  it('over WebSocket: the frame is refused with its rid, the connection carries on', async () => {
    const ws = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'bob'));
    try {
      const bad = await ws.request({
        type: 'mutate',
        mutations: [{ mid: 'w1', collection: 'ws_notes', id: 'a', op: 'put', data: { [`x${NUL}`]: 1 } }],
      });
      expect(bad).toMatchObject({
        type: 'error',
        code: 'BAD_REQUEST',
        message: expect.stringMatching(/NUL/),
      });
      const event = await ws.request({ type: 'publish', event: { type: 'note', payload: { t: `${NUL}` } } });
      expect(event).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
      const good = await ws.request({
        type: 'mutate',
        mutations: [{ mid: 'w2', collection: 'ws_notes', id: 'a', op: 'put', data: { x: 1 } }],
      });
      expect(good).toMatchObject({ type: 'results', results: [{ mid: 'w2', status: 'applied' }] });
    } finally {
      await ws.close();
    }
  });

  it('from a connector (any writer of the write path), refused before it joins a batch', async () => {
    const ctx = connector.ctx!;
    const err = await ctx
      .mutate([{ mid: 'c1', collection: 'feed', id: 'x', op: 'put', data: { v: `a${NUL}` } }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ code: 'BAD_REQUEST', details: { path: '/0/data/v' } });
    const published = await ctx.publish({ type: 'tick', payload: { s: NUL } }).catch((e: unknown) => e);
    expect(published).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await ctx.records.get('feed', 'x')).toBeNull();
  });

  it('a token whose subject holds NUL is refused', async () => {
    const token = await srv.token('acme', `eve${NUL}`);
    const res = await restClient(srv.url, { token }).get('/v1/records/notes');
    expectError(res, 401, 'UNAUTHORIZED');
  });
});
