/**
 * The NUL character (U+0000) in input: PostgreSQL's text and jsonb cannot hold it, and SQLite would
 * store it, so the same write would succeed on one store and fail on the other (and on PostgreSQL only
 * inside a group commit, after it had joined other writers' batch). Every outside input is therefore
 * refused with BAD_REQUEST before it reaches a store: REST bodies, query strings and path parameters,
 * WebSocket frames, token subjects, and every write the write path is handed (connectors, inbound
 * webhooks). Strings and object keys are both checked.
 *
 * It must never recurse (a hostile document may nest deeply) and never build more than one path.
 */
import { SyncError } from './errors.ts';

const NUL = '\u0000';

interface Step {
  value: unknown;
  key: string | null;
  parent: Step | null;
}

function pathOf(step: Step | null): string {
  const parts: string[] = [];
  for (let s = step; s && s.key !== null; s = s.parent) {
    parts.push(s.key.replaceAll(NUL, '\\u0000').replace(/~/g, '~0').replace(/\//g, '~1'));
  }
  return parts.length === 0 ? '/' : `/${parts.reverse().join('/')}`;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Whether any string or key holds U+0000: the fast walk, allocating nothing but its stack. */
function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes(NUL);
  if (value === null || typeof value !== 'object') return false;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (v.includes(NUL)) return true;
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (typeof item === 'string') {
          if (item.includes(NUL)) return true;
        } else if (item !== null && typeof item === 'object') stack.push(item);
      }
    } else if (v !== null && typeof v === 'object' && isPlainObject(v)) {
      const obj = v as Record<string, unknown>;
      for (const k in obj) {
        if (k.includes(NUL)) return true;
        const item = obj[k];
        if (typeof item === 'string') {
          if (item.includes(NUL)) return true;
        } else if (item !== null && typeof item === 'object') stack.push(item);
      }
    }
  }
  return false;
}

/**
 * The JSON pointer of the first string or key holding U+0000, or null when there is none. Only JSON
 * values are looked into (arrays and plain objects); a Buffer (a raw body) is not. Clean input (the
 * usual case) takes one walk that builds no paths.
 */
export function nulPath(value: unknown): string | null {
  if (!hasNul(value)) return null;
  const stack: Step[] = [{ value, key: null, parent: null }];
  while (stack.length > 0) {
    const step = stack.pop()!;
    const v = step.value;
    if (typeof v === 'string') {
      if (v.includes(NUL)) return pathOf(step);
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: String(i), parent: step });
    } else if (v !== null && typeof v === 'object' && isPlainObject(v)) {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i]!;
        const at: Step = { value: child, key: k, parent: step };
        if (k.includes(NUL)) return pathOf(at);
        stack.push(at);
      }
    }
  }
  return null;
}

/** Throws BAD_REQUEST naming where `value` (called `what`) holds U+0000. */
export function assertNoNul(value: unknown, what: string): void {
  const at = nulPath(value);
  if (at === null) return;
  throw new SyncError(
    'BAD_REQUEST',
    `${what} holds the NUL character (\\u0000) at ${at}; text with it cannot be stored`,
    { path: at },
  );
}
