/**
 * A compact diff of JSON values, for storing a superseded record version as a delta against the next
 * one (store/history/packing.ts). `diff(base, target)` gives a delta (a JSON value) that `patch(base,
 * delta)` turns back into a value equal to `target`, key order included, so a version rebuilt from
 * deltas serializes byte for byte as it was stored. `patch` never changes `base`: unchanged parts are
 * shared with it.
 *
 * Forms (arrays, to stay small once serialized):
 * - `null`: no change;
 * - `[0, value]`: the value itself;
 * - `[1, changes, removed, order?]`: an object's changed or added keys (key -> delta), the keys it lost,
 *   and its key order when that is not the base's (kept keys first, added keys after);
 * - `[2, prefix, suffix, middle]`: a string: the base's first `prefix` and last `suffix` characters
 *   around `middle`;
 * - `[3, prefix, suffix, middle]`: an array: likewise, `middle` holding whole elements;
 * - `[4, changes]`: an array of the same length, index -> delta.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Delta = null | [0, unknown] | [1, Record<string, Delta>, string[], string[]?] | SpliceDelta;
type SpliceDelta = [2, number, number, string] | [3, number, number, unknown[]] | [4, Record<string, Delta>];

/** Strings shorter than this are given whole: a splice would not be smaller. */
const MIN_SPLICE = 24;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets an own property, `__proto__` included (plain assignment would change the prototype). */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    // Same keys in the same order: a delta must keep the order too.
    if (ka[i] !== kb[i]) return false;
    const k = ka[i];
    if (!jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
  }
  return true;
}

function diffObject(base: Record<string, unknown>, target: Record<string, unknown>): Delta {
  const changes: Record<string, Delta> = {};
  let changed = false;
  const removed: string[] = [];
  const kept: string[] = [];
  const added: string[] = [];
  for (const k of Object.keys(base)) {
    if (Object.hasOwn(target, k)) kept.push(k);
    else removed.push(k);
  }
  for (const k of Object.keys(target)) {
    if (Object.hasOwn(base, k)) {
      const d = diff(base[k], target[k]);
      if (d !== null) {
        setOwn(changes, k, d);
        changed = true;
      }
    } else {
      setOwn(changes, k, [0, target[k]]);
      added.push(k);
      changed = true;
    }
  }
  const expected = kept.concat(added);
  const actual = Object.keys(target);
  const sameOrder = expected.every((k, i) => k === actual[i]);
  if (!changed && removed.length === 0 && sameOrder) return null;
  return sameOrder ? [1, changes, removed] : [1, changes, removed, actual];
}

function diffArray(base: unknown[], target: unknown[]): Delta {
  if (base.length === target.length) {
    const changes: Record<string, Delta> = {};
    let n = 0;
    for (let i = 0; i < target.length; i++) {
      const d = diff(base[i], target[i]);
      if (d !== null) {
        changes[i] = d;
        n++;
      }
    }
    if (n === 0) return null;
    if (n <= Math.max(1, target.length / 2)) return [4, changes];
    return [0, target];
  }
  let prefix = 0;
  const max = Math.min(base.length, target.length);
  while (prefix < max && jsonEqual(base[prefix], target[prefix])) prefix++;
  let suffix = 0;
  while (
    suffix < max - prefix &&
    jsonEqual(base[base.length - 1 - suffix], target[target.length - 1 - suffix])
  ) {
    suffix++;
  }
  if (prefix + suffix === 0) return [0, target];
  return [3, prefix, suffix, target.slice(prefix, target.length - suffix)];
}

function diffString(base: string, target: string): Delta {
  if (target.length < MIN_SPLICE || base.length < MIN_SPLICE) return [0, target];
  const max = Math.min(base.length, target.length);
  let prefix = 0;
  while (prefix < max && base.charCodeAt(prefix) === target.charCodeAt(prefix)) prefix++;
  let suffix = 0;
  while (
    suffix < max - prefix &&
    base.charCodeAt(base.length - 1 - suffix) === target.charCodeAt(target.length - 1 - suffix)
  ) {
    suffix++;
  }
  // Never split a surrogate pair: the middle must be valid text on its own.
  if (prefix > 0 && isHighSurrogate(target.charCodeAt(prefix - 1))) prefix--;
  if (suffix > 0 && isLowSurrogate(target.charCodeAt(target.length - suffix))) suffix--;
  if (prefix + suffix < MIN_SPLICE) return [0, target];
  return [2, prefix, suffix, target.slice(prefix, target.length - suffix)];
}

const isHighSurrogate = (c: number) => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number) => c >= 0xdc00 && c <= 0xdfff;

/** The delta that turns `base` into `target` (null: they are equal). */
export function diff(base: unknown, target: unknown): Delta {
  if (base === target) return null;
  if (isObject(base) && isObject(target)) return diffObject(base, target);
  if (Array.isArray(base) && Array.isArray(target)) return diffArray(base, target);
  if (typeof base === 'string' && typeof target === 'string') return diffString(base, target);
  return [0, target];
}

export class DeltaError extends Error {}

/** `base` with `delta` applied; `base` itself is left as it was. */
export function patch(base: unknown, delta: Delta): unknown {
  if (delta === null) return base;
  if (!Array.isArray(delta)) throw new DeltaError('malformed delta');
  switch (delta[0]) {
    case 0:
      return delta[1];
    case 1: {
      if (!isObject(base)) throw new DeltaError('object delta on a non-object');
      const [, changes, removed, order] = delta;
      const out: Record<string, unknown> = {};
      const value = (k: string) =>
        Object.hasOwn(changes, k) ? patch(Object.hasOwn(base, k) ? base[k] : undefined, changes[k]) : base[k];
      if (order) {
        for (const k of order) setOwn(out, k, value(k));
        return out;
      }
      const gone = new Set(removed);
      for (const k of Object.keys(base)) if (!gone.has(k)) setOwn(out, k, value(k));
      for (const k of Object.keys(changes)) if (!Object.hasOwn(base, k)) setOwn(out, k, value(k));
      return out;
    }
    case 2: {
      if (typeof base !== 'string') throw new DeltaError('string delta on a non-string');
      const [, prefix, suffix, middle] = delta;
      return base.slice(0, prefix) + middle + base.slice(base.length - suffix);
    }
    case 3: {
      if (!Array.isArray(base)) throw new DeltaError('array delta on a non-array');
      const [, prefix, suffix, middle] = delta;
      return [...base.slice(0, prefix), ...middle, ...base.slice(base.length - suffix)];
    }
    case 4: {
      if (!Array.isArray(base)) throw new DeltaError('array delta on a non-array');
      const out = base.slice();
      for (const [i, d] of Object.entries(delta[1])) out[Number(i)] = patch(base[Number(i)], d);
      return out;
    }
    default:
      throw new DeltaError('malformed delta');
  }
}
