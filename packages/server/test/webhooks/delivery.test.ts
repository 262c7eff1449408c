/**
 * Outbound webhooks end to end, on every store: registration, signed deliveries that verify with the
 * standardwebhooks library and with scenario 1's hex HMAC, event type wildcards and platform routing,
 * ordered delivery, counters and the delivery log, and what the API shows (masked secrets, admins only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, storeKinds, type TestServer } from '../helpers/server.ts';
import { expectError, restClient } from '../http/rest.ts';
import { eventually, Receiver } from './receiver.ts';
import {
  type Admin,
  adminClient,
  deliveries,
  publish,
  register,
  startWebhookServer,
  verifySignatures,
} from './support.ts';

const kinds = await storeKinds();

describe.each(kinds)('outbound webhooks (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let receiver: Receiver;
  beforeAll(async () => {
    srv = await startWebhookServer(kind);
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await receiver?.close();
    await srv?.close();
  });

  it('registers an endpoint, shows its secret once, and delivers a signed event that both schemes verify', async () => {
    const api = adminClient(srv, 'bank');
    const hook = await register(api, {
      name: 'BFC Trade Notifications',
      platform: 'bfc',
      url: receiver.url,
      eventTypes: ['trade_opened', 'trade_closed', 'balance_changed'],
      secretKey: 'webhook_secret_key_here',
      description: 'trades for the bank',
      headers: { 'X-Team': 'treasury' },
    });
    expect(hook).toMatchObject({
      name: 'BFC Trade Notifications',
      platform: 'bfc',
      status: 'active',
      delivery: 'parallel',
      secret: 'webhook_secret_key_here',
      totalCalls: 0,
      failedCalls: 0,
    });
    const shown = await api.get(`/v1/webhooks/${hook.id}`);
    expect(shown.body.secret).not.toContain('webhook_secret_key');
    expect(shown.text).not.toContain('webhook_secret_key_here');

    const before = receiver.requests.length;
    const { eventId, seq } = await publish(
      api,
      'trade_closed',
      { symbol: 'NIFTY', pnl: 5000, exitPrice: 22500 },
      {
        source: 'vyomo',
        target: 'bfc',
        priority: 1,
      },
    );
    const [req] = (await receiver.waitFor(before + 1)).slice(before);
    expect(req!.method).toBe('POST');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['x-team']).toBe('treasury');
    expect(req!.headers['webhook-id']).toBe(eventId);
    const body = verifySignatures(req!, 'webhook_secret_key_here');
    expect(body).toMatchObject({
      id: eventId,
      type: 'trade_closed',
      seq,
      tenant: 'bank',
      source: 'vyomo',
      target: 'bfc',
      priority: 1,
      data: { symbol: 'NIFTY', pnl: 5000, exitPrice: 22500 },
    });

    const [delivery] = await eventually(async () => {
      const list = await deliveries(api, hook.id);
      return list[0]?.status === 'success' ? list : undefined;
    });
    expect(delivery).toMatchObject({
      eventId,
      eventType: 'trade_closed',
      seq,
      url: receiver.url,
      status: 'success',
      attempts: 1,
      retryCount: 0,
      responseStatus: 200,
      platform: 'bfc',
    });
    expect(Date.parse(delivery.deliveredAt)).toBeGreaterThanOrEqual(Date.parse(delivery.createdAt));
    const counters = await eventually(async () => {
      const res = await api.get(`/v1/webhooks/${hook.id}`);
      return res.body.totalCalls === 1 ? res.body : undefined;
    });
    expect(counters).toMatchObject({ totalCalls: 1, failedCalls: 0, consecutiveFailures: 0 });
    expect(counters.lastTriggered).not.toBeNull();
  });

  it('a generated whsec_ secret verifies with the standardwebhooks library as is', async () => {
    const api = adminClient(srv, 'gen');
    const r = await Receiver.start();
    try {
      const hook = await register(api, { url: r.url, eventTypes: ['ping'] });
      expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
      await publish(api, 'ping', { n: 1 });
      const [req] = await r.waitFor(1);
      expect(verifySignatures(req!, hook.secret)).toMatchObject({ type: 'ping', data: { n: 1 } });
      // A bare rotate generates the next secret; it is shown once, then masked.
      const rotated = await api.post(`/v1/webhooks/${hook.id}/rotate-secret`);
      expect(rotated.status, rotated.text).toBe(200);
      expect(rotated.body.secret).toMatch(/^whsec_/);
      expect(rotated.body.secret).not.toBe(hook.secret);
      expect((await api.get(`/v1/webhooks/${hook.id}`)).body.secret).toBe(
        `whsec_…${rotated.body.secret.slice(-4)}`,
      );
    } finally {
      await r.close();
    }
  });

  it('matches event types with wildcards and routes by platform', async () => {
    const api = adminClient(srv, 'routes');
    const trades = await Receiver.start();
    const everything = await Receiver.start();
    const records = await Receiver.start();
    try {
      await register(api, { platform: 'bfc', url: trades.url, eventTypes: ['trade_*'] });
      await register(api, { url: everything.url, eventTypes: ['*'] });
      await register(api, { url: records.url, eventTypes: ['record.orders.*'] });
      await publish(api, 'trade_opened', { id: 1 }, { source: 'vyomo' });
      await publish(api, 'trade_closed', { id: 2 }, { source: 'bfc' }); // bfc's own: not echoed back
      await publish(api, 'trade_closed', { id: 3 }, { source: 'vyomo', target: 'other' }); // not for bfc
      await publish(api, 'balance_changed', { id: 4 });
      const put = await api.put('/v1/records/orders/o1', { json: { qty: 2 } });
      expect(put.status, put.text).toBeLessThan(300);

      await everything.waitFor(5);
      await records.waitFor(1);
      await trades.waitFor(1);
      // Everything was delivered in parallel; compare as sets, then check the record change's shape.
      expect(
        everything
          .bodies()
          .map((b) => b.type)
          .sort(),
      ).toEqual(
        ['balance_changed', 'record.orders.put', 'trade_closed', 'trade_closed', 'trade_opened'].sort(),
      );
      expect(records.bodies()[0]).toMatchObject({
        type: 'record.orders.put',
        data: { collection: 'orders', id: 'o1', op: 'put', version: 1, data: { qty: 2 } },
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(trades.bodies().map((b) => (b.data as { id: number }).id)).toEqual([1]);
    } finally {
      await Promise.all([trades.close(), everything.close(), records.close()]);
    }
  });

  it('an ordered endpoint receives one delivery at a time, in seq order, even across failures', async () => {
    const api = adminClient(srv, 'ordered');
    let inFlight = 0;
    let maxInFlight = 0;
    const r = await Receiver.start((_req, i) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight -= 1;
      }, 20);
      // The third request fails once: the next ones must wait for its retry.
      return { status: i === 2 ? 500 : 200, delayMs: 20 };
    });
    try {
      await register(api, { url: r.url, eventTypes: ['step'], delivery: 'ordered' });
      const seqs: number[] = [];
      for (let i = 0; i < 8; i++) seqs.push((await publish(api, 'step', { i })).seq);
      await r.waitFor(9);
      const got = r.bodies().map((b) => b.seq);
      expect(got).toEqual([seqs[0], seqs[1], seqs[2], seqs[2], ...seqs.slice(3)]);
      expect(maxInFlight).toBe(1);
    } finally {
      await r.close();
    }
  });

  it('a parallel endpoint never has more than maxConcurrency requests open; a burst arrives once each', async () => {
    const api = adminClient(srv, 'burst');
    let inFlight = 0;
    let maxInFlight = 0;
    const r = await Receiver.start(() => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight -= 1;
      }, 30);
      return { status: 200, delayMs: 30 };
    });
    try {
      const hook = await register(api, { url: r.url, eventTypes: ['burst'], maxConcurrency: 3 });
      // Concurrent publishes: commits that carry several deliveries each, more than the endpoint's room.
      const published = await Promise.all(Array.from({ length: 24 }, (_, i) => publish(api, 'burst', { i })));
      await r.waitFor(24);
      const ids = r.requests.map((q) => q.headers['webhook-id']);
      expect(new Set(ids).size).toBe(24);
      expect(new Set(ids)).toEqual(new Set(published.map((p) => p.eventId)));
      expect(maxInFlight).toBeLessThanOrEqual(3);
      const rows = await eventually(async () => {
        const list = await deliveries(api, hook.id, '?limit=100');
        return list.length === 24 && list.every((d) => d.status === 'success') && list;
      });
      expect(rows.map((d) => d.attempts)).toEqual(new Array(24).fill(1));
      expect(r.requests.length).toBe(24);
    } finally {
      await r.close();
    }
  });

  it("is for tenant admins only, and a tenant never sees another tenant's endpoints", async () => {
    const a = adminClient(srv, 'tenant-a');
    const hook = await register(a, { url: receiver.url, eventTypes: ['x'] });
    const user = restClient(srv.url, { token: await srv.token('tenant-a', 'alice') });
    expectError(await user.get('/v1/webhooks'), 403, 'FORBIDDEN');
    expectError(
      await user.post('/v1/webhooks', { json: { name: 'n', url: receiver.url, eventTypes: ['*'] } }),
      403,
      'FORBIDDEN',
    );
    const b = adminClient(srv, 'tenant-b');
    expect((await b.get('/v1/webhooks')).body.webhooks).toEqual([]);
    expectError(await b.get(`/v1/webhooks/${hook.id}`), 404, 'NOT_FOUND');
    expectError(await b.delete(`/v1/webhooks/${hook.id}`), 404, 'NOT_FOUND');
    const anon = await restClient(srv.url, {}).get('/v1/webhooks');
    expectError(anon, 401, 'UNAUTHORIZED');
  });

  it('validates registrations: URL scheme, reserved headers, secrets, event type patterns', async () => {
    const api = adminClient(srv, 'validation');
    const bad = async (body: Record<string, unknown>) =>
      expectError(
        await api.post('/v1/webhooks', {
          json: { name: 'n', eventTypes: ['*'], url: receiver.url, ...body },
        }),
        400,
        'BAD_REQUEST',
      );
    await bad({ url: 'ftp://example.com/x' });
    await bad({ url: 'not a url' });
    await bad({ headers: { 'webhook-signature': 'forged' } });
    await bad({ secret: 'short' });
    await bad({ secret: 'whsec_%%%' });
    await bad({ eventTypes: ['bad type'] });
    await bad({ eventTypes: [] });
    await bad({ delivery: 'sometimes' });
  });

  it('lists, filters, updates, pauses and deletes endpoints', async () => {
    const api: Admin = adminClient(srv, 'crud');
    const one = await register(api, { name: 'one', platform: 'bfc', url: receiver.url });
    const two = await register(api, { name: 'two', platform: 'vyomo', url: receiver.url });
    const list = await api.get('/v1/webhooks?platform=bfc');
    expect(list.body.webhooks.map((w: { id: string }) => w.id)).toEqual([one.id]);
    const patched = await api.patch(`/v1/webhooks/${two.id}`, {
      json: { eventTypes: ['a_*'], rateLimit: 5 },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toMatchObject({ eventTypes: ['a_*'], rateLimit: 5, name: 'two' });
    const paused = await api.put(`/v1/webhooks/${two.id}/status`, { json: { status: 'paused' } });
    expect(paused.body.status).toBe('paused');
    expect(
      (await api.get('/v1/webhooks?status=paused')).body.webhooks.map((w: { id: string }) => w.id),
    ).toEqual([two.id]);
    expect((await api.delete(`/v1/webhooks/${one.id}`)).status).toBe(204);
    expectError(await api.get(`/v1/webhooks/${one.id}`), 404, 'NOT_FOUND');
  });

  it('a paused endpoint queues its deliveries and sends them when it is resumed', async () => {
    const api = adminClient(srv, 'pause');
    const r = await Receiver.start();
    try {
      const hook = await register(api, { url: r.url, eventTypes: ['e'], status: 'paused' });
      await publish(api, 'e', { n: 1 });
      await publish(api, 'e', { n: 2 });
      await new Promise((res) => setTimeout(res, 400));
      expect(r.requests.length).toBe(0);
      expect((await deliveries(api, hook.id)).map((d) => d.status)).toEqual(['pending', 'pending']);
      await api.put(`/v1/webhooks/${hook.id}/status`, { json: { status: 'active' } });
      await r.waitFor(2);
      expect(
        r
          .bodies()
          .map((b) => (b.data as { n: number }).n)
          .sort(),
      ).toEqual([1, 2]);
    } finally {
      await r.close();
    }
  });

  it('rotating the secret signs with both secrets during the overlap, then with the new one alone', async () => {
    const api = adminClient(srv, 'rotate');
    const r = await Receiver.start();
    try {
      const hook = await register(api, { url: r.url, eventTypes: ['e'], secret: 'old-secret-0001' });
      const rotated = await api.post(`/v1/webhooks/${hook.id}/rotate-secret`, {
        json: { secret: 'new-secret-0002', overlapSeconds: 60 },
      });
      expect(rotated.status, rotated.text).toBe(200);
      expect(rotated.body.secret).toBe('new-secret-0002');
      expect(rotated.body.previousSecretExpiresAt).not.toBeNull();
      await publish(api, 'e', { n: 1 });
      const [req] = await r.waitFor(1);
      // A receiver still on the old secret and one already on the new one both accept it.
      verifySignatures(req!, 'old-secret-0001');
      verifySignatures(req!, 'new-secret-0002');
      expect(String(req!.headers['webhook-signature']).split(' ')).toHaveLength(2);

      await api.post(`/v1/webhooks/${hook.id}/rotate-secret`, {
        json: { secret: 'newer-secret-03', overlapSeconds: 0 },
      });
      await publish(api, 'e', { n: 2 });
      const [, second] = await r.waitFor(2);
      verifySignatures(second!, 'newer-secret-03');
      expect(() => verifySignatures(second!, 'new-secret-0002')).toThrow();
    } finally {
      await r.close();
    }
  });
});
