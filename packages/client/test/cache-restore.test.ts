/**
 * What the cache shows once it restores an earlier run (the replica's records and the queued writes):
 * the fast path taken for 100,000 records at start must show the same view as a record-by-record rebuild.
 */
import { describe, expect, it } from 'vitest';
import { CollectionCache, type CollectionChange } from '../src/cache.ts';

function entry(id: string, data: Record<string, unknown> | null, version = 1) {
  return { id, data, version, seq: 10 };
}

describe('CollectionCache.restore', () => {
  it('lists restored records by id, with restored writes applied, in one storage change', () => {
    const cache = new CollectionCache('items');
    const seen: CollectionChange[] = [];
    cache.events.on('change', (change) => seen.push(change));
    cache.restore(
      [entry('c', { n: 3 }), entry('a', { n: 1 }), entry('b', { n: 2 }), entry('gone', null, 4)],
      [
        { mid: 'm1', id: 'b', op: 'increment', data: { n: 10 }, sent: true },
        { mid: 'm2', id: 'new', op: 'put', data: { n: 9 }, sent: true },
      ],
    );
    expect(cache.list().map((r) => [r.id, r.data, r.version, r.pending])).toEqual([
      ['a', { n: 1 }, 1, false],
      ['b', { n: 12 }, 1, true],
      ['c', { n: 3 }, 1, false],
      ['new', { n: 9 }, null, true],
    ]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.source).toBe('storage');
    expect(seen[0]!.changes.map((c) => c.id).sort()).toEqual(['a', 'b', 'c', 'new']);
    expect(seen[0]!.changes.every((c) => c.before === undefined)).toBe(true);
  });

  it('keeps a newer record and a write made before the restore', () => {
    const cache = new CollectionCache('items');
    cache.addPending({ mid: 'm0', id: 'a', op: 'patch', data: { local: true }, sent: false });
    cache.restore([entry('a', { n: 1 }), entry('b', { n: 2 })], []);
    cache.restore([entry('b', { n: 0 }, 1)], []);
    expect(cache.list().map((r) => [r.id, r.data, r.pending])).toEqual([
      ['a', { n: 1, local: true }, true],
      ['b', { n: 2 }, false],
    ]);
  });
});
