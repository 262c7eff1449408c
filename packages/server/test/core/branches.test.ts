/**
 * The pure side of branches (core/branches.ts): collection references, the diff of a branch
 * against the main line, the merge plan under each clash rule and the patch a clean merge writes.
 */

import { parseChannel } from '@syncbridge/protocol';
import { describe, expect, it } from 'vitest';
import {
  branchOf,
  diffBranch,
  mainCollection,
  mergePatchBetween,
  planMerge,
} from '../../src/core/branches.ts';

describe('branch names and references', () => {
  it('splits a reference into collection and branch', () => {
    expect(mainCollection('docs@review')).toBe('docs');
    expect(mainCollection('docs')).toBe('docs');
    expect(branchOf('docs@review')).toBe('review');
    expect(branchOf('docs')).toBeNull();
  });
});

describe('diffBranch', () => {
  it('says which side changed each path, with removals and additions', () => {
    const base = { a: 1, b: 2, c: { d: 1 }, gone: true };
    const main = { a: 1, b: 3, c: { d: 1 }, gone: true, added: 'm' };
    const branch = { a: 2, b: 4, c: { d: 2 } };
    expect(diffBranch(base, main, branch)).toEqual([
      { path: 'a', base: 1, main: 1, branch: 2, changedOn: 'branch' },
      { path: 'added', main: 'm', changedOn: 'main' },
      { path: 'b', base: 2, main: 3, branch: 4, changedOn: 'both' },
      { path: 'c.d', base: 1, main: 1, branch: 2, changedOn: 'branch' },
      { path: 'gone', base: true, main: true, changedOn: 'branch' },
    ]);
  });
});

describe('planMerge', () => {
  const base = { title: 'A', body: 'one two', n: 1 };
  const main = { data: { title: 'C', body: 'one two three', n: 1 }, hlc: '2' };
  const branch = { data: { title: 'B', body: 'zero one two', n: 2 }, hlc: '3' };

  it('merges one-sided changes and text fields; a clash goes to the later write under lww', () => {
    expect(planMerge({ strategy: 'merge', textFields: ['body'] }, base, main, branch)).toEqual({
      kind: 'write',
      data: { title: 'B', body: 'zero one two three', n: 2 },
    });
    expect(planMerge({}, base, main, { ...branch, hlc: '1' })).toMatchObject({
      kind: 'write',
      data: { title: 'C', n: 2 },
    });
  });

  it('hands clashes to the manual queue when the collection settles them by hand', () => {
    expect(planMerge({ strategy: 'manual' }, base, main, branch)).toEqual({
      kind: 'conflict',
      clashes: ['title', 'body'],
    });
    expect(
      planMerge({ strategy: 'merge', mergeFallback: 'manual', textFields: ['body'] }, base, main, branch),
    ).toEqual({ kind: 'conflict', clashes: ['title'] });
  });

  it('lets the later write win clashes when only mergeFallback (not the strategy) says manual', () => {
    expect(planMerge({ strategy: 'lww', mergeFallback: 'manual' }, base, main, branch)).toMatchObject({
      kind: 'write',
      data: { title: 'B' },
    });
  });

  it('has nothing to write when the main line already holds the branch', () => {
    expect(planMerge({}, base, main, { data: base, hlc: '9' })).toEqual({ kind: 'unchanged' });
  });
});

describe('mergePatchBetween', () => {
  it('names only what changed, removals as null, nested objects as nested patches', () => {
    const before = { a: 1, b: { c: 1, d: 2 }, gone: 1, same: [1] };
    const after = { a: 2, b: { c: 1, d: 3 }, same: [1], n: [2] };
    expect(mergePatchBetween(before, after)).toEqual({ a: 2, b: { d: 3 }, gone: null, n: [2] });
  });

  it('gives up on a changed value holding null, which a merge patch cannot say', () => {
    expect(mergePatchBetween({ a: 1 }, { a: null })).toBeNull();
    expect(mergePatchBetween({ a: { b: 1 } }, { a: { b: [null] } })).toBeNull();
    expect(mergePatchBetween({ a: null, b: 1 }, { a: null, b: 2 })).toEqual({ b: 2 });
  });
});

describe('branch channels', () => {
  it('parses records:<collection>@<branch>, filters included, and refuses bad branch names', () => {
    expect(parseChannel('records:docs@review?status=draft')).toEqual({
      kind: 'records',
      name: 'records:docs@review?status=draft',
      collection: 'docs@review',
      filter: { status: 'draft' },
    });
    for (const bad of [
      'records:docs@',
      'records:@review',
      'records:docs@..',
      'records:docs@a@b',
      'records:docs@a b',
    ]) {
      expect(parseChannel(bad)).toHaveProperty('error');
    }
  });
});
