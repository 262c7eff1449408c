/**
 * Access rules on audit events and `events:` channels, on both stores: `syncbridge.conflict_resolved`
 * names a record, so under a read rule it reaches (over `GET /v1/events`, a live `events:` channel and an
 * `events:` backlog) only its actor and admins; a user of the same tenant never learns of it. Domain
 * events users publish pass unchanged, and record changes never ride on `events:` channels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'private-docs';
const AUDIT = 'syncbridge.conflict_resolved';

describe.each(kinds)('audit events under access rules (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: ReturnType<typeof restClient>;
  let alice: ReturnType<typeof restClient>;
  let bob: ReturnType<typeof restClient>;
  let bobLive: TestWsClient;
  let rootLive: TestWsClient;
  const clients: TestWsClient[] = [];

  beforeAll(async () => {
    srv = await startTestServer(kind);
    admin = restClient(srv.url, { token: await srv.token(T, 'root', { roles: ['admin'] }) });
    const rules = { read: 'record.ownerId == auth.user' };
    expect(
      (await admin.put('/v1/collections/documents', { json: { strategy: 'manual', rules } })).status,
    ).toBe(200);
    alice = restClient(srv.url, { token: await srv.token(T, 'alice') });
    const bobToken = await srv.token(T, 'bob');
    bob = restClient(srv.url, { token: bobToken });
    bobLive = await TestWsClient.connect(srv.wsUrl, bobToken);
    rootLive = await TestWsClient.connect(srv.wsUrl, await srv.token(T, 'root', { roles: ['admin'] }));
    clients.push(bobLive, rootLive);
    for (const c of clients) await c.request({ type: 'subscribe', channel: 'events:*' });

    await alice.put('/v1/records/documents/secret-plan', { json: { ownerId: 'alice', v: 1 } });
    await alice.put('/v1/records/documents/secret-plan', { json: { ownerId: 'alice', v: 2 } });
    const stale = await alice.put('/v1/records/documents/secret-plan', {
      json: { ownerId: 'alice', v: 3 },
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status, stale.text).toBe(409);
    const resolved = await alice.post(`/v1/conflicts/${stale.body.error.details.conflictId}/resolve`, {
      json: { resolution: 'accept_server' },
    });
    expect(resolved.status, resolved.text).toBe(200);
    const published = await bob.post('/v1/events', { json: { type: 'note', payload: { hello: 1 } } });
    expect(published.status, published.text).toBe(201);
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await srv?.close();
  });

  const types = (events: { type?: string; eventType?: string }[]) => events.map((e) => e.eventType ?? e.type);

  it('shows the audit event to its actor and admins over GET /v1/events, never to another user', async () => {
    const forBob = await bob.get('/v1/events?kind=event');
    expect(types(forBob.body.events)).toEqual(['note']);
    expect(forBob.text).not.toContain('secret-plan');
    const forAlice = await alice.get('/v1/events?kind=event');
    expect(types(forAlice.body.events)).toEqual([AUDIT, 'note']);
    // Admins also see the server's notice of the rule change (users' subscriptions get `reset` instead).
    const forRoot = await admin.get('/v1/events?kind=event');
    expect(types(forRoot.body.events)).toEqual(['syncbridge.rules_changed', AUDIT, 'note']);
  });

  it('leaves the audit event out of live events: channels and their backlog for another user', async () => {
    await rootLive.waitForEvents(2, 'events:*');
    await bobLive.waitForEvents(1, 'events:*');
    expect(types(rootLive.events('events:*') as never)).toEqual([AUDIT, 'note']);
    expect(types(bobLive.events('events:*') as never)).toEqual(['note']);
    const again = await TestWsClient.connect(srv.wsUrl, await srv.token(T, 'bob'));
    clients.push(again);
    await again.request({ type: 'subscribe', channel: `events:${AUDIT}`, since: 0 });
    await again.request({ type: 'subscribe', channel: 'events:*', since: 0 });
    await again.waitForEvents(1, 'events:*');
    expect(types(again.events() as never)).toEqual(['note']);
    for (const m of [...bobLive.messages, ...again.messages])
      expect(JSON.stringify(m)).not.toContain('secret-plan');
  });
});
