/**
 * The Store conformance suite: one set of behaviours every Store implementation must show, run against
 * each of them (sqlite.test.ts, store.postgres.test.ts) so the stores cannot drift apart.
 *
 * `create` opens a store on a fresh, empty database; `reopen` opens another instance on that same
 * database (same SQLite file, same PostgreSQL schema), for the multi-writer tests. The suite closes the
 * instances it reopens; `cleanup` closes nothing and removes the database.
 * Tests share one database and stay apart by using their own tenants.
 */
import {
  type CollectionSettings,
  type LogEvent,
  type MutationResult,
  matchesFilter,
  type SyncRecord,
} from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncError } from '../../src/core/errors.ts';
import type { Store, TenantBatch } from '../../src/store/types.ts';
import { recordKey, versionKey } from '../../src/store/types.ts';
import { UNAVAILABLE_MESSAGES } from '../../src/store/unavailable.ts';

export interface StoreFixture {
  store: Store;
  /** Opens one more store instance on the same database. */
  reopen: (options?: { busyTimeoutMs?: number }) => Promise<Store>;
  /** Another connection takes the tenant's write lock and keeps it until the returned function runs. */
  holdWriteLock: (tenant: string) => Promise<() => Promise<void>>;
  /**
   * A migrated store on a database of its own that has no room for another page (with its cleanup), or
   * why a full database cannot be staged on this backend.
   */
  full: (() => Promise<{ store: Store; cleanup: () => Promise<void> }>) | string;
  cleanup: () => Promise<void>;
}

const TS = '2024-05-01T12:00:00.000Z';

let tenantCounter = 0;
/** A tenant no other test uses. */
function freshTenant(label: string): string {
  tenantCounter += 1;
  return `${label}-${tenantCounter}-${Math.random().toString(36).slice(2, 8)}`;
}

function rec(
  collection: string,
  id: string,
  data: Record<string, unknown>,
  extra: Partial<SyncRecord> = {},
): SyncRecord {
  return {
    collection,
    id,
    data,
    version: 1,
    hlc: '0000000000001-0000-node',
    updatedAt: TS,
    updatedBy: 'user-1',
    deleted: false,
    ...extra,
  };
}

/** The log entry of a record change, as the write path builds it. */
function recordEvent(seq: number, r: SyncRecord, op: LogEvent['op'] = 'put'): LogEvent {
  return {
    seq,
    eventId: `evt-${seq}-${r.id}`,
    kind: 'record',
    collection: r.collection,
    id: r.id,
    op,
    version: r.version,
    data: r.deleted ? null : r.data,
    hlc: r.hlc,
    actor: r.updatedBy,
    ts: TS,
  };
}

function domainEvent(seq: number, type: string, extra: Partial<LogEvent> = {}): LogEvent {
  return { seq, eventId: `dom-${seq}`, kind: 'event', type, actor: 'svc', ts: TS, ...extra };
}

function applied(mid: string, seq: number): MutationResult {
  return { mid, status: 'applied', version: 1, seq };
}

/**
 * Writes one batch in its own transaction the way the write path does: lock, then continue the head.
 * `build` gets the head and returns the batch's parts; events must continue the head.
 */
async function append(
  store: Store,
  tenant: string,
  build: (head: number) => Partial<Omit<TenantBatch, 'head'>>,
): Promise<number> {
  return store.transaction(async (tx) => {
    const head = (await tx.lockTenant(tenant)).head;
    const part = build(head);
    const events = part.events ?? [];
    const next = events.length ? events[events.length - 1].seq : head;
    await tx.writeBatch(tenant, {
      records: part.records ?? [],
      events,
      results: part.results ?? [],
      head: next,
    });
    return next;
  });
}

/** Writes the records, each with a record event, in one batch. */
function putRecords(store: Store, tenant: string, records: SyncRecord[]): Promise<number> {
  return append(store, tenant, (head) => ({
    records,
    events: records.map((r, i) => recordEvent(head + i + 1, r, r.deleted ? 'delete' : 'put')),
  }));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function runStoreConformance(name: string, create: () => Promise<StoreFixture>): void {
  describe(`Store conformance: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeAll(async () => {
      fixture = await create();
      store = fixture.store;
      await store.migrate();
    });

    afterAll(async () => {
      await store?.close();
      await fixture?.cleanup();
    });

    describe('migrations and health', () => {
      it('migrate is idempotent: a second run applies nothing', async () => {
        const messages: string[] = [];
        expect(await store.migrate((m) => messages.push(m))).toBe(0);
        expect(messages).toEqual([]);
      });

      it('a fresh instance on a migrated database applies nothing either', async () => {
        const other = await fixture.reopen();
        try {
          expect(await other.migrate()).toBe(0);
        } finally {
          await other.close();
        }
      });

      it('ping answers and kind names the store', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        expect(['sqlite', 'postgres']).toContain(store.kind);
      });
    });

    describe('transactions and the log', () => {
      it('a new tenant has head 0 and an empty log', async () => {
        const tenant = freshTenant('empty');
        expect(await store.headSeq(tenant)).toBe(0);
        expect(await store.readEvents(tenant, { afterSeq: 0, limit: 10 })).toEqual([]);
        expect(await store.transaction(async (tx) => (await tx.lockTenant(tenant)).head)).toBe(0);
        expect(await store.headSeq(tenant)).toBe(0);
      });

      it('writes records, events and results that later reads and transactions see', async () => {
        const tenant = freshTenant('write');
        const a = rec('todos', 'a', { title: 'one' });
        const b = rec('todos', 'b', { title: 'two', done: false });
        const returned = await store.transaction(async (tx) => {
          const head = (await tx.lockTenant(tenant)).head;
          expect(head).toBe(0);
          expect((await tx.getResults(tenant, ['m1'])).size).toBe(0);
          expect((await tx.getRecords(tenant, [{ collection: 'todos', id: 'a' }])).size).toBe(0);
          await tx.writeBatch(tenant, {
            records: [a, b],
            events: [recordEvent(1, a), recordEvent(2, b)],
            results: [
              { key: 'm1', result: applied('m1', 1) },
              { key: 'm2', result: applied('m2', 2) },
            ],
            head: 2,
          });
          return 'done';
        });
        expect(returned).toBe('done');
        expect(await store.headSeq(tenant)).toBe(2);
        expect(await store.getRecord(tenant, 'todos', 'a')).toStrictEqual(a);
        expect(await store.getRecord(tenant, 'todos', 'b')).toStrictEqual(b);
        expect(await store.readEvents(tenant, { afterSeq: 0, limit: 10 })).toStrictEqual([
          recordEvent(1, a),
          recordEvent(2, b),
        ]);

        await store.transaction(async (tx) => {
          expect((await tx.lockTenant(tenant)).head).toBe(2);
          const results = await tx.getResults(tenant, ['m1', 'm2', 'missing']);
          expect([...results.keys()].sort()).toEqual(['m1', 'm2']);
          expect(results.get('m2')).toStrictEqual(applied('m2', 2));
          const records = await tx.getRecords(tenant, [
            { collection: 'todos', id: 'a' },
            { collection: 'todos', id: 'b' },
            { collection: 'todos', id: 'zzz' },
            { collection: 'other', id: 'a' },
          ]);
          expect(records.size).toBe(2);
          expect(records.get(recordKey('todos', 'a'))).toStrictEqual(a);
          expect(records.get(recordKey('todos', 'b'))).toStrictEqual(b);
          expect((await tx.getResults(tenant, [])).size).toBe(0);
          expect((await tx.getRecords(tenant, [])).size).toBe(0);
        });
      });

      it('keeps the first result stored under a key', async () => {
        const tenant = freshTenant('results');
        await append(store, tenant, () => ({ results: [{ key: 'k', result: applied('k', 1) }] }));
        await append(store, tenant, () => ({ results: [{ key: 'k', result: applied('k', 99) }] }));
        const found = await store.transaction((tx) => tx.getResults(tenant, ['k']));
        expect(found.get('k')).toStrictEqual(applied('k', 1));
      });

      it('returns a stored result with the record it carried, until compaction drops that version', async () => {
        const tenant = freshTenant('result-record');
        const v1 = rec('todos', 'r', { title: 'one' });
        const v2 = rec('todos', 'r', { title: 'two' }, { version: 2, hlc: '0000000000002-0000-node' });
        const gone = rec('todos', 'g', { title: 'last' }, { deleted: true });
        const result = (mid: string, seq: number, record: SyncRecord): MutationResult => ({
          mid,
          status: mid === 'b' ? 'merged' : 'applied',
          version: record.version,
          seq,
          eventId: `evt-${seq}-${record.id}`,
          record,
        });
        const refused: MutationResult = {
          mid: 'c',
          status: 'rejected',
          version: 2,
          record: v2,
          error: { code: 'CONFLICT', message: 'stale' },
        };
        await append(store, tenant, () => ({
          records: [v1],
          events: [recordEvent(1, v1)],
          results: [{ key: 'a', result: result('a', 1, v1) }],
        }));
        await append(store, tenant, () => ({
          records: [v2, gone],
          // The write path logs a delete with the data the record had.
          events: [recordEvent(2, v2), { ...recordEvent(3, gone, 'delete'), data: gone.data }],
          results: [
            { key: 'b', result: result('b', 2, v2) },
            { key: 'd', result: result('d', 3, gone) },
            { key: 'c', result: refused },
          ],
        }));
        const read = () => store.transaction((tx) => tx.getResults(tenant, ['a', 'b', 'c', 'd']));
        const found = await read();
        expect(found.get('a')).toStrictEqual(result('a', 1, v1));
        expect(found.get('b')).toStrictEqual(result('b', 2, v2));
        expect(found.get('c')).toStrictEqual(refused);
        expect(found.get('d')).toStrictEqual(result('d', 3, gone));
        // Keeping one version drops v1's log entry: its result keeps everything but the record.
        expect(await store.compactHistory(tenant, 'todos', { keepVersions: 1, before: null })).toBe(1);
        const after = await read();
        const { record: _dropped, ...withoutRecord } = result('a', 1, v1);
        expect(after.get('a')).toStrictEqual(withoutRecord);
        expect(after.get('b')).toStrictEqual(result('b', 2, v2));
      });

      it('a record written twice in one batch keeps its last version', async () => {
        const tenant = freshTenant('twice');
        const v1 = rec('c', 'x', { n: 1 });
        const v2 = rec('c', 'x', { n: 2 }, { version: 2 });
        await append(store, tenant, () => ({
          records: [v1, v2],
          events: [recordEvent(1, v1), recordEvent(2, v2)],
        }));
        expect(await store.getRecord(tenant, 'c', 'x')).toStrictEqual(v2);
        expect(await store.headSeq(tenant)).toBe(2);
      });

      it('returns events exactly as written, without absent fields', async () => {
        const tenant = freshTenant('fidelity');
        const deleted = rec('c', 'gone', {}, { deleted: true, version: 3 });
        const events: LogEvent[] = [
          domainEvent(1, 'ping'),
          domainEvent(2, 'order.paid', {
            payload: { amount: 12.5, items: [1, 'two', null, { deep: true }] },
            source: 'billing',
            target: 'shipping',
            priority: 0,
          }),
          domainEvent(3, 'text', { payload: 'just a string', priority: 9 }),
          recordEvent(4, deleted, 'delete'),
        ];
        await append(store, tenant, () => ({ records: [deleted], events }));
        const read = await store.readEvents(tenant, { afterSeq: 0, limit: 10 });
        expect(read).toStrictEqual(events);
        expect(Object.keys(read[0]).sort()).toEqual(['actor', 'eventId', 'kind', 'seq', 'ts', 'type']);
      });

      it('reads the log in seq order with afterSeq, limit and type', async () => {
        const tenant = freshTenant('log');
        for (let i = 0; i < 4; i++) {
          await append(store, tenant, (head) => ({
            events: [
              domainEvent(head + 1, i % 2 === 0 ? 'even' : 'odd', { payload: { i } }),
              recordEvent(head + 2, rec('c', `r${i}`, { i })),
            ],
            records: [rec('c', `r${i}`, { i })],
          }));
        }
        expect(await store.headSeq(tenant)).toBe(8);
        const all = await store.readEvents(tenant, { afterSeq: 0, limit: 100 });
        expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect((await store.readEvents(tenant, { afterSeq: 3, limit: 100 })).map((e) => e.seq)).toEqual([
          4, 5, 6, 7, 8,
        ]);
        expect((await store.readEvents(tenant, { afterSeq: 3, limit: 2 })).map((e) => e.seq)).toEqual([4, 5]);
        expect(await store.readEvents(tenant, { afterSeq: 8, limit: 10 })).toEqual([]);
        const odd = await store.readEvents(tenant, { afterSeq: 0, limit: 100, type: 'odd' });
        expect(odd.map((e) => e.seq)).toEqual([3, 7]);
        expect(odd.every((e) => e.kind === 'event' && e.type === 'odd')).toBe(true);
        expect(
          (await store.readEvents(tenant, { afterSeq: 1, limit: 1, type: 'even' })).map((e) => e.seq),
        ).toEqual([5]);
        expect(await store.readEvents(tenant, { afterSeq: 0, limit: 10, type: 'none' })).toEqual([]);
      });

      it('a transaction that throws leaves nothing behind and the next one reuses its seqs', async () => {
        const tenant = freshTenant('rollback');
        await putRecords(store, tenant, [rec('c', 'kept', { v: 1 })]);
        const boom = new Error('boom');
        await expect(
          store.transaction(async (tx) => {
            const head = (await tx.lockTenant(tenant)).head;
            const r = rec('c', 'lost', { v: 2 });
            await tx.writeBatch(tenant, {
              records: [r, rec('c', 'kept', { v: 99 }, { version: 2 })],
              events: [recordEvent(head + 1, r), domainEvent(head + 2, 'lost')],
              results: [{ key: 'lost-mid', result: applied('lost-mid', head + 1) }],
              head: head + 2,
            });
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect(await store.headSeq(tenant)).toBe(1);
        expect(await store.getRecord(tenant, 'c', 'lost')).toBeNull();
        expect((await store.getRecord(tenant, 'c', 'kept'))?.data).toEqual({ v: 1 });
        expect((await store.readEvents(tenant, { afterSeq: 0, limit: 10 })).map((e) => e.seq)).toEqual([1]);
        expect((await store.transaction((tx) => tx.getResults(tenant, ['lost-mid']))).size).toBe(0);

        await putRecords(store, tenant, [rec('c', 'after', { v: 3 })]);
        const events = await store.readEvents(tenant, { afterSeq: 0, limit: 10 });
        expect(events.map((e) => [e.seq, e.id])).toEqual([
          [1, 'kept'],
          [2, 'after'],
        ]);
      });
    });

    describe('records', () => {
      const tenant = freshTenant('records');
      const records = [
        rec('items', 'a', { name: 'apple', qty: 3, price: 1.5, fresh: true, meta: { color: 'red', n: 1 } }),
        rec('items', 'b', { name: 'banana', qty: 12, price: 0.25, fresh: false, meta: { color: 'yellow' } }),
        rec('items', 'c', {
          name: 'cherry',
          qty: 3,
          fresh: true,
          tags: ['x'],
          meta: { color: 'red', n: '1' },
        }),
        rec('items', 'd', { name: '3', qty: '3', fresh: 'true', meta: null }),
        rec('items', 'e', { name: 'gone', qty: 3, fresh: true }, { deleted: true, version: 2 }),
        rec('items', 'f', { name: 'nested', list: [{ k: 'v' }], meta: { inner: { deep: 'yes' } } }),
        rec('items', 'B', { name: 'upper' }),
        rec('items', '_u', { name: 'underscore' }),
        rec('other', 'a', { name: 'apple', qty: 3 }),
      ];

      beforeAll(async () => {
        await putRecords(store, tenant, records);
      });

      const list = (query: Partial<Parameters<Store['listRecords']>[2]> = {}) =>
        store.listRecords(tenant, 'items', { limit: 100, filter: {}, includeDeleted: false, ...query });
      const ids = (rs: SyncRecord[]) => rs.map((r) => r.id);

      it('getRecord returns the record or null', async () => {
        expect(await store.getRecord(tenant, 'items', 'a')).toStrictEqual(records[0]);
        expect(await store.getRecord(tenant, 'items', 'e')).toStrictEqual(records[4]);
        expect(await store.getRecord(tenant, 'items', 'zz')).toBeNull();
        expect(await store.getRecord(tenant, 'nope', 'a')).toBeNull();
      });

      it('lists live records by id in byte order, paged with after and limit', async () => {
        const all = await list();
        expect(ids(all)).toEqual(['B', '_u', 'a', 'b', 'c', 'd', 'f']);
        expect(all[2]).toStrictEqual(records[0]);
        expect(ids(await list({ limit: 3 }))).toEqual(['B', '_u', 'a']);
        expect(ids(await list({ limit: 3, after: 'a' }))).toEqual(['b', 'c', 'd']);
        expect(ids(await list({ limit: 3, after: 'd' }))).toEqual(['f']);
        expect(ids(await list({ after: 'f' }))).toEqual([]);
      });

      it('includeDeleted adds deleted records', async () => {
        expect(ids(await list({ includeDeleted: true }))).toEqual(['B', '_u', 'a', 'b', 'c', 'd', 'e', 'f']);
        expect(ids(await list({ includeDeleted: true, after: 'd', limit: 1 }))).toEqual(['e']);
      });

      const filterCases: [string, Record<string, string>, string[]][] = [
        ['a string field', { name: 'apple' }, ['a']],
        ['a string that looks like a number', { name: '3' }, ['d']],
        ['an integer field (and a string "3")', { qty: '3' }, ['a', 'c', 'd']],
        ['a decimal field', { price: '0.25' }, ['b']],
        ['a number written differently never matches', { price: '1.50' }, []],
        ['a boolean field (and a string "true")', { fresh: 'true' }, ['a', 'c', 'd']],
        ['false', { fresh: 'false' }, ['b']],
        ['a dotted path', { 'meta.color': 'red' }, ['a', 'c']],
        ['a dotted path to a number or a string', { 'meta.n': '1' }, ['a', 'c']],
        ['a deeper dotted path', { 'meta.inner.deep': 'yes' }, ['f']],
        ['several fields (AND)', { 'meta.color': 'red', qty: '3', fresh: 'true' }, ['a', 'c']],
        ['an object-valued field', { meta: '[object Object]' }, []],
        ['an object-valued field as JSON', { meta: '{"color":"red","n":1}' }, []],
        ['an array-valued field', { tags: 'x' }, []],
        ['an array-valued field as JSON', { tags: '["x"]' }, []],
        ['a null field', { meta: 'null' }, []],
        ['a path through an array', { 'list.0.k': 'v' }, []],
        ['a path through a scalar', { 'name.length': '5' }, []],
        ['a missing field', { missing: 'x' }, []],
      ];

      it.each(filterCases)('filters on %s', async (_label, filter, expected) => {
        const found = await list({ filter });
        expect(ids(found)).toEqual(expected);
        // The store agrees with the in-memory matcher the realtime layer uses.
        const live = records.filter((r) => r.collection === 'items' && !r.deleted);
        expect(new Set(ids(found))).toEqual(new Set(ids(live.filter((r) => matchesFilter(r.data, filter)))));
      });

      it('filters combine with paging and includeDeleted', async () => {
        expect(ids(await list({ filter: { qty: '3' }, after: 'a', limit: 1 }))).toEqual(['c']);
        expect(ids(await list({ filter: { qty: '3' }, includeDeleted: true }))).toEqual(['a', 'c', 'd', 'e']);
      });

      it('snapshot returns the live matching records and the head they reflect', async () => {
        const head = await store.headSeq(tenant);
        expect(head).toBe(records.length);
        const all = await store.snapshot(tenant, 'items', {});
        expect(all.cursor).toBe(head);
        expect(ids(all.records)).toEqual(['B', '_u', 'a', 'b', 'c', 'd', 'f']);
        expect(all.records[2]).toStrictEqual(records[0]);
        const red = await store.snapshot(tenant, 'items', { 'meta.color': 'red' });
        expect(red).toStrictEqual({ records: [records[0], records[2]], cursor: head });
        expect(await store.snapshot(tenant, 'empty', {})).toStrictEqual({ records: [], cursor: head });
      });

      it('snapshot of a new tenant is empty at cursor 0', async () => {
        expect(await store.snapshot(freshTenant('nobody'), 'items', {})).toStrictEqual({
          records: [],
          cursor: 0,
        });
      });
    });

    describe('record history', () => {
      it("returns one record's log entries oldest first, up to limit", async () => {
        const tenant = freshTenant('history');
        const v1 = rec('notes', 'n1', { text: 'v1' });
        const v2 = rec('notes', 'n1', { text: 'v2' }, { version: 2 });
        const v3 = rec('notes', 'n1', {}, { version: 3, deleted: true });
        await putRecords(store, tenant, [v1]);
        await putRecords(store, tenant, [
          rec('notes', 'n2', { text: 'other' }),
          rec('other', 'n1', { x: 1 }),
        ]);
        await append(store, tenant, (head) => ({ events: [domainEvent(head + 1, 'n1')] }));
        await putRecords(store, tenant, [v2]);
        await putRecords(store, tenant, [v3]);

        const history = await store.readEvents(tenant, {
          afterSeq: 0,
          limit: 10,
          kind: 'record',
          collection: 'notes',
          recordId: 'n1',
        });
        expect(history).toStrictEqual([recordEvent(1, v1), recordEvent(5, v2), recordEvent(6, v3, 'delete')]);
        expect(
          (
            await store.readEvents(tenant, {
              afterSeq: 0,
              limit: 2,
              kind: 'record',
              collection: 'notes',
              recordId: 'n1',
            })
          ).map((e) => e.seq),
        ).toEqual([1, 5]);
        expect(
          await store.readEvents(tenant, {
            afterSeq: 0,
            limit: 10,
            kind: 'record',
            collection: 'notes',
            recordId: 'missing',
          }),
        ).toEqual([]);
      });

      it('finds the data a record had at a version, old or recent, inside a write transaction', async () => {
        const tenant = freshTenant('versions');
        for (let v = 1; v <= 40; v++) {
          // Another record of the same collection changes between each version of n1.
          await putRecords(store, tenant, [
            rec('notes', 'n1', { text: `v${v}` }, { version: v }),
            rec('notes', 'n2', { text: `other ${v}` }, { version: v }),
          ]);
        }
        const found = await store.transaction(async (tx) => {
          await tx.lockTenant(tenant);
          return tx.getVersionData(tenant, [
            { collection: 'notes', id: 'n1', version: 1 },
            { collection: 'notes', id: 'n1', version: 17 },
            { collection: 'notes', id: 'n1', version: 40 },
            { collection: 'notes', id: 'n2', version: 39 },
            { collection: 'notes', id: 'n1', version: 41 },
            { collection: 'notes', id: 'missing', version: 1 },
            { collection: 'other', id: 'n1', version: 1 },
          ]);
        });
        expect(
          new Map([
            [versionKey('notes', 'n1', 1), { text: 'v1' }],
            [versionKey('notes', 'n1', 17), { text: 'v17' }],
            [versionKey('notes', 'n1', 40), { text: 'v40' }],
            [versionKey('notes', 'n2', 39), { text: 'other 39' }],
          ]),
        ).toEqual(found);
      });
    });

    describe('collections, api keys, cursors', () => {
      it('puts and gets collection settings, replacing on put', async () => {
        const tenant = freshTenant('collections');
        expect((await store.getCollections(tenant)).size).toBe(0);
        const todos: CollectionSettings = {
          strategy: 'server_wins',
          schema: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] },
        };
        await store.putCollection(tenant, 'todos', todos);
        await store.putCollection(tenant, 'notes', { strategy: 'lww' });
        await store.putCollection(tenant, 'bare', {});
        let collections = await store.getCollections(tenant);
        expect([...collections.keys()]).toEqual(['bare', 'notes', 'todos']);
        expect(collections.get('todos')).toStrictEqual(todos);
        expect(collections.get('bare')).toStrictEqual({});
        await store.putCollection(tenant, 'notes', { strategy: 'server_wins' });
        collections = await store.getCollections(tenant);
        expect(collections.get('notes')).toStrictEqual({ strategy: 'server_wins' });
        expect(collections.size).toBe(3);
      });

      it('every settings change bumps the collections version a write lock reads, and keeps the head', async () => {
        const tenant = freshTenant('collections-version');
        const lock = () => store.transaction(async (tx) => tx.lockTenant(tenant));
        expect(await lock()).toMatchObject({ head: 0, collectionsVersion: 0 });
        await putRecords(store, tenant, [rec('todos', 'a', {}), rec('todos', 'b', {})]);
        await store.putCollection(tenant, 'todos', { strategy: 'server_wins' });
        const first = await lock();
        expect(first.head).toBe(2);
        expect(first.collectionsVersion).toBe(1);
        await store.putCollection(tenant, 'todos', { strategy: 'lww' });
        await store.putCollection(tenant, 'notes', {});
        expect(await lock()).toMatchObject({
          head: 2,
          collectionsVersion: 3,
          hooksVersion: first.hooksVersion,
        });
        expect(
          (await store.transaction(async (tx) => tx.lockTenant(freshTenant('other')))).collectionsVersion,
        ).toBe(0);
      });

      it('finds api keys by hash', async () => {
        const suffix = Math.random().toString(36).slice(2);
        const tenantKey = { id: `k1-${suffix}`, tenant: 'acme', label: 'ci', hash: `h1-${suffix}` };
        const adminKey = { id: `k2-${suffix}`, tenant: null, label: null, hash: `h2-${suffix}` };
        await store.createApiKey(tenantKey);
        await store.createApiKey(adminKey);
        expect(await store.findApiKey(`h1-${suffix}`)).toStrictEqual({
          id: tenantKey.id,
          tenant: 'acme',
          label: 'ci',
        });
        expect(await store.findApiKey(`h2-${suffix}`)).toStrictEqual({
          id: adminKey.id,
          tenant: null,
          label: null,
        });
        expect(await store.findApiKey(`nope-${suffix}`)).toBeNull();
      });

      it('cursors keep the maximum seq per user and device', async () => {
        const tenant = freshTenant('cursors');
        expect(await store.getCursor(tenant, 'u', 'd')).toBeNull();
        await store.saveCursor(tenant, 'u', 'd', 5);
        expect(await store.getCursor(tenant, 'u', 'd')).toBe(5);
        await store.saveCursor(tenant, 'u', 'd', 3);
        expect(await store.getCursor(tenant, 'u', 'd')).toBe(5);
        await store.saveCursor(tenant, 'u', 'd', 9);
        expect(await store.getCursor(tenant, 'u', 'd')).toBe(9);
        await store.saveCursor(tenant, 'u', 'd2', 1);
        expect(await store.getCursor(tenant, 'u', 'd2')).toBe(1);
        expect(await store.getCursor(tenant, 'u2', 'd')).toBeNull();
        expect(await store.getCursor(tenant, 'u', 'd')).toBe(9);
      });
    });

    describe('driver errors (one translator per driver, the same outcome for the same cause)', () => {
      const unavailable = async (attempt: Promise<unknown>, message: string) => {
        const err = await attempt.then(
          () => null,
          (e: unknown) => e,
        );
        expect(err, 'the attempt should fail').toBeInstanceOf(SyncError);
        expect(err).toMatchObject({ code: 'UNAVAILABLE', message });
      };

      it('a write waiting past the busy timeout for a lock another connection holds is UNAVAILABLE, then works once it is free', async () => {
        const tenant = freshTenant('busy');
        const busy = await fixture.reopen({ busyTimeoutMs: 150 });
        try {
          const release = await fixture.holdWriteLock(tenant);
          try {
            await unavailable(
              busy.transaction(async (tx) => tx.lockTenant(tenant)),
              UNAVAILABLE_MESSAGES.busy,
            );
            await unavailable(
              busy.putCollection(tenant, 'todos', { strategy: 'lww' }),
              UNAVAILABLE_MESSAGES.busy,
            );
          } finally {
            await release();
          }
          await busy.putCollection(tenant, 'todos', { strategy: 'server_wins' });
          expect((await busy.getCollections(tenant)).get('todos')).toEqual({ strategy: 'server_wins' });
          expect(await busy.transaction(async (tx) => (await tx.lockTenant(tenant)).head)).toBe(0);
        } finally {
          await busy.close();
        }
      });

      it('a write to a full database is UNAVAILABLE and leaves what was committed', async (ctx) => {
        const stage = fixture.full;
        if (typeof stage === 'string') return ctx.skip(stage);
        const { store: full, cleanup } = await stage();
        const tenant = freshTenant('full');
        try {
          await unavailable(
            putRecords(full, tenant, [rec('docs', 'big', { text: 'x'.repeat(256 * 1024) })]),
            UNAVAILABLE_MESSAGES.full,
          );
          expect(await full.getRecord(tenant, 'docs', 'big')).toBeNull();
          expect(await full.headSeq(tenant)).toBe(0);
        } finally {
          await full.close();
          await cleanup();
        }
      });
    });

    describe('tenant isolation', () => {
      it('nothing written in one tenant is visible in another', async () => {
        const a = freshTenant('iso-a');
        const b = freshTenant('iso-b');
        const r = rec('shared', 'same-id', { owner: 'a' });
        await append(store, a, () => ({
          records: [r],
          events: [recordEvent(1, r), domainEvent(2, 'hello')],
          results: [{ key: 'mid-1', result: applied('mid-1', 1) }],
        }));
        await store.putCollection(a, 'shared', { strategy: 'lww' });
        await store.saveCursor(a, 'u', 'd', 2);
        expect(await store.headSeq(a)).toBe(2);

        expect(await store.headSeq(b)).toBe(0);
        expect(await store.readEvents(b, { afterSeq: 0, limit: 10 })).toEqual([]);
        expect(await store.readEvents(b, { afterSeq: 0, limit: 10, type: 'hello' })).toEqual([]);
        expect(await store.getRecord(b, 'shared', 'same-id')).toBeNull();
        expect(await store.listRecords(b, 'shared', { limit: 10, filter: {}, includeDeleted: true })).toEqual(
          [],
        );
        expect(
          await store.listRecords(b, 'shared', { limit: 10, filter: { owner: 'a' }, includeDeleted: false }),
        ).toEqual([]);
        expect(await store.snapshot(b, 'shared', {})).toStrictEqual({ records: [], cursor: 0 });
        expect(
          await store.readEvents(b, {
            afterSeq: 0,
            limit: 10,
            kind: 'record',
            collection: 'shared',
            recordId: 'same-id',
          }),
        ).toEqual([]);
        expect((await store.getCollections(b)).size).toBe(0);
        expect(await store.getCursor(b, 'u', 'd')).toBeNull();
        await store.transaction(async (tx) => {
          expect((await tx.lockTenant(b)).head).toBe(0);
          expect((await tx.getResults(b, ['mid-1'])).size).toBe(0);
          expect((await tx.getRecords(b, [{ collection: 'shared', id: 'same-id' }])).size).toBe(0);
        });

        // b's own writes start at seq 1 and do not touch a.
        const rb = rec('shared', 'same-id', { owner: 'b' });
        await putRecords(store, b, [rb]);
        expect(await store.headSeq(b)).toBe(1);
        expect(await store.headSeq(a)).toBe(2);
        expect((await store.getRecord(a, 'shared', 'same-id'))?.data).toEqual({ owner: 'a' });
        expect((await store.getRecord(b, 'shared', 'same-id'))?.data).toEqual({ owner: 'b' });
        expect((await store.readEvents(a, { afterSeq: 0, limit: 10 })).map((e) => e.seq)).toEqual([1, 2]);
      });
    });

    describe('concurrency across store instances', () => {
      const INSTANCES = 4;
      const WRITES = 200;
      let stores: Store[] = [];

      beforeAll(async () => {
        stores = [store];
        for (let i = 1; i < INSTANCES; i++) stores.push(await fixture.reopen());
      });

      afterAll(async () => {
        for (const s of stores.slice(1)) await s.close();
      });

      /** One writer's transaction: lock, read the counter record, append one event at head+1. */
      async function writeOne(s: Store, tenant: string, writer: number): Promise<number> {
        return s.transaction(async (tx) => {
          const head = (await tx.lockTenant(tenant)).head;
          const current = (await tx.getRecords(tenant, [{ collection: 'counters', id: 'c' }])).get(
            recordKey('counters', 'c'),
          );
          // Yield to the event loop while holding the lock, so other writers and readers really interleave.
          await sleep(writer % 3 === 0 ? 1 : 0);
          const next = rec(
            'counters',
            'c',
            { n: ((current?.data.n as number | undefined) ?? 0) + 1 },
            {
              version: (current?.version ?? 0) + 1,
            },
          );
          const seq = head + 1;
          await tx.writeBatch(tenant, {
            records: [next],
            events: [{ ...recordEvent(seq, next), eventId: `w-${writer}` }],
            results: [{ key: `mid-${writer}`, result: applied(`mid-${writer}`, seq) }],
            head: seq,
          });
          return seq;
        });
      }

      it(`${WRITES} concurrent transactions on ${INSTANCES} instances get seqs 1..${WRITES}, no gaps or duplicates`, async () => {
        const tenant = freshTenant('race');
        const seqs = await Promise.all(
          Array.from({ length: WRITES }, (_, i) => writeOne(stores[i % INSTANCES], tenant, i)),
        );
        const expected = Array.from({ length: WRITES }, (_, i) => i + 1);
        expect([...seqs].sort((x, y) => x - y)).toEqual(expected);
        const events = await store.readEvents(tenant, { afterSeq: 0, limit: WRITES * 2 });
        expect(events.map((e) => e.seq)).toEqual(expected);
        expect(new Set(events.map((e) => e.eventId)).size).toBe(WRITES);
        for (const s of stores) expect(await s.headSeq(tenant)).toBe(WRITES);
        // No lost update: every writer saw the previous writer's committed record.
        const counter = await store.getRecord(tenant, 'counters', 'c');
        expect(counter?.version).toBe(WRITES);
        expect(counter?.data).toEqual({ n: WRITES });
      });

      it('a reader polling while writers run never sees seq n+1 without seq n', async () => {
        const tenant = freshTenant('reader');
        let writersDone = false;
        // Settles to the writers' error or null, so a failing writer is reported once, at the end.
        const writers = Promise.all(
          Array.from({ length: WRITES }, (_, i) => writeOne(stores[i % (INSTANCES - 1)], tenant, i)),
        ).then(
          () => null,
          (err: unknown) => err,
        );
        void writers.then(() => {
          writersDone = true;
        });
        const reader = stores[INSTANCES - 1];
        let seen = 0;
        let polls = 0;
        const gaps: string[] = [];
        while (seen < WRITES) {
          // Taken before reading: if the writers were done by then, this read sees all they committed.
          const finalRead = writersDone;
          const head = await reader.headSeq(tenant);
          const batch = await reader.readEvents(tenant, { afterSeq: seen, limit: 25 });
          polls += 1;
          for (const e of batch) {
            if (e.seq !== seen + 1) gaps.push(`after ${seen} got ${e.seq}`);
            seen = e.seq;
          }
          // The head a reader saw is never ahead of the events it can read.
          const visible = await reader.readEvents(tenant, { afterSeq: 0, limit: WRITES * 2 });
          if (visible.length < head) gaps.push(`head ${head} but only ${visible.length} events visible`);
          if (visible.some((e, i) => e.seq !== i + 1))
            gaps.push(`gap in ${visible.map((e) => e.seq).join(',')}`);
          if (finalRead && batch.length === 0) break;
          if (batch.length === 0) await sleep(1);
        }
        const failure = await writers;
        if (failure) throw failure;
        expect(gaps).toEqual([]);
        expect(seen).toBe(WRITES);
        expect(polls).toBeGreaterThan(1);
      });
    });
  });
}
