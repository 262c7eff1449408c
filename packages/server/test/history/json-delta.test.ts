/**
 * The JSON delta of compact history: for random edits of random documents, patching the next version
 * with the delta gives back the old one exactly (equal, and the same JSON text: key order included),
 * without changing the version patched.
 */
import { describe, expect, it } from 'vitest';
import { diff, patch } from '../../src/store/history/json-delta.ts';
import { KEYFRAME_EVERY, packEntry, resolvePackedSync, runOf } from '../../src/store/history/packing.ts';

/** A small deterministic generator, so a failure reproduces. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type R = () => number;
const pick = <T>(r: R, xs: T[]) => xs[Math.floor(r() * xs.length)]!;

function value(r: R, depth: number): unknown {
  const k = Math.floor(r() * (depth > 2 ? 4 : 7));
  switch (k) {
    case 0:
      return null;
    case 1:
      return r() < 0.5;
    case 2:
      return Math.floor(r() * 1000) / 10;
    case 3:
      return 'x'.repeat(Math.floor(r() * 40)) + String(Math.floor(r() * 100)) + '😀é';
    case 4:
      return Array.from({ length: Math.floor(r() * 6) }, () => value(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = 0; i < Math.floor(r() * 6); i++)
        o[pick(r, ['a', 'b', 'c', '1', '__proto__', 'long key'])] = value(r, depth + 1);
      return o;
    }
  }
}

function mutate(r: R, v: unknown, depth = 0): unknown {
  if (r() < 0.2 || depth > 4) return value(r, depth);
  if (typeof v === 'string') {
    const at = Math.floor(r() * (v.length + 1));
    return v.slice(0, at) + pick(r, ['', 'y', 'zz', '😀']) + v.slice(at + Math.floor(r() * 3));
  }
  if (Array.isArray(v)) {
    const out = v.slice();
    const op = Math.floor(r() * 3);
    const i = Math.floor(r() * (out.length + 1));
    if (op === 0) out.splice(i, 0, value(r, depth + 1));
    else if (op === 1) out.splice(i, 1);
    else if (out.length > 0) out[i % out.length] = mutate(r, out[i % out.length], depth + 1);
    return out;
  }
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v);
    const op = Math.floor(r() * 4);
    if (op === 0) entries.push([pick(r, ['d', 'e', 'b', '__proto__']), value(r, depth + 1)]);
    else if (op === 1) entries.splice(Math.floor(r() * entries.length), 1);
    else if (op === 2) entries.reverse();
    else if (entries.length > 0) {
      const i = Math.floor(r() * entries.length);
      entries[i] = [entries[i]![0], mutate(r, entries[i]![1], depth + 1)];
    }
    const o: Record<string, unknown> = {};
    for (const [key, val] of entries)
      Object.defineProperty(o, key, { value: val, enumerable: true, writable: true, configurable: true });
    return o;
  }
  return value(r, depth);
}

describe('json delta', () => {
  it('rebuilds every old value exactly from the next one', () => {
    const r = rng(42);
    for (let round = 0; round < 3000; round++) {
      const next = { doc: value(r, 0), body: 'lorem ipsum '.repeat(10) };
      const old = mutate(r, next);
      const frozen = JSON.stringify(next);
      const delta = diff(next, old);
      const rebuilt = patch(next, JSON.parse(JSON.stringify(delta)));
      expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(old));
      expect(rebuilt).toEqual(old);
      expect(JSON.stringify(next)).toBe(frozen);
    }
  });

  it('keeps a small edit of a long text small', () => {
    const text = 'word '.repeat(2000);
    const delta = diff({ text: `${text}!` }, { text });
    expect(JSON.stringify(delta).length).toBeLessThan(40);
  });

  it('bounds a chain of deltas by keyframes', () => {
    // 100 versions of one record; each packed against the next, as the compaction job does.
    const versions = Array.from({ length: 100 }, (_, i) => ({ n: i, text: `v${i} ${'text '.repeat(200)}` }));
    const rows: { seq: number; data: string | null; packed: Buffer | null }[] = versions.map((v, i) => ({
      seq: i + 1,
      data: JSON.stringify(v),
      packed: null,
    }));
    let olderRun = 0;
    for (let i = 0; i < rows.length - 1; i++) {
      const packed = packEntry(versions[i]!, versions[i + 1]!, olderRun);
      olderRun = runOf(packed);
      expect(olderRun).toBeLessThan(KEYFRAME_EVERY);
      rows[i] = { seq: i + 1, data: null, packed };
    }
    let fetched = 0;
    for (let i = 0; i < rows.length - 1; i++) {
      const got = resolvePackedSync([{ collection: 'c', id: 'x', seq: i + 1 }], (_c, _id, from, limit) => {
        const page = rows.filter((row) => row.seq >= from).slice(0, limit);
        fetched = Math.max(fetched, page.length);
        return page;
      });
      expect(got.get(i + 1)).toEqual(versions[i]);
    }
    expect(fetched).toBeLessThanOrEqual(KEYFRAME_EVERY + 3);
  });
});
