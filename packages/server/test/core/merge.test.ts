import { describe, expect, it } from 'vitest';
import { diffRecords, mergeRecords } from '../../src/core/merge.ts';
import { mergeText } from '../../src/core/text-merge.ts';

const opts = (over: Partial<Parameters<typeof mergeRecords>[3]> = {}) => ({
  textFields: new Set<string>(),
  clientWinsClash: false,
  fallback: 'lww' as const,
  ...over,
});

describe('three-way record merge', () => {
  it('takes each field from the side that changed it', () => {
    const base = { title: 'a', done: false, tags: ['x'] };
    const server = { title: 'b', done: false, tags: ['x'] };
    const client = { title: 'a', done: true, tags: ['x'], owner: 'kim' };
    expect(mergeRecords(base, server, client, opts())).toEqual({
      data: { title: 'b', done: true, tags: ['x'], owner: 'kim' },
      clashes: [],
    });
  });

  it('merges nested objects by path and keeps deletions from either side', () => {
    const base = { meta: { a: 1, b: 2, c: 3 } };
    const server = { meta: { a: 10, b: 2 } };
    const client = { meta: { a: 1, b: 20, c: 3, d: 4 } };
    expect(mergeRecords(base, server, client, opts()).data).toEqual({ meta: { a: 10, b: 20, d: 4 } });
  });

  it('settles a clash by per-field lww, or reports it for manual resolution', () => {
    const base = { qty: 1, note: 'n' };
    const server = { qty: 2, note: 'n' };
    const client = { qty: 3, note: 'm' };
    expect(mergeRecords(base, server, client, opts({ clientWinsClash: true })).data).toEqual({
      qty: 3,
      note: 'm',
    });
    expect(mergeRecords(base, server, client, opts({ clientWinsClash: false })).data).toEqual({
      qty: 2,
      note: 'm',
    });
    expect(mergeRecords(base, server, client, opts({ fallback: 'manual' })).clashes).toEqual(['qty']);
  });

  it('merges declared text fields character-wise so both edits survive', () => {
    const base = { body: 'The quick fox jumps.' };
    const server = { body: 'The quick brown fox jumps.' };
    const client = { body: 'The quick fox jumps high.' };
    const merged = mergeRecords(base, server, client, opts({ textFields: new Set(['body']) }));
    expect(merged.data.body).toBe('The quick brown fox jumps high.');
    expect(merged.clashes).toEqual([]);
  });
});

describe('text merge', () => {
  it('is deterministic and keeps both insertions at the same place', () => {
    const a = mergeText('ab', 'aXb', 'aYb');
    expect(a).toBe(mergeText('ab', 'aXb', 'aYb'));
    expect(a.length).toBe(4);
    expect(a).toContain('X');
    expect(a).toContain('Y');
  });

  it('applies a deletion on one side and an insertion on the other', () => {
    expect(mergeText('hello big world', 'hello world', 'hello big world!')).toBe('hello world!');
    expect(mergeText('hello world', 'hello world!', 'Hello world')).toBe('Hello world!');
  });
});

describe('diff', () => {
  it('describes changes by path', () => {
    expect(diffRecords({ a: 1, b: { c: 2 } }, { a: 1, b: { c: 3 }, d: true })).toEqual([
      { path: 'b.c', from: 2, to: 3 },
      { path: 'd', to: true },
    ]);
  });
});
