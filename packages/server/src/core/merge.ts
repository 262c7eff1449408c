/**
 * Three-way merge of a record's data against the version both sides started from (`merge` strategy).
 * Fields changed on one side only come from that side; nested objects merge by path; text fields
 * merge character-wise; a field changed differently on both sides is a clash, settled by the fallback
 * (`lww`: the side with the later HLC wins that field) or reported for manual resolution.
 */
import { mergeText } from './text-merge.ts';

export interface MergeOptions {
  /** Dotted paths of string fields that merge character-wise. */
  textFields: ReadonlySet<string>;
  /** Which side wins a clash under per-field lww. */
  clientWinsClash: boolean;
  fallback: 'lww' | 'manual';
}

export interface MergeOutcome {
  data: Record<string, unknown>;
  /** Paths changed on both sides that the fallback could not settle (fallback `manual`). */
  clashes: string[];
}

type Json = unknown;

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as Json[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as never)[k], (b as never)[k]));
}

const ABSENT = Symbol('absent');
type Slot = Json | typeof ABSENT;

function mergeValue(
  path: string,
  base: Slot,
  server: Slot,
  client: Slot,
  options: MergeOptions,
  clashes: string[],
): Slot {
  if (deepEqual(server, client)) return server;
  if (deepEqual(base, server)) return client;
  if (deepEqual(base, client)) return server;
  if (isObject(server) && isObject(client) && (base === ABSENT || isObject(base))) {
    const out: Record<string, Json> = {};
    const b = base === ABSENT ? {} : (base as Record<string, Json>);
    for (const key of new Set([...Object.keys(server), ...Object.keys(client)])) {
      const sub = path ? `${path}.${key}` : key;
      const value = mergeValue(
        sub,
        Object.hasOwn(b, key) ? b[key] : ABSENT,
        Object.hasOwn(server, key) ? server[key] : ABSENT,
        Object.hasOwn(client, key) ? client[key] : ABSENT,
        options,
        clashes,
      );
      if (value !== ABSENT) out[key] = value;
    }
    return out;
  }
  if (
    options.textFields.has(path) &&
    typeof server === 'string' &&
    typeof client === 'string' &&
    (base === ABSENT || typeof base === 'string')
  ) {
    return mergeText(base === ABSENT ? '' : base, server, client);
  }
  if (options.fallback === 'manual') {
    clashes.push(path || '/');
    return server;
  }
  return options.clientWinsClash ? client : server;
}

export function mergeRecords(
  base: Record<string, unknown>,
  server: Record<string, unknown>,
  client: Record<string, unknown>,
  options: MergeOptions,
): MergeOutcome {
  const clashes: string[] = [];
  const data = mergeValue('', base, server, client, options, clashes) as Record<string, unknown>;
  return { data, clashes };
}

/** A JSON description of what changed from `before` to `after`, by dotted path. */
export function diffRecords(
  before: Json,
  after: Json,
  path = '',
): { path: string; from?: Json; to?: Json }[] {
  if (deepEqual(before, after)) return [];
  if (isObject(before) && isObject(after)) {
    const out: { path: string; from?: Json; to?: Json }[] = [];
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
      const sub = path ? `${path}.${key}` : key;
      if (!Object.hasOwn(after, key)) out.push({ path: sub, from: before[key] });
      else if (!Object.hasOwn(before, key)) out.push({ path: sub, to: after[key] });
      else out.push(...diffRecords(before[key], after[key], sub));
    }
    return out;
  }
  const change: { path: string; from?: Json; to?: Json } = { path: path || '/' };
  if (before !== undefined) change.from = before;
  if (after !== undefined) change.to = after;
  return [change];
}

/**
 * The `from` side of diffRecords(before, after) as one object, path -> old value, in the same order,
 * without building the change list (the write path computes it for every update). Null when nothing
 * had an old value.
 */
export function previousValues(
  before: Record<string, Json>,
  after: Record<string, Json>,
): Record<string, Json> | null {
  const out: Record<string, Json> = {};
  return collectPrevious(before, after, '', out) ? out : null;
}

/** Adds the old value of each changed or removed path under `path`; whether it added any. */
function collectPrevious(
  before: Record<string, Json>,
  after: Record<string, Json>,
  path: string,
  out: Record<string, Json>,
): boolean {
  let found = false;
  // Keys only in `after` are additions: diffRecords gives them no `from`.
  for (const key of Object.keys(before)) {
    const sub = path ? `${path}.${key}` : key;
    const old = before[key];
    if (!Object.hasOwn(after, key)) {
      out[sub] = old;
      found = true;
      continue;
    }
    const now = after[key];
    if (old === now) continue;
    if (isObject(old) && isObject(now)) {
      if (collectPrevious(old, now, sub, out)) found = true;
    } else if (old !== undefined && !deepEqual(old, now)) {
      // As diffRecords names a changed value at the top of an empty-key path.
      out[sub || '/'] = old;
      found = true;
    }
  }
  return found;
}
