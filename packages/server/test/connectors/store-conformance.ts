/**
 * The ConnectorStore conformance suite: ticks (idempotent batches, range queries both ways, the resume
 * seq, pruning), per-connector state, REST definitions and sealed secrets, run against every store
 * (store.test.ts) so the SQLite and PostgreSQL stores cannot drift apart. `open` gives an empty store
 * and its cleanup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorStore, TickRow } from '../../src/connectors/store.ts';

export interface ConnectorStoreFixture {
  store: ConnectorStore;
  cleanup: () => Promise<void>;
}

let counter = 0;
const fresh = (label: string) => `${label}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

function ticks(tenant: string, topic: string, symbol: string, from: number, n: number): TickRow[] {
  return Array.from({ length: n }, (_, i) => ({
    tenant,
    topic,
    symbol,
    seq: from + i,
    ts: 1_000 * (from + i),
    price: 100 + i,
    ...(i === 0 ? { data: { first: true } } : {}),
  }));
}

export function runConnectorStoreConformance(name: string, open: () => Promise<ConnectorStoreFixture>): void {
  describe(`ConnectorStore (${name})`, () => {
    let fx: ConnectorStoreFixture;
    beforeAll(async () => {
      fx = await open();
    });
    afterAll(async () => fx?.cleanup());

    it('stores a batch of ticks once, answers ranges oldest or newest first, and knows the last seq', async () => {
      const tenant = fresh('t');
      const { store } = fx;
      expect(await store.lastTickSeq(tenant, 'prices')).toBe(0);
      await store.insertTicks(ticks(tenant, 'prices', 'AAA', 1, 5));
      await store.insertTicks(ticks(tenant, 'prices', 'AAA', 4, 3)); // 4 and 5 again, 6 new
      await store.insertTicks(ticks(tenant, 'prices', 'BBB', 7, 1));
      const asc = await store.ticks(tenant, 'prices', 'AAA', { limit: 100, order: 'asc' });
      expect(asc.map((t) => t.seq)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(asc[0]).toEqual({ symbol: 'AAA', seq: 1, ts: 1000, price: 100, data: { first: true } });
      const desc = await store.ticks(tenant, 'prices', 'AAA', { limit: 2, order: 'desc' });
      expect(desc.map((t) => t.seq)).toEqual([6, 5]);
      const range = await store.ticks(tenant, 'prices', 'AAA', {
        from: 2000,
        to: 4000,
        limit: 10,
        order: 'asc',
      });
      expect(range.map((t) => t.seq)).toEqual([2, 3]);
      expect(await store.lastTickSeq(tenant, 'prices')).toBe(7);
      expect(await store.ticks(fresh('other'), 'prices', 'AAA', { limit: 10, order: 'asc' })).toEqual([]);
    });

    it('prunes ticks older than a time, in chunks, and keeps the newer ones', async () => {
      const tenant = fresh('t');
      const { store } = fx;
      await store.insertTicks(ticks(tenant, 'old', 'X', 1, 6));
      let pruned = 0;
      for (let n = -1; n !== 0; ) {
        n = await store.pruneTicks(4000, 2);
        pruned += n;
      }
      expect(pruned).toBeGreaterThanOrEqual(3);
      const left = await store.ticks(tenant, 'old', 'X', { limit: 10, order: 'asc' });
      expect(left.map((t) => t.seq)).toEqual([4, 5, 6]);
    });

    it('keeps state per connector, replaces it, and deletes all of a connector at once', async () => {
      const tenant = fresh('t');
      const { store } = fx;
      expect(await store.getState(tenant, 'pull', 'cursor:a')).toBeNull();
      await store.putState(tenant, 'pull', 'cursor:a', 'c1');
      await store.putState(tenant, 'pull', 'cursor:a', { at: 2, list: [1, 'x'] });
      await store.putState(tenant, 'pull', 'lastSuccess:a', 12345);
      await store.putState(tenant, 'feed', 'subs', ['AAA']);
      expect(await store.getState(tenant, 'pull', 'cursor:a')).toEqual({ at: 2, list: [1, 'x'] });
      expect(await store.getState(tenant, 'pull', 'lastSuccess:a')).toBe(12345);
      await store.deleteState(tenant, 'pull');
      expect(await store.getState(tenant, 'pull', 'cursor:a')).toBeNull();
      expect(await store.getState(tenant, 'pull', 'lastSuccess:a')).toBeNull();
      expect(await store.getState(tenant, 'feed', 'subs')).toEqual(['AAA']);
    });

    it('stores REST definitions, replaces one keeping its creation time, and deletes it', async () => {
      const tenant = fresh('t');
      const { store } = fx;
      const spec = { name: 'feed', tenant, kind: 'ws-feed', url: 'wss://example.com' };
      await store.putConnector(tenant, 'feed', spec);
      const first = (await store.listConnectors()).find((c) => c.tenant === tenant);
      expect(first).toMatchObject({ tenant, name: 'feed', spec });
      await new Promise((r) => setTimeout(r, 5));
      await store.putConnector(tenant, 'feed', { ...spec, enabled: false });
      const second = (await store.listConnectors()).find((c) => c.tenant === tenant);
      expect(second?.spec).toEqual({ ...spec, enabled: false });
      expect(second?.createdAt).toBe(first?.createdAt);
      expect(await store.deleteConnector(tenant, 'feed')).toBe(true);
      expect(await store.deleteConnector(tenant, 'feed')).toBe(false);
      expect((await store.listConnectors()).some((c) => c.tenant === tenant)).toBe(false);
    });

    it('keeps sealed secrets per tenant, lists them by name, and deletes them', async () => {
      const tenant = fresh('t');
      const { store } = fx;
      await store.putSecret(tenant, 'API_KEY', 'sealed-1');
      await store.putSecret(tenant, 'OTHER', 'sealed-2');
      const created = (await store.listSecrets(tenant, ['API_KEY']))[0];
      await store.putSecret(tenant, 'API_KEY', 'sealed-3');
      const named = await store.listSecrets(tenant, ['API_KEY']);
      expect(named).toHaveLength(1);
      expect(named[0]).toMatchObject({ name: 'API_KEY', sealed: 'sealed-3', createdAt: created?.createdAt });
      expect((await store.listSecrets(tenant)).map((s) => s.name).sort()).toEqual(['API_KEY', 'OTHER']);
      expect(await store.listSecrets(fresh('other'))).toEqual([]);
      expect(await store.deleteSecret(tenant, 'OTHER')).toBe(true);
      expect(await store.deleteSecret(tenant, 'OTHER')).toBe(false);
    });
  });
}
