/**
 * The webhook ledger conformance suite: the worker step's behaviour (claims, attempts, counters,
 * disabling) over every store's primitives, run against each of them (ledger.test.ts) so a driver
 * cannot drift from the others. `open` gives a migrated store on a fresh database and its cleanup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LedgerStore, WebhookLedger } from '../../src/webhooks/ledger.ts';
import type {
  AttemptResult,
  DeliveryRow,
  NewDelivery,
  WebhookEndpoint,
  WebhookStore,
} from '../../src/webhooks/types.ts';

export interface LedgerFixture {
  store: WebhookStore & LedgerStore;
  cleanup: () => Promise<void>;
}

let counter = 0;
const fresh = (label: string) => `${label}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

function endpoint(tenant: string, id: string, extra: Partial<WebhookEndpoint> = {}): WebhookEndpoint {
  return {
    tenant,
    id,
    name: id,
    platform: null,
    url: 'https://example.com/hook',
    description: null,
    eventTypes: ['*'],
    headers: {},
    delivery: 'parallel',
    rateLimit: null,
    maxConcurrency: 10,
    secrets: [{ secret: 'whsec_test' }],
    status: 'active',
    statusReason: null,
    totalCalls: 0,
    failedCalls: 0,
    consecutiveFailures: 0,
    lastTriggeredAt: null,
    lastSuccessAt: null,
    lastFailureAt: null,
    createdAt: 1,
    updatedAt: 1,
    ...extra,
  };
}

function deliveries(tenant: string, webhookId: string, seqs: number[]): NewDelivery[] {
  return seqs.map((seq) => ({
    id: `${webhookId}-d${seq}`,
    tenant,
    webhookId,
    eventId: `e${seq}`,
    seq,
    eventType: 'order.created',
    platform: null,
    priority: null,
    body: JSON.stringify({ seq }),
    createdAt: 0,
  }));
}

function result(
  row: DeliveryRow,
  status: number,
  now: number,
  extra: Partial<AttemptResult> = {},
): AttemptResult {
  const success = status >= 200 && status < 300;
  return {
    deliveryId: row.id,
    tenant: row.tenant,
    webhookId: row.webhookId,
    attempt: row.attempts,
    startedAt: now - 5,
    durationMs: 5,
    statusCode: status,
    error: success ? null : `HTTP ${status}`,
    responseBody: null,
    success,
    next: success ? { status: 'success' } : { status: 'pending', at: now + 1000 },
    countsAsFailure: !success && status !== 429,
    ...extra,
  };
}

export function runLedgerConformance(name: string, open: () => Promise<LedgerFixture>): void {
  describe(`webhook ledger (${name})`, () => {
    let fx: LedgerFixture;
    let ledger: WebhookLedger;
    const now = 1_000_000;
    const step = (input: Partial<Parameters<WebhookLedger['cycle']>[0]>) =>
      ledger.cycle({
        results: [],
        claims: [],
        now,
        leaseUntil: now + 30_000,
        node: 'n1',
        disableAfter: 0,
        ...input,
      });

    beforeAll(async () => {
      fx = await open();
      ledger = new WebhookLedger(fx.store);
    });
    afterAll(async () => fx?.cleanup());

    async function setUp(seqs: number[], extra: Partial<WebhookEndpoint> = {}) {
      const tenant = fresh('t');
      const id = fresh('w');
      await fx.store.insertEndpoint(endpoint(tenant, id, extra));
      await fx.store.replay({ deliveries: deliveries(tenant, id, seqs), now, onlyFailed: false });
      return { tenant, id };
    }

    it('leases due deliveries lowest seq first, up to the limit, and not again while the lease holds', async () => {
      const { tenant, id } = await setUp([3, 1, 2]);
      const claim = { tenant, webhookId: id, ordered: false, limit: 2 };
      const first = await step({ claims: [claim] });
      expect(first.claimed.map((d) => d.seq)).toEqual([1, 2]);
      expect(first.claimed.every((d) => d.attempts === 1 && d.lockedBy === 'n1')).toBe(true);
      const second = await step({ claims: [{ ...claim, limit: 10 }] });
      expect(second.claimed.map((d) => d.seq)).toEqual([3]);
      expect((await step({ claims: [claim] })).claimed).toEqual([]);
      expect(await ledger.releaseLeases('n1')).toBeGreaterThanOrEqual(3);
      expect((await step({ claims: [{ ...claim, limit: 10 }] })).claimed.map((d) => d.seq)).toEqual([
        1, 2, 3,
      ]);
    });

    it('gives back leased deliveries never sent: due again, their attempt not counted, only by their node', async () => {
      const { tenant, id } = await setUp([1, 2]);
      const claim = { tenant, webhookId: id, ordered: false, limit: 10 };
      const [a, b] = (await step({ claims: [claim] })).claimed;
      await ledger.unclaim('n2', [a!.id]);
      await ledger.unclaim('n1', [b!.id]);
      const again = (await step({ claims: [claim] })).claimed;
      expect(again.map((d) => [d.seq, d.attempts])).toEqual([[2, 1]]);
      const shown = await fx.store.getDelivery(tenant, id, a!.id);
      expect(shown).toMatchObject({ attempts: 1, lockedBy: 'n1' });
    });

    it('records an attempt: the delivery ends, its attempt is logged, the endpoint counts the call', async () => {
      const { tenant, id } = await setUp([1]);
      const [row] = (await step({ claims: [{ tenant, webhookId: id, ordered: false, limit: 1 }] })).claimed;
      const out = await step({ results: [result(row!, 204, now)] });
      expect(out.disabled).toEqual([]);
      const done = await fx.store.getDelivery(tenant, id, row!.id);
      expect(done).toMatchObject({ status: 'success', lastStatus: 204, lockedBy: null, completedAt: now });
      const attempts = (await fx.store.listAttempts(tenant, [row!.id])).get(row!.id) ?? [];
      expect(attempts).toHaveLength(1);
      expect(await fx.store.getEndpoint(tenant, id)).toMatchObject({
        totalCalls: 1,
        failedCalls: 0,
        consecutiveFailures: 0,
        lastSuccessAt: now,
      });
    });

    it('a failed attempt leaves the delivery pending for its retry time, unleased', async () => {
      const { tenant, id } = await setUp([1]);
      const [row] = (await step({ claims: [{ tenant, webhookId: id, ordered: false, limit: 1 }] })).claimed;
      await step({ results: [result(row!, 500, now)] });
      expect(await fx.store.getDelivery(tenant, id, row!.id)).toMatchObject({
        status: 'pending',
        nextAttemptAt: now + 1000,
        lockedBy: null,
        lastError: 'HTTP 500',
      });
      expect(await fx.store.getEndpoint(tenant, id)).toMatchObject({
        failedCalls: 1,
        consecutiveFailures: 1,
      });
      // Not due yet at `now`; due once its time comes.
      const claim = { tenant, webhookId: id, ordered: false, limit: 1 };
      expect((await step({ claims: [claim] })).claimed).toEqual([]);
      expect((await step({ now: now + 1000, claims: [claim] })).claimed.map((d) => d.attempts)).toEqual([2]);
    });

    it('a late answer to an expired lease neither ends nor unlocks the newer attempt', async () => {
      const { tenant, id } = await setUp([1]);
      const claim = { tenant, webhookId: id, ordered: false, limit: 1 };
      const [first] = (await step({ claims: [claim] })).claimed;
      // The lease runs out and the delivery is claimed again (attempt 2) before attempt 1 answers.
      const later = now + 31_000;
      const [second] = (await step({ now: later, leaseUntil: later + 30_000, claims: [claim] })).claimed;
      expect(second!.attempts).toBe(2);
      await step({ now: later, results: [result(first!, 204, later)] });
      expect(await fx.store.getDelivery(tenant, id, first!.id)).toMatchObject({
        status: 'pending',
        lockedBy: 'n1',
        attempts: 2,
      });
      await step({ now: later, results: [result(second!, 204, later)] });
      expect(await fx.store.getDelivery(tenant, id, first!.id)).toMatchObject({
        status: 'success',
        lockedBy: null,
      });
    });

    it('disables an endpoint that answered 410 once, with the reason', async () => {
      const { tenant, id } = await setUp([1, 2]);
      const rows = (await step({ claims: [{ tenant, webhookId: id, ordered: false, limit: 2 }] })).claimed;
      const gone = { disable: 'the endpoint answered 410 Gone' };
      const out = await step({ results: rows.map((r) => result(r, 410, now, gone)) });
      expect(out.disabled).toEqual([{ tenant, id, reason: 'the endpoint answered 410 Gone' }]);
      expect(await fx.store.getEndpoint(tenant, id)).toMatchObject({
        status: 'disabled',
        statusReason: 'the endpoint answered 410 Gone',
      });
    });

    it('disables an endpoint after `disableAfter` failures in a row, not before, and a 429 does not count', async () => {
      const { tenant, id } = await setUp([1, 2, 3]);
      const rows = (await step({ claims: [{ tenant, webhookId: id, ordered: false, limit: 3 }] })).claimed;
      const throttled = await step({ disableAfter: 2, results: [result(rows[0]!, 429, now)] });
      expect(throttled.disabled).toEqual([]);
      const once = await step({ disableAfter: 2, results: [result(rows[1]!, 500, now)] });
      expect(once.disabled).toEqual([]);
      const twice = await step({ disableAfter: 2, results: [result(rows[2]!, 500, now)] });
      expect(twice.disabled).toEqual([{ tenant, id, reason: 'disabled after 2 failed attempts in a row' }]);
      expect(await fx.store.getEndpoint(tenant, id)).toMatchObject({
        status: 'disabled',
        consecutiveFailures: 2,
      });
    });

    it('an ordered endpoint gets its lowest-seq pending delivery only, and nothing while that one is leased', async () => {
      const { tenant, id } = await setUp([5, 4], { delivery: 'ordered', maxConcurrency: 1 });
      const claim = { tenant, webhookId: id, ordered: true, limit: 1 };
      const first = await step({ claims: [claim] });
      expect(first.claimed.map((d) => d.seq)).toEqual([4]);
      expect((await step({ claims: [claim] })).claimed).toEqual([]);
      await step({ results: [result(first.claimed[0]!, 200, now)] });
      expect((await step({ claims: [claim] })).claimed.map((d) => d.seq)).toEqual([5]);
    });

    it('lists endpoints with pending deliveries, and renews only the leases a node holds', async () => {
      const { tenant, id } = await setUp([1]);
      const pending = await ledger.pendingEndpoints();
      expect(pending).toContainEqual({ tenant, webhookId: id, nextAttemptAt: now });
      const [row] = (await step({ claims: [{ tenant, webhookId: id, ordered: false, limit: 1 }] })).claimed;
      await ledger.renewLeases('other-node', [row!.id], now + 90_000);
      expect((await fx.store.getDelivery(tenant, id, row!.id))?.lockedUntil).toBe(now + 30_000);
      await ledger.renewLeases('n1', [row!.id], now + 90_000);
      expect((await fx.store.getDelivery(tenant, id, row!.id))?.lockedUntil).toBe(now + 90_000);
    });
  });
}
