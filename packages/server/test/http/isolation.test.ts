/**
 * Tenant isolation (DESIGN guarantee 4): a token for tenant A can neither read nor write nor learn the
 * existence of tenant B's data, through any REST route or WebSocket channel. Also the credentials that
 * bind a caller to a tenant: tenant API keys, the admin key with X-Tenant, and broken tokens.
 */
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  TEST_JWT_SECRET,
  type TestServer,
} from '../helpers/server.ts';
import { TestWsClient, upgradeRefusal } from '../helpers/ws-client.ts';
import { expectError, type Json, type RestResponse, rest, restClient } from './rest.ts';

const kinds = await storeKinds();

const A = 'tenant-a';
const B = 'tenant-b';
/** Every piece of B's data carries this marker, so a leak shows up in any text A receives. */
const B_MARK = 'B-SECRET-7f3e';

type Client = ReturnType<typeof restClient>;

describe.each(kinds)('tenant isolation (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let aUser: Client;
  let aAdmin: Client;
  let bAdmin: Client;
  let aToken: string;
  let aAdminToken: string;
  let bToken: string;
  let bWs: TestWsClient;
  let bBefore: string[];
  /** The seq A's own event with B's idempotency key got in the write test. */
  let aKeyedEventSeq = 0;

  /** Everything B can see of its own data, as raw response texts. */
  async function bState(): Promise<string[]> {
    const paths = [
      '/v1/records/shared?includeDeleted=true&limit=1000',
      '/v1/records/secret?includeDeleted=true&limit=1000',
      '/v1/records/shared/s1/history',
      '/v1/records/shared/b-only/history',
      '/v1/records/shared/b-gone/history',
      '/v1/records/secret/x1/history',
      '/v1/records/secret/x1',
      '/v1/events?limit=1000',
      '/v1/collections',
      '/v1/collections/shared',
      '/v1/collections/secret',
    ];
    const out: string[] = [];
    for (const path of paths) {
      const res = await bAdmin.get(path);
      expect(res.status, `${path}: ${res.text}`).toBe(200);
      out.push(`${path} ${res.text}`);
    }
    return out;
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    aToken = await srv.token(A, 'alice');
    aAdminToken = await srv.token(A, 'alice-admin', { roles: ['admin'] });
    bToken = await srv.token(B, 'bob', { roles: ['admin'] });
    aUser = restClient(srv.url, { token: aToken });
    aAdmin = restClient(srv.url, { token: aAdminToken });
    bAdmin = restClient(srv.url, { token: bToken });

    // Tenant B: settings, records (one deleted, one with history), events, a connection.
    const ok = (res: RestResponse) => expect(res.status, res.text).toBeLessThan(300);
    ok(await bAdmin.put('/v1/collections/shared', { json: { strategy: 'server_wins' } }));
    ok(
      await bAdmin.put('/v1/collections/secret', {
        json: { schema: { type: 'object', required: ['mark'], description: B_MARK } },
      }),
    );
    ok(await bAdmin.put('/v1/records/shared/s1', { json: { owner: 'b', mark: B_MARK, qty: 100 } }));
    ok(await bAdmin.put('/v1/records/shared/b-only', { json: { owner: 'b', mark: B_MARK, v: 1 } }));
    ok(await bAdmin.patch('/v1/records/shared/b-only', { json: { v: 2 } }));
    ok(await bAdmin.patch('/v1/records/shared/b-only', { json: { v: 3 } }));
    ok(await bAdmin.put('/v1/records/shared/b-gone', { json: { owner: 'b', mark: B_MARK } }));
    ok(await bAdmin.delete('/v1/records/shared/b-gone'));
    ok(
      await bAdmin.put('/v1/records/secret/x1', {
        json: { owner: 'b', mark: B_MARK, n: 1 },
        headers: { 'idempotency-key': 'b-key-1' },
      }),
    );
    ok(
      await bAdmin.post('/v1/mutations', {
        json: {
          mutations: [
            {
              mid: 'b-mid-1',
              collection: 'shared',
              id: 'b-batch',
              op: 'put',
              data: { owner: 'b', mark: B_MARK },
            },
          ],
        },
      }),
    );
    ok(await bAdmin.post('/v1/events', { json: { type: 'b_private', payload: { mark: B_MARK } } }));
    ok(
      await bAdmin.post('/v1/events', {
        json: { type: 'shared_type', payload: { mark: B_MARK }, source: 'bfc', idempotencyKey: 'b-evt-1' },
      }),
    );
    bWs = await TestWsClient.connect(srv.wsUrl, bToken);
    await bWs.request({ type: 'subscribe', channel: 'records:shared' });

    // Tenant A: a few records of its own, one with the same id as B's.
    ok(await aUser.put('/v1/records/shared/s1', { json: { owner: 'a', qty: 1 } }));
    ok(await aUser.put('/v1/records/shared/a-only', { json: { owner: 'a' } }));
    ok(await aUser.post('/v1/events', { json: { type: 'shared_type', payload: { owner: 'a' } } }));

    bBefore = await bState();
  });
  afterAll(async () => {
    await bWs?.close();
    await srv?.close();
  });

  /** A's credentials to try: a plain user and a tenant admin. */
  const aClients = (): Array<[string, Client]> => [
    ['a user', aUser],
    ['a admin', aAdmin],
  ];

  it('A’s token with a forged X-Tenant: b is refused FORBIDDEN, for reads and writes alike', async () => {
    for (const token of [aToken, aAdminToken]) {
      const forged = restClient(srv.url, { token, tenant: B });
      for (const res of [
        await forged.get('/v1/records/shared/b-only'),
        await forged.get('/v1/records/shared/nowhere'),
        await forged.get('/v1/records/shared'),
        await forged.put('/v1/records/shared/forged', { json: { owner: 'a' } }),
        await forged.delete('/v1/records/shared/b-only'),
      ]) {
        // The same answer whatever B holds: it tells nothing of B's data.
        expectError(res, 403, 'FORBIDDEN');
        expectNoLeak(res.text, 'forged X-Tenant');
      }
    }
  });

  function expectNoLeak(text: string, what: string): void {
    expect(text, what).not.toContain(B_MARK);
    expect(text, what).not.toContain(B);
    expect(text, what).not.toContain('bob');
  }

  it('A reads none of B’s records, history, log, settings or connections, and cannot tell they exist', async () => {
    for (const [who, api] of aClients()) {
      // A record only B has answers exactly like a record nobody has.
      const pairs: Array<[string, string]> = [
        ['/v1/records/shared/b-only', '/v1/records/shared/nowhere'],
        ['/v1/records/shared/b-gone', '/v1/records/shared/nowhere'],
        ['/v1/records/secret/x1', '/v1/records/never-used/x1'],
        ['/v1/records/shared/b-only/history', '/v1/records/shared/nowhere/history'],
        ['/v1/records/secret/x1/history', '/v1/records/never-used/x1/history'],
      ];
      for (const [bPath, nowhere] of pairs) {
        const res = await api.get(bPath);
        const none = await api.get(nowhere);
        expectError(res, 404, 'NOT_FOUND');
        expect({ status: res.status, text: res.text }, `${who} ${bPath}`).toEqual({
          status: none.status,
          text: none.text,
        });
      }
      const s1 = await api.get('/v1/records/shared/s1');
      expect(s1.body).toMatchObject({ version: 1, data: { owner: 'a', qty: 1 }, updatedBy: 'alice' });
      expect(s1.headers.get('etag')).toBe('"1"');
      const s1History = await api.get('/v1/records/shared/s1/history');
      expect(s1History.body.versions.map((v: Json) => [v.version, v.actor])).toEqual([[1, 'alice']]);

      const list = await api.get('/v1/records/shared?includeDeleted=true');
      expect(list.body.records.map((r: Json) => r.id).sort()).toEqual(['a-only', 's1']);
      expect((await api.get('/v1/records/shared?owner=b')).body).toEqual({ records: [] });
      expect(
        (await api.get('/v1/records/shared?limit=1&after=a-only')).body.records.map((r: Json) => r.id),
      ).toEqual(['s1']);
      const secretList = await api.get('/v1/records/secret?includeDeleted=true');
      const neverList = await api.get('/v1/records/never-used?includeDeleted=true');
      expect(secretList.text).toBe(neverList.text);

      const log = await api.get('/v1/events?limit=1000');
      expect(log.body.head).toBe(3);
      expect(log.body.events.map((e: Json) => e.actor)).toEqual(['alice', 'alice', 'alice']);
      expect((await api.get('/v1/events?type=b_private')).body).toEqual({ events: [], head: 3 });
      expect((await api.get('/v1/events?after=3')).body).toEqual({ events: [], head: 3 });

      const collections = await api.get('/v1/collections');
      expect(collections.status).toBe(200);
      for (const c of collections.body.collections) expect(['lww', undefined]).toContain(c.settings.strategy);
      const shared = await api.get('/v1/collections/shared');
      expect(shared.body).toEqual({ name: 'shared', settings: { strategy: 'lww' } });
      const secret = await api.get('/v1/collections/secret');
      const never = await api.get('/v1/collections/never-used');
      expect(secret.body.settings).toEqual(never.body.settings);

      const conns = await api.get('/v1/connections');
      expect(conns.status).toBe(200);
      expect(conns.body.connections).toEqual([]);

      for (const res of [s1, s1History, list, secretList, log, collections, shared, secret, conns]) {
        expectNoLeak(res.text, `${who}: ${res.text.slice(0, 200)}`);
      }
    }
  });

  it('A’s writes to ids, mids and keys that B uses land in A’s own data and never touch B’s', async () => {
    for (const [who, api] of aClients()) {
      // Deleting a record only B has is the same 404 as deleting one nobody has.
      const del = await api.delete('/v1/records/shared/b-only');
      const delNone = await api.delete('/v1/records/shared/nowhere');
      expectError(del, 404, 'NOT_FOUND');
      expect(del.text, who).toBe(delNone.text);
      const delGone = await api.delete('/v1/records/shared/b-gone');
      expect(delGone.text, who).toBe(delNone.text);
    }

    // PUT with B's version as If-Match: B's record is server_wins at version 3, but A has no such record.
    const put = await aUser.put('/v1/records/shared/b-only', {
      json: { owner: 'a' },
      headers: { 'if-match': '"3"' },
    });
    expect(put.status, put.text).toBe(201);
    expect(put.body).toMatchObject({ version: 1, data: { owner: 'a' } });
    // PATCH of an id B has: upserts in A with only the patch, nothing merged from B.
    const patch = await aUser.patch('/v1/records/secret/x1', { json: { note: 'mine' } });
    expect(patch.status).toBe(201);
    expect(patch.body.data).toEqual({ note: 'mine' });
    // B's Idempotency-Key, B's mid and B's event key are A's to use afresh: no replay of B's results.
    const keyed = await aUser.put('/v1/records/secret/x2', {
      json: { k: 1 },
      headers: { 'idempotency-key': 'b-key-1' },
    });
    expect(keyed.status).toBe(201);
    expect(keyed.headers.get('idempotent-replayed')).toBeNull();
    expect(keyed.body).toMatchObject({ id: 'x2', data: { k: 1 } });

    const batch = await aUser.post('/v1/mutations', {
      json: {
        mutations: [
          { mid: 'b-mid-1', collection: 'shared', id: 'a-batch', op: 'put', data: { owner: 'a' } },
          { mid: 'a-2', collection: 'shared', id: 'b-batch', op: 'increment', data: { n: 1 } },
          { mid: 'a-3', collection: 'shared', id: 'b-gone', op: 'delete' },
          { mid: 'a-4', collection: 'shared', id: 's1', op: 'patch', data: { qty: 2 }, baseVersion: 1 },
        ],
      },
    });
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: Json) => [r.mid, r.status, r.version, r.error?.code])).toEqual([
      ['b-mid-1', 'applied', 1, undefined],
      ['a-2', 'applied', 1, undefined],
      ['a-3', 'rejected', undefined, 'NOT_FOUND'],
      ['a-4', 'applied', 2, undefined],
    ]);
    expect(batch.body.results[1].record.data).toEqual({ n: 1 });

    const event = await aUser.post('/v1/events', {
      json: { type: 'shared_type', payload: { owner: 'a' }, idempotencyKey: 'b-evt-1' },
    });
    expect(event.status).toBe(201);
    expect(event.body.duplicate).toBeUndefined();
    aKeyedEventSeq = event.body.seq;

    // Collection settings: A's admin changes A's own, B keeps its own.
    const settings = await aAdmin.put('/v1/collections/shared', { json: { strategy: 'lww' } });
    expect(settings.status).toBe(200);
    const secretSettings = await aAdmin.put('/v1/collections/secret', {
      json: { schema: { type: 'object', required: ['note'] } },
    });
    expect(secretSettings.status).toBe(200);
    expectError(await aUser.put('/v1/collections/shared', { json: { strategy: 'lww' } }), 403, 'FORBIDDEN');

    for (const res of [put, patch, keyed, batch, event, settings, secretSettings])
      expectNoLeak(res.text, res.text);
    // B sees exactly what it saw before, byte for byte.
    expect(await bState()).toEqual(bBefore);
  });

  it('A’s WebSocket channels (records, filtered records, events:*, snapshots) carry none of B’s data', async () => {
    const ws = await TestWsClient.connect(srv.wsUrl, aToken);
    const channels = [
      'records:shared',
      'records:shared?owner=b',
      'records:shared?owner=a',
      'records:secret',
      'events:*',
      'events:b_private',
      'events:shared_type?source=bfc',
    ];
    for (const channel of channels) {
      const sub = await ws.request({ type: 'subscribe', channel, since: 0 });
      expect(sub.type, JSON.stringify(sub)).toBe('subscribed');
    }
    const snapshots: Record<string, Json> = {};
    for (const channel of ['records:shared', 'records:secret', 'records:shared?owner=b']) {
      // A snapshot subscription on a fresh connection, so the channel name is not already taken.
      const snapWs = await TestWsClient.connect(srv.wsUrl, aToken);
      await snapWs.request({ type: 'subscribe', channel, snapshot: true });
      const snap = await snapWs.waitFor((m) => m.type === 'snapshot' && m.done === true);
      snapshots[channel] = snap;
      expectNoLeak(JSON.stringify(snapWs.messages), channel);
      await snapWs.close();
    }
    expect(snapshots['records:shared'].records.map((r: Json) => r.id).sort()).toEqual([
      'a-batch',
      'a-only',
      'b-batch',
      'b-only',
      's1',
    ]);
    for (const r of snapshots['records:shared'].records) expect(r.data.owner === 'b').toBe(false);
    expect(snapshots['records:shared?owner=b'].records).toEqual([]);
    expect(snapshots['records:secret'].records.map((r: Json) => r.id).sort()).toEqual(['x1', 'x2']);

    // A's own backlog arrives in full; then live writes by B reach A on no channel.
    const aHead = (await aUser.get('/v1/events')).body.head;
    const aRecordEvents = (await aUser.get('/v1/events?limit=1000')).body.events.filter(
      (e: Json) => e.kind === 'record' && e.collection === 'shared',
    );
    await ws.waitForEvents(aRecordEvents.length, 'records:shared');

    await bAdmin.put('/v1/records/shared/live-b', { json: { owner: 'b', mark: B_MARK } });
    await bAdmin.put('/v1/records/secret/live-b', { json: { owner: 'b', mark: B_MARK } });
    await bAdmin.post('/v1/events', { json: { type: 'b_private', payload: { mark: B_MARK } } });
    await bAdmin.post('/v1/events', {
      json: { type: 'shared_type', payload: { mark: B_MARK }, source: 'bfc' },
    });
    // B's events were dispatched when B's writes returned; A's marker writes come after them.
    await aUser.put('/v1/records/shared/marker', { json: { owner: 'a' } });
    await aUser.put('/v1/records/secret/marker', { json: { note: 'm' } });
    const privateSeq = (
      await aUser.post('/v1/events', { json: { type: 'b_private', payload: { owner: 'a' } } })
    ).body.seq;
    const sourcedSeq = (await aUser.post('/v1/events', { json: { type: 'shared_type', source: 'bfc' } })).body
      .seq;
    expect(sourcedSeq).toBe(aHead + 4);
    const arrived = (channel: string, test: (m: Json) => boolean) =>
      ws.waitFor((m) => m.type === 'event' && m.channel === channel && test(m));
    await arrived('records:shared', (m) => m.id === 'marker');
    await arrived('records:secret', (m) => m.id === 'marker');
    await arrived('events:b_private', (m) => m.seq === privateSeq);
    await arrived('events:shared_type?source=bfc', (m) => m.seq === sourcedSeq);
    await arrived('events:*', (m) => m.seq === sourcedSeq);

    expectNoLeak(JSON.stringify(ws.messages), 'A’s WebSocket');
    expect(ws.events('records:shared?owner=b')).toEqual([]);
    const seqs = ws.events('events:*').map((e) => e.seq as number);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));

    // A's WS writes with B's ids and keys stay in A.
    const results: Json = await ws.request({
      type: 'mutate',
      mutations: [
        // A's own earlier write with B's mid, sent again: a duplicate of A's write, not of B's.
        { mid: 'b-mid-1', collection: 'shared', id: 'a-batch', op: 'put', data: { owner: 'a' } },
        { mid: 'ws-2', collection: 'shared', id: 'b-gone', op: 'delete' },
      ],
    });
    expect(results.results.map((r: Json) => r.status)).toEqual(['duplicate', 'rejected']);
    expect(results.results[0].record.id).toBe('a-batch');
    const published = await ws.request({
      type: 'publish',
      event: { type: 'shared_type', idempotencyKey: 'b-evt-1' },
    });
    expect(published).toMatchObject({ type: 'ok', duplicate: true, seq: aKeyedEventSeq });
    expectNoLeak(JSON.stringify(ws.messages), 'A’s WebSocket after writes');

    // A connection cannot switch to another tenant.
    const hello = await ws.request({ type: 'hello', token: bToken });
    expect(hello).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect((await ws.request({ type: 'ping' })).type).toBe('pong');

    // And B's connection saw nothing of A's.
    await bAdmin.put('/v1/records/shared/b-marker', { json: { owner: 'b', mark: B_MARK } });
    await bWs.waitFor((m) => m.type === 'event' && m.id === 'b-marker');
    const bText = JSON.stringify(bWs.messages);
    expect(bText).not.toContain('alice');
    expect(bText).not.toContain('"owner":"a"');
    await ws.close();
  });

  it('GET /v1/connections lists only the caller tenant’s connections', async () => {
    const a1 = await TestWsClient.connect(srv.wsUrl, aToken);
    const a2 = await TestWsClient.connect(srv.wsUrl, aAdminToken);
    const b2 = await TestWsClient.connect(srv.wsUrl, bToken);
    const welcome = (c: TestWsClient): string =>
      (c.messages.find((m) => m.type === 'welcome') as Json).connectionId;
    const aIds = [a1, a2].map(welcome).sort();
    const bIds = [bWs, b2].map(welcome).sort();
    // Connections closed by earlier tests leave the list as soon as the server has seen them close.
    const idsSeenBy = async (api: Client, expected: string[]) => {
      const deadline = Date.now() + 5000;
      for (;;) {
        const res = await api.get('/v1/connections');
        const ids = res.body.connections.map((c: Json) => c.connectionId).sort();
        if (JSON.stringify(ids) === JSON.stringify(expected) || Date.now() > deadline) return res;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const aSees = await idsSeenBy(aUser, aIds);
    expect(aSees.body.connections.map((c: Json) => c.connectionId).sort()).toEqual(aIds);
    expect(aSees.body.connections.map((c: Json) => c.user).sort()).toEqual(['alice', 'alice-admin']);
    const bSees = await idsSeenBy(bAdmin, bIds);
    expect(bSees.body.connections.map((c: Json) => c.connectionId).sort()).toEqual(bIds);
    expectNoLeak(aSees.text, 'connections');
    await Promise.all([a1.close(), a2.close(), b2.close()]);
  });
});

describe.each(kinds)('credentials and tenants (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let bAdmin: Client;

  beforeAll(async () => {
    srv = await startTestServer(kind);
    bAdmin = restClient(srv.url, { apiKey: srv.adminKey, tenant: B });
    await bAdmin.put('/v1/records/shared/b1', { json: { mark: B_MARK } });
    await restClient(srv.url, { apiKey: srv.adminKey, tenant: A }).put('/v1/records/shared/a1', {
      json: { owner: 'a' },
    });
  });
  afterAll(async () => srv?.close());

  it('a tenant API key (made with the admin key, shown once) acts for its tenant only', async () => {
    const created = await rest(srv.url, 'POST', `/v1/tenants/${A}/api-keys`, {
      apiKey: srv.adminKey,
      json: { label: 'backend' },
    });
    expect(created.status, created.text).toBe(201);
    expect(Object.keys(created.body).sort()).toEqual(['id', 'key', 'tenant']);
    expect(created.body.tenant).toBe(A);
    const key: string = created.body.key;
    expect(key.length).toBeGreaterThanOrEqual(32);
    const another = await rest(srv.url, 'POST', `/v1/tenants/${A}/api-keys`, {
      apiKey: srv.adminKey,
      json: {},
    });
    expect(another.status).toBe(201);
    expect(another.body.key).not.toBe(key);
    expect(another.body.id).not.toBe(created.body.id);

    // It mints tokens for its tenant only.
    const minted = await rest(srv.url, 'POST', '/v1/auth/token', {
      apiKey: key,
      json: { tenant: A, user: 'svc' },
    });
    expect(minted.status, minted.text).toBe(200);
    const forB = await rest(srv.url, 'POST', '/v1/auth/token', {
      apiKey: key,
      json: { tenant: B, user: 'svc' },
    });
    expectError(forB, 403, 'FORBIDDEN');
    expect(forB.text).not.toContain('eyJ');
    // The minted token works on REST and WebSocket, as tenant A.
    const viaToken = await rest(srv.url, 'GET', '/v1/records/shared', { token: minted.body.token });
    expect(viaToken.body.records.map((r: Json) => r.id)).toEqual(['a1']);
    const ws = await TestWsClient.connect(srv.wsUrl, minted.body.token);
    expect(ws.messages[0]).toMatchObject({ type: 'welcome', tenant: A, user: 'svc' });
    await ws.close();

    // Over REST with X-Api-Key it is tenant A; an X-Tenant naming another tenant is refused.
    for (const tenant of [undefined, A]) {
      const api = restClient(srv.url, { apiKey: key, tenant });
      const list = await api.get('/v1/records/shared');
      expect(list.body.records.map((r: Json) => r.id)).toEqual(['a1']);
      expectError(await api.get('/v1/records/shared/b1'), 404, 'NOT_FOUND');
    }
    const toB = restClient(srv.url, { apiKey: key, tenant: B });
    expectError(await toB.get('/v1/records/shared/b1'), 403, 'FORBIDDEN');
    expectError(await toB.put('/v1/records/shared/k0', { json: { via: 'key' } }), 403, 'FORBIDDEN');
    const write = await restClient(srv.url, { apiKey: key }).put('/v1/records/shared/k1', {
      json: { via: 'key' },
    });
    expect(write.status).toBe(201);
    expect(
      (await bAdmin.get('/v1/records/shared?includeDeleted=true')).body.records.map((r: Json) => r.id),
    ).toEqual(['b1']);
    expect(
      (await restClient(srv.url, { apiKey: srv.adminKey, tenant: A }).get('/v1/records/shared/k1')).body.data,
    ).toEqual({ via: 'key' });

    // Only the admin key creates keys.
    for (const tenant of [A, B]) {
      expectError(
        await rest(srv.url, 'POST', `/v1/tenants/${tenant}/api-keys`, { apiKey: key, json: {} }),
        403,
        'FORBIDDEN',
      );
    }
    const withJwt = await rest(srv.url, 'POST', `/v1/tenants/${A}/api-keys`, {
      token: minted.body.token,
      json: {},
    });
    expectError(withJwt, 401, 'UNAUTHORIZED');
  });

  it('the admin key needs X-Tenant on data routes, and then acts for that tenant', async () => {
    const noTenant = restClient(srv.url, { apiKey: srv.adminKey });
    for (const [method, path, json] of [
      ['get', '/v1/records/shared', undefined],
      ['get', '/v1/records/shared/b1', undefined],
      ['put', '/v1/records/shared/x', { a: 1 }],
      ['get', '/v1/events', undefined],
      ['post', '/v1/events', { type: 'x' }],
      ['get', '/v1/collections', undefined],
      ['get', '/v1/connections', undefined],
    ] as const) {
      const res = await noTenant[method](path, json === undefined ? {} : { json });
      expectError(res, 400, 'BAD_REQUEST');
      expect(res.body.error.message).toMatch(/X-Tenant/);
    }
    const badTenant = restClient(srv.url, { apiKey: srv.adminKey, tenant: 'not a tenant' });
    expectError(await badTenant.get('/v1/records/shared'), 400, 'BAD_REQUEST');
    expect((await bAdmin.get('/v1/records/shared/b1')).body.data).toEqual({ mark: B_MARK });
    // Nothing was written without a tenant.
    expect((await bAdmin.get('/v1/events')).body.head).toBe(1);
  });

  it('tampered, expired, alg:none, wrong-secret, wrong-claim and wrong-scheme tokens get 401', async () => {
    const good = await srv.token(A, 'mallory');
    const secret = new TextEncoder().encode(TEST_JWT_SECRET);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const [header, payload, signature] = good.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const now = Math.floor(Date.now() / 1000);
    const sign = (body: Record<string, unknown>, key = secret) =>
      new SignJWT(body).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(key);

    const bad: Array<[string, string]> = [
      ['tampered tenant', `${header}.${b64({ ...claims, tenant: B })}.${signature}`],
      ['tampered roles', `${header}.${b64({ ...claims, roles: ['admin'] })}.${signature}`],
      ['truncated signature', `${header}.${payload}.${signature.slice(0, -4)}`],
      ['no signature', `${header}.${payload}.`],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, tenant: B })}.`],
      ['alg none (A)', `${b64({ alg: 'none' })}.${payload}.`],
      [
        'expired',
        await sign({
          tenant: A,
          sub: 'mallory',
          roles: [],
          iss: 'syncbridge',
          iat: now - 7200,
          exp: now - 3600,
        }),
      ],
      [
        'wrong secret',
        await sign(
          { tenant: B, sub: 'mallory', roles: ['admin'], iss: 'syncbridge', exp: now + 3600 },
          new TextEncoder().encode('another-secret-0123456789abcdef0123456789'),
        ),
      ],
      ['no tenant claim', await sign({ sub: 'mallory', iss: 'syncbridge', exp: now + 3600 })],
      ['bad tenant claim', await sign({ tenant: 'a/b', sub: 'mallory', iss: 'syncbridge', exp: now + 3600 })],
      ['no subject', await sign({ tenant: A, iss: 'syncbridge', exp: now + 3600 })],
      ['other issuer', await sign({ tenant: A, sub: 'mallory', iss: 'elsewhere', exp: now + 3600 })],
      [
        'HS512',
        await new SignJWT({ tenant: A, sub: 'm', iss: 'syncbridge' })
          .setProtectedHeader({ alg: 'HS512' })
          .sign(secret),
      ],
      ['not a jwt', 'hello'],
      ['garbage segments', 'a.b.c'],
      ['non-json header', `${Buffer.from('not json').toString('base64url')}.${payload}.${signature}`],
    ];
    for (const [what, token] of bad) {
      const res = await rest(srv.url, 'GET', '/v1/records/shared', { token });
      expect(res.status, `${what}: ${res.text}`).toBe(401);
      expectError(res, 401, 'UNAUTHORIZED');
      expect(res.text).not.toContain(B_MARK);
      // The WebSocket upgrade is refused the same way.
      const refused = await upgradeRefusal(`${srv.wsUrl}?token=${encodeURIComponent(token)}`);
      expect(refused?.status, what).toBe(401);
    }
    for (const authorization of [
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      `Token ${good}`,
      good,
      `bearer${good}`,
    ]) {
      const res = await rest(srv.url, 'GET', '/v1/records/shared', { headers: { authorization } });
      expectError(res, 401, 'UNAUTHORIZED');
    }
    // A bad token in hello: error UNAUTHORIZED, then close 1008.
    const ws = await TestWsClient.connect(srv.wsUrl);
    const answer = await ws.request({ type: 'hello', token: bad[0]![1] });
    expect(answer).toMatchObject({ type: 'error', code: 'UNAUTHORIZED' });
    expect(await ws.waitForClose()).toBe(1008);

    // The good token still works, and the tampering changed nothing in B.
    expect((await rest(srv.url, 'GET', '/v1/records/shared', { token: good })).status).toBe(200);
    expect((await bAdmin.get('/v1/events')).body.head).toBe(1);
  });
});
