/**
 * `SqliteStore` on `:memory:`: what it writes it reads back (records, the log, kept versions, snapshots,
 * devices, API keys), a rolled-back write leaves nothing, two in-memory stores are separate databases,
 * and closing it is clean. (Its reader is the writer's connection: a second one would open another,
 * empty database.)
 */
import type { LogEvent, SyncRecord } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';

const TS = '2026-12-08T00:00:00.000Z';

function record(id: string, data: Record<string, unknown>, version = 1): SyncRecord {
  const hlc = `000000000000${version}-0000-node`;
  return { collection: 'notes', id, data, version, hlc, updatedAt: TS, updatedBy: 'u1', deleted: false };
}

function entry(seq: number, r: SyncRecord): LogEvent {
  return {
    seq,
    eventId: `e-${seq}`,
    kind: 'record',
    collection: r.collection,
    id: r.id,
    op: 'put',
    version: r.version,
    data: r.data,
    hlc: r.hlc,
    actor: r.updatedBy,
    ts: TS,
  };
}

async function put(store: SqliteStore, tenant: string, records: SyncRecord[]): Promise<number> {
  return store.transaction(async (tx) => {
    const { head } = await tx.lockTenant(tenant);
    const events = records.map((r, i) => entry(head + i + 1, r));
    await tx.writeBatch(tenant, { records, events, results: [], head: head + records.length });
    return head + records.length;
  });
}

describe('SqliteStore on :memory:', () => {
  let store: SqliteStore;
  beforeAll(async () => {
    store = new SqliteStore({ file: ':memory:' });
    await store.migrate();
  });
  afterAll(async () => store?.close());

  it('reads back the records, the log and the versions it wrote', async () => {
    expect(await put(store, 't1', [record('a', { text: 'one' }), record('b', { text: 'two' })])).toBe(2);
    expect(await put(store, 't1', [record('a', { text: 'one, edited' }, 2)])).toBe(3);

    expect(await store.headSeq('t1')).toBe(3);
    expect((await store.getRecord('t1', 'notes', 'a'))?.data).toEqual({ text: 'one, edited' });
    const listed = await store.listRecords('t1', 'notes', { limit: 10, filter: {}, includeDeleted: false });
    expect(listed.map((r) => [r.id, r.version])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    const log = await store.readEvents('t1', { afterSeq: 0, limit: 10 });
    expect(log.map((e) => [e.seq, e.id, e.version])).toEqual([
      [1, 'a', 1],
      [2, 'b', 1],
      [3, 'a', 2],
    ]);
    expect((await store.history.readVersion('t1', 'notes', 'a', 1))?.data).toEqual({ text: 'one' });
    const snap = await store.snapshot('t1', 'notes', {});
    expect({ cursor: snap.cursor, ids: snap.records.map((r) => r.id) }).toEqual({
      cursor: 3,
      ids: ['a', 'b'],
    });
    expect(await store.listTenants()).toEqual(['t1']);
  });

  it('keeps devices, cursors and API keys', async () => {
    await store.putDevice('t1', {
      id: 'phone',
      user: 'u1',
      categories: null,
      createdAt: TS,
      lastSeenAt: TS,
    } as Parameters<SqliteStore['putDevice']>[1]);
    expect((await store.getDevice('t1', 'u1', 'phone'))?.id).toBe('phone');
    await store.saveCursor('t1', 'u1', 'phone', 3);
    expect(await store.getCursor('t1', 'u1', 'phone')).toBe(3);
    await store.createApiKey({ id: 'k1', tenant: 't1', label: 'ci', hash: 'ab'.repeat(32) });
    expect(await store.findApiKey('ab'.repeat(32))).toMatchObject({ id: 'k1', tenant: 't1' });
  });

  it('a write that rolls back leaves nothing behind', async () => {
    await expect(
      store.transaction(async (tx) => {
        const { head } = await tx.lockTenant('t1');
        const r = record('c', { text: 'never' });
        await tx.writeBatch('t1', {
          records: [r],
          events: [entry(head + 1, r)],
          results: [],
          head: head + 1,
        });
        throw new Error('middleware refused');
      }),
    ).rejects.toThrow('middleware refused');
    expect(await store.getRecord('t1', 'notes', 'c')).toBeNull();
    expect(await store.headSeq('t1')).toBe(3);
    expect(await put(store, 't1', [record('c', { text: 'now' })])).toBe(4);
  });

  it('is a database of its own: another :memory: store starts empty, and each closes cleanly', async () => {
    const other = new SqliteStore({ file: ':memory:' });
    await other.migrate();
    expect(await other.headSeq('t1')).toBe(0);
    expect(await other.getRecord('t1', 'notes', 'a')).toBeNull();
    await put(other, 't1', [record('z', { only: 'here' })]);
    expect(await store.getRecord('t1', 'notes', 'z')).toBeNull();
    await other.close();
    await other.close();
    expect((await store.getRecord('t1', 'notes', 'a'))?.version).toBe(2);
  });
});
