/**
 * Branches of a record: what they are called and how one is compared with, and merged back into, the
 * main line. A branch `b` of record `id` in collection `c` keeps its own versions as record `id` of the
 * collection `c@b`, so its writes go through the same log (events of `c@b`), channel (`records:c@b`),
 * history and replay as any record, under `c`'s settings, schema and access rules. Pure: no I/O.
 */
import type { CollectionSettings } from '@syncbridge/protocol';
import { deepEqual, diffRecords, mergeRecords } from './merge.ts';

/** The main line's collection of a collection reference (`c@b` → `c`; `c` → `c`). */
export function mainCollection(ref: string): string {
  const at = ref.indexOf('@');
  return at < 0 ? ref : ref.slice(0, at);
}

/** The branch a collection reference names, or null for the main line. */
export function branchOf(ref: string): string | null {
  const at = ref.indexOf('@');
  return at < 0 ? null : ref.slice(at + 1);
}

export function branchCollection(collection: string, branch: string): string {
  return `${collection}@${branch}`;
}

export interface BranchDiffEntry {
  path: string;
  /** The value at the fork point (absent: the field did not exist). */
  base?: unknown;
  main?: unknown;
  branch?: unknown;
  /** Who changed the field since the fork: one side, or both (to different values). */
  changedOn: 'main' | 'branch' | 'both';
}

/** What each side changed since the fork, by dotted path (a path both changed alike is `both` too). */
export function diffBranch(
  base: Record<string, unknown>,
  main: Record<string, unknown>,
  branch: Record<string, unknown>,
): BranchDiffEntry[] {
  const onMain = new Map(diffRecords(base, main).map((c) => [c.path, c]));
  const onBranch = new Map(diffRecords(base, branch).map((c) => [c.path, c]));
  const paths = [...new Set([...onMain.keys(), ...onBranch.keys()])].sort();
  return paths.map((path) => {
    const m = onMain.get(path);
    const b = onBranch.get(path);
    const entry: BranchDiffEntry = { path, changedOn: m && b ? 'both' : m ? 'main' : 'branch' };
    const from = (m ?? b)!;
    if ('from' in from) entry.base = from.from;
    const mainValue = m ? m.to : from.from;
    const branchValue = b ? b.to : from.from;
    if (mainValue !== undefined) entry.main = mainValue;
    if (branchValue !== undefined) entry.branch = branchValue;
    return entry;
  });
}

export type MergePlan =
  /** Nothing to write: the main line already holds the branch's changes. */
  | { kind: 'unchanged' }
  /** Write `data` as the main line's next version, based on its current version. */
  | { kind: 'write'; data: Record<string, unknown> }
  /**
   * Both sides changed the same fields and the collection settles clashes by hand: hand the branch's
   * data to the write path based on the fork version, so the collection's strategy stores the conflict.
   */
  | { kind: 'conflict'; clashes: string[] };

/**
 * The three-way merge of a branch back into the main line (base = the fork point), with the
 * collection's text fields and clash rule: clashes go to the manual queue when the collection says
 * `strategy: manual`, or `strategy: merge` with `mergeFallback: manual`; otherwise the later write (by HLC) wins each clash.
 */
export function planMerge(
  settings: CollectionSettings,
  base: Record<string, unknown>,
  main: { data: Record<string, unknown>; hlc: string },
  branch: { data: Record<string, unknown>; hlc: string },
): MergePlan {
  const manual =
    settings.strategy === 'manual' || (settings.strategy === 'merge' && settings.mergeFallback === 'manual');
  const outcome = mergeRecords(base, main.data, branch.data, {
    textFields: new Set(settings.textFields ?? []),
    clientWinsClash: branch.hlc > main.hlc,
    fallback: manual ? 'manual' : 'lww',
  });
  if (outcome.clashes.length > 0) return { kind: 'conflict', clashes: outcome.clashes };
  if (deepEqual(outcome.data, main.data)) return { kind: 'unchanged' };
  return { kind: 'write', data: outcome.data };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The JSON merge patch (RFC 7396) that turns `before` into `after`, so a merge writes only what it
 * changes and a concurrent write to other fields survives; null when a patch cannot say it (a changed
 * value that contains null, which a merge patch reads as "remove").
 */
export function mergePatchBetween(
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): Record<string, unknown> | null {
  const patch: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (!Object.hasOwn(after, key)) {
      patch[key] = null;
      continue;
    }
    const from = Object.hasOwn(before, key) ? before[key] : undefined;
    const to = after[key];
    if (deepEqual(from, to)) continue;
    if (isObject(from) && isObject(to)) {
      const sub = mergePatchBetween(from, to);
      if (sub === null) return null;
      patch[key] = sub;
    } else if (JSON.stringify(to).includes('null')) {
      // Conservative: a changed value with a null anywhere in it (or the text "null") goes whole.
      return null;
    } else patch[key] = to;
  }
  return patch;
}
