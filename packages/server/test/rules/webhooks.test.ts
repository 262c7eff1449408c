/**
 * Webhooks under access rules, on both stores: an endpoint is a platform-level subscriber registered by a
 * tenant admin, so it receives every record change of the tenant whatever the rules (the admin view, as
 * docs/access-rules.md says); no route that shows endpoints, deliveries or payloads answers a user the
 * rules restrict, so a clerk of wh-1 never sees a wh-2 record through them. A platform token sees only its
 * own platform's pending list (no payloads), and an admin sees everything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, storeKinds, type TestServer } from '../helpers/server.ts';
import { expectError, restClient } from '../http/rest.ts';
import { eventually, Receiver } from '../webhooks/receiver.ts';
import { adminClient, deliveries, register, startWebhookServer } from '../webhooks/support.ts';

const kinds = await storeKinds();
const T = 'inventory';
const STOCK_RULES = {
  read: "auth.roles.exists(r, r == 'manager') || record.locationId in auth.claims.locations",
  write: 'record.locationId in auth.claims.locations',
  create: 'next.locationId in auth.claims.locations',
};

describe.each(kinds)('webhooks under access rules (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let receiver: Receiver;
  let hookId: string;
  let deliveryId: string;

  beforeAll(async () => {
    srv = await startWebhookServer(kind);
    receiver = await Receiver.start();
    const admin = adminClient(srv, T);
    expect((await admin.put('/v1/collections/stock_levels', { json: { rules: STOCK_RULES } })).status).toBe(
      200,
    );
    const hook = await register(admin, { platform: 'erp', url: receiver.url, eventTypes: ['record.*'] });
    hookId = hook.id;
    const wh1 = restClient(srv.url, {
      token: await srv.token(T, 'clerk1', { claims: { locations: ['wh-1'] } }),
    });
    const wh2 = restClient(srv.url, {
      token: await srv.token(T, 'clerk2', { claims: { locations: ['wh-2'] } }),
    });
    expect(
      (await wh1.put('/v1/records/stock_levels/s1', { json: { locationId: 'wh-1', qty: 1 } })).status,
    ).toBe(201);
    expect(
      (await wh2.put('/v1/records/stock_levels/s2', { json: { locationId: 'wh-2', qty: 2 } })).status,
    ).toBe(201);
  });
  afterAll(async () => {
    await receiver?.close();
    await srv?.close();
  });

  it('delivers every record change to an endpoint an admin registered, whatever the rules', async () => {
    await eventually(() => expect(receiver.requests.length).toBeGreaterThanOrEqual(2));
    const bodies = receiver.requests.map((r) => r.body).join();
    expect(bodies).toContain('wh-1');
    expect(bodies).toContain('wh-2');
    const list = await deliveries(adminClient(srv, T), hookId);
    expect(list.length).toBe(2);
    deliveryId = list[0].id;
  });

  it('answers a clerk FORBIDDEN on every route that shows endpoints, deliveries or payloads', async () => {
    const clerk = restClient(srv.url, {
      token: await srv.token(T, 'clerk1', { claims: { locations: ['wh-1'] } }),
    });
    const refused: [string, string][] = [
      ['get', '/v1/webhooks'],
      ['get', `/v1/webhooks/${hookId}`],
      ['get', `/v1/webhooks/${hookId}/deliveries`],
      ['get', `/v1/webhooks/${hookId}/deliveries/${deliveryId}`],
      ['post', `/v1/webhooks/${hookId}/deliveries/${deliveryId}/retry`],
      ['post', `/v1/webhooks/${hookId}/replay`],
      ['get', '/v1/sync/pending'],
    ];
    for (const [method, path] of refused) {
      const call = method === 'get' ? clerk.get : clerk.post;
      const res = await call(path, method === 'post' ? { json: { since: '2020-01-01T00:00:00Z' } } : {});
      expectError(res, 403, 'FORBIDDEN');
      expect(res.text, path).not.toContain('wh-2');
    }
    // What every user may see of the webhooks are counts, never records.
    const health = await clerk.get('/v1/sync/health');
    expect(health.status, health.text).toBe(200);
    expect(health.text).not.toContain('wh-2');
  });

  it("shows a platform token its own platform's pending list only, and no payloads", async () => {
    const mint = async (user: string, platform: string) =>
      (await srv.server.tokens.mint({ tenant: T, user, platform })).token;
    const erp = restClient(srv.url, { token: await mint('erp-bot', 'erp') });
    const other = restClient(srv.url, { token: await mint('crm-bot', 'crm') });
    const own = await erp.get('/v1/sync/pending');
    expect(own.status, own.text).toBe(200);
    expect(own.text).not.toContain('wh-2');
    expectError(await other.get('/v1/sync/pending?platform=erp'), 403, 'FORBIDDEN');
    expectError(await erp.get(`/v1/webhooks/${hookId}/deliveries`), 403, 'FORBIDDEN');
  });

  it('shows an admin the deliveries and their payloads', async () => {
    const admin = adminClient(srv, T);
    const one = await admin.get(`/v1/webhooks/${hookId}/deliveries/${deliveryId}`);
    expect(one.status, one.text).toBe(200);
    expect((await admin.get('/v1/sync/pending')).status).toBe(200);
  });
});
