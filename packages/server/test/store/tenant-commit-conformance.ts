/**
 * Conformance of one-tenant commits (`Store.commitTenant`, or `transaction` for drivers without it):
 * whatever a driver remembers to commit in one call, another instance's writes to the same tenant (its
 * head, a stored result, a record, the settings version) are seen by the commit that follows, and seqs
 * stay gap-free. Run by sqlite.test.ts and store.postgres.test.ts with the store suite's fixture.
 */
import type { MutationResult, SyncRecord } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store, TenantLock, WriteTx } from '../../src/store/types.ts';
import { recordKey } from '../../src/store/types.ts';
import type { StoreFixture } from './store-conformance.ts';

const TS = '2024-05-01T12:00:00.000Z';

function commit<T>(store: Store, tenant: string, fn: (tx: WriteTx) => Promise<T>): Promise<T> {
  return store.commitTenant ? store.commitTenant(tenant, fn) : store.transaction(fn);
}

interface Outcome {
  seq: number;
  lock: TenantLock;
  /** The counter as this commit found it, and the prior result of its key if one was stored. */
  before: SyncRecord | null;
  prior: MutationResult | null;
}

/** Locks, reads result `key` and record counters/c, and (unless `key` was stored) increments it. */
export function bump(store: Store, tenant: string, key: string): Promise<Outcome> {
  return commit(store, tenant, async (tx) => {
    const lock = await tx.lockTenant(tenant);
    const prior = (await tx.getResults(tenant, [key])).get(key) ?? null;
    const before =
      (await tx.getRecords(tenant, [{ collection: 'counters', id: 'c' }])).get(recordKey('counters', 'c')) ??
      null;
    if (prior) return { seq: lock.head, lock, before, prior };
    const version = (before?.version ?? 0) + 1;
    const record: SyncRecord = {
      collection: 'counters',
      id: 'c',
      data: { n: ((before?.data.n as number | undefined) ?? 0) + 1 },
      version,
      hlc: '0000000000001-0000-node',
      updatedAt: TS,
      updatedBy: 'user-1',
      deleted: false,
    };
    const seq = lock.head + 1;
    await tx.writeBatch(tenant, {
      records: [record],
      events: [
        {
          seq,
          eventId: `e-${key}`,
          kind: 'record',
          collection: 'counters',
          id: 'c',
          op: 'put',
          version,
          data: record.data,
          hlc: record.hlc,
          actor: 'user-1',
          ts: TS,
        },
      ],
      results: [{ key, result: { mid: key, status: 'applied', version, seq } }],
      head: seq,
    });
    return { seq, lock, before, prior: null };
  });
}

let counter = 0;
const freshTenant = (label: string) => `${label}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

export function runTenantCommitConformance(name: string, create: () => Promise<StoreFixture>): void {
  describe(`One-tenant commits: ${name}`, () => {
    let fixture: StoreFixture;
    let a: Store;
    let b: Store;

    beforeAll(async () => {
      fixture = await create();
      a = fixture.store;
      await a.migrate();
      b = await fixture.reopen();
    });

    afterAll(async () => {
      await b?.close();
      await a?.close();
      await fixture?.cleanup();
    });

    it('commits in seq order and sees what another instance wrote in between: head, record, result', async () => {
      const tenant = freshTenant('moved');
      expect((await bump(a, tenant, 'k1')).seq).toBe(1);
      expect((await bump(a, tenant, 'k2')).seq).toBe(2);
      // Another node moves the head and the record on.
      expect((await bump(b, tenant, 'k3')).seq).toBe(3);
      const fourth = await bump(a, tenant, 'k4');
      expect(fourth.seq).toBe(4);
      expect(fourth.before?.version).toBe(3);
      // A key another node stored is found, not written again.
      const again = await bump(a, tenant, 'k3');
      expect(again.prior).toMatchObject({ mid: 'k3', seq: 3 });
      expect(await a.headSeq(tenant)).toBe(4);
      const events = await a.readEvents(tenant, { afterSeq: 0, limit: 10 });
      expect(events.map((e) => [e.seq, e.eventId])).toEqual([
        [1, 'e-k1'],
        [2, 'e-k2'],
        [3, 'e-k3'],
        [4, 'e-k4'],
      ]);
      expect((await a.getRecord(tenant, 'counters', 'c'))?.data).toEqual({ n: 4 });
    });

    it('a settings change on another instance is read by the next commit', async () => {
      const tenant = freshTenant('settings');
      const first = await bump(a, tenant, 'k1');
      await b.putCollection(tenant, 'counters', {});
      const next = await bump(a, tenant, 'k2');
      expect(next.lock.collectionsVersion).toBe(first.lock.collectionsVersion + 1);
      expect(next.seq).toBe(2);
    });

    it('a commit that throws writes nothing, and the next one continues the head', async () => {
      const tenant = freshTenant('throws');
      await bump(a, tenant, 'k1');
      await expect(
        commit(a, tenant, async (tx) => {
          const lock = await tx.lockTenant(tenant);
          await tx.getRecords(tenant, [{ collection: 'counters', id: 'c' }]);
          throw new Error(`refused at head ${lock.head}`);
        }),
      ).rejects.toThrow('refused at head 1');
      expect((await bump(a, tenant, 'k2')).seq).toBe(2);
      expect(await a.headSeq(tenant)).toBe(2);
    });

    it('100 commits of one tenant from two instances at once: seqs 1..100, no lost update', async () => {
      const tenant = freshTenant('race');
      await bump(a, tenant, 'warm');
      const outcomes = await Promise.all(
        Array.from({ length: 100 }, (_, i) => bump(i % 2 === 0 ? a : b, tenant, `r${i}`)),
      );
      const seqs = outcomes.map((o) => o.seq).sort((x, y) => x - y);
      expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => i + 2));
      const events = await a.readEvents(tenant, { afterSeq: 0, limit: 200 });
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
      expect((await a.getRecord(tenant, 'counters', 'c'))?.data).toEqual({ n: 101 });
    });
  });
}
