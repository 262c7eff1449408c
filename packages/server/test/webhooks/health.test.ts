/**
 * Per-platform sync health and statistics on every store: what each platform's team sees at a glance
 * (pending, failed, in flight, lag percentiles, last success, a status), the pending events, "retry now",
 * and the statistics of a period.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, storeKinds, type TestServer } from '../helpers/server.ts';
import { expectError, type Json, restClient } from '../http/rest.ts';
import { eventually, Receiver } from './receiver.ts';
import { adminClient, deliveries, publish, register, startWebhookServer } from './support.ts';

const kinds = await storeKinds();

describe.each(kinds)('sync health and statistics (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const receivers: Receiver[] = [];
  beforeAll(async () => {
    // One retry, 30 s after the first failure: long enough that only "retry now" brings it forward.
    srv = await startWebhookServer(kind, { webhookRetrySchedule: '30s', webhookDisableAfterFailures: 0 });
  });
  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await srv?.close();
  });

  it('shows each platform: delivered, paused with a backlog, failing with dead letters; retry now; stats', async () => {
    const api = adminClient(srv, 'health');
    const ok = await Receiver.start();
    const broken = await Receiver.start(() => ({ status: 500 }));
    const later = await Receiver.start();
    receivers.push(ok, broken, later);
    const vyomo = await register(api, { platform: 'vyomo', url: ok.url, eventTypes: ['to_vyomo'] });
    const bfc = await register(api, { platform: 'bfc', url: broken.url, eventTypes: ['to_bfc'] });
    const powens = await register(api, {
      platform: 'powens',
      url: later.url,
      eventTypes: ['to_powens'],
      status: 'paused',
    });

    for (let i = 0; i < 3; i++) await publish(api, 'to_vyomo', { i });
    await publish(api, 'to_bfc', { i: 0 });
    await publish(api, 'to_powens', { i: 0 });
    await publish(api, 'to_powens', { i: 1 });
    await ok.waitFor(3);
    await broken.waitFor(1);
    await eventually(async () =>
      (await deliveries(api, vyomo.id)).every((d) => d.status === 'success') &&
      (await deliveries(api, bfc.id))[0]?.attempts === 1 &&
      !(await deliveries(api, bfc.id))[0]?.inFlight
        ? true
        : undefined,
    );

    const health = async (): Promise<Record<string, Json>> => {
      const res = await api.get('/v1/sync/health');
      expect(res.status, res.text).toBe(200);
      return Object.fromEntries(res.body.health.map((h: Json) => [h.platform, h]));
    };
    let h = await health();
    expect(h.vyomo).toMatchObject({
      status: 'active',
      webhooks: 1,
      pendingEvents: 0,
      failedEvents: 0,
      inFlight: 0,
    });
    expect(h.vyomo.lastSyncAt).not.toBeNull();
    expect(h.vyomo.lagP50Ms).toBeGreaterThanOrEqual(0);
    expect(h.vyomo.lagP50Ms).toBeLessThanOrEqual(h.vyomo.lagP95Ms);
    expect(h.vyomo.lagP95Ms).toBeLessThanOrEqual(h.vyomo.lagMaxMs);
    expect(h.vyomo.syncLagMs).toBe(h.vyomo.lagP50Ms);
    expect(h.bfc).toMatchObject({ status: 'degraded', pendingEvents: 1, failedEvents: 0, lastSyncAt: null });
    expect(h.powens).toMatchObject({ status: 'paused', pendingEvents: 2, lagP50Ms: null });

    const pending = await api.get('/v1/sync/pending?platform=powens');
    expect(pending.body.count).toBe(2);
    expect(pending.body.events.map((e: Json) => e.eventType)).toEqual(['to_powens', 'to_powens']);
    expect(pending.body.events[0]).toMatchObject({ platform: 'powens', webhookId: powens.id, attempts: 0 });
    expect((await api.get('/v1/sync/pending')).body.count).toBe(3);

    // bfc's retry is 30 s away; "retry now" sends it at once, and it becomes a dead letter.
    const trigger = await api.post('/v1/sync/trigger', { json: { platform: 'bfc' } });
    expect(trigger.body).toEqual({ triggered: 1, message: 'Triggered sync for 1 pending events' });
    // Without a body: every platform (powens's two are pending, but paused, so they stay queued).
    expect((await api.post('/v1/sync/trigger')).body.triggered).toBeGreaterThanOrEqual(2);
    await broken.waitFor(2, 5_000);
    h = await eventually(async () => {
      const now = await health();
      return now.bfc.failedEvents === 1 ? now : undefined;
    });
    expect(h.bfc).toMatchObject({ status: 'degraded', pendingEvents: 0, failedEvents: 1 });

    const stats = await api.get('/v1/stats?days=1');
    expect(stats.status, stats.text).toBe(200);
    expect(stats.body.days).toBe(1);
    expect(stats.body.stats).toMatchObject({
      completedEvents: 3,
      failedEvents: 1,
      pendingEvents: 2,
      successRate: '75.00',
    });
    expect(stats.body.stats.maxSyncTimeMs).toBeGreaterThanOrEqual(stats.body.stats.avgSyncTimeMs);
    const byPlatform = Object.fromEntries(stats.body.platforms.map((p: Json) => [p.platform, p.stats]));
    expect(byPlatform.vyomo).toMatchObject({ completedEvents: 3, failedEvents: 0, successRate: '100.00' });
    expect(byPlatform.bfc).toMatchObject({
      completedEvents: 0,
      failedEvents: 1,
      successRate: '0.00',
      avgSyncTimeMs: null,
    });
    expect((await api.get('/v1/stats?platform=powens')).body.stats).toMatchObject({
      pendingEvents: 2,
      successRate: null,
    });
  });

  it('every user of the tenant sees health and stats; pending and trigger are for admins', async () => {
    const user = restClient(srv.url, { token: await srv.token('health', 'teller') });
    expect((await user.get('/v1/sync/health')).status).toBe(200);
    expect((await user.get('/v1/stats')).status).toBe(200);
    expectError(await user.get('/v1/sync/pending'), 403, 'FORBIDDEN');
    expectError(await user.post('/v1/sync/trigger', { json: {} }), 403, 'FORBIDDEN');
    // Another tenant sees nothing of this one.
    const other = adminClient(srv, 'elsewhere');
    expect((await other.get('/v1/sync/health')).body.health).toEqual([]);
    expect((await other.get('/v1/stats')).body.stats.completedEvents).toBe(0);
  });
});
