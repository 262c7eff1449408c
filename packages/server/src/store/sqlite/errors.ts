/**
 * The one place SQLite driver errors are translated (better-sqlite3's SqliteError codes), with the same
 * outcomes PostgreSQL's translator gives for the same cause (store/postgres/sql.ts): the database held
 * by another connection past the busy timeout, full, or unreadable becomes SyncError('UNAVAILABLE'), so a
 * caller is told to retry rather than shown INTERNAL. Everything else (constraint violations, SyncErrors
 * thrown by a transaction's callback, bugs) passes through unchanged.
 *
 * It must never hide a programming error as UNAVAILABLE: only codes that mean "retrying later can work".
 */
import { SyncError } from '@syncbridge/protocol';
import { UNAVAILABLE_MESSAGES, type UnavailableCause } from '../unavailable.ts';

function causeOf(code: string): UnavailableCause | null {
  // Extended codes start with their primary code: SQLITE_BUSY_SNAPSHOT, SQLITE_IOERR_WRITE...
  const primary = /^SQLITE_[A-Z]+/.exec(code)?.[0];
  switch (primary) {
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return 'busy';
    case 'SQLITE_FULL':
      return 'full';
    case 'SQLITE_IOERR':
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_NOMEM':
    case 'SQLITE_PROTOCOL':
    case 'SQLITE_READONLY':
      return 'down';
    default:
      return null;
  }
}

export function translateSqliteError(err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof SyncError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return err;
  const cause = causeOf(code);
  if (cause === null) return err;
  return Object.assign(new SyncError('UNAVAILABLE', UNAVAILABLE_MESSAGES[cause]), { cause: err });
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * `target` with every method's errors translated, sync or async: what a SQLite store hands its callers.
 * Methods run on the target itself, so calls inside a store are not translated twice; object-valued
 * properties named in `nested` (a store's `webhooks`) are wrapped the same way.
 */
export function withSqliteErrors<T extends object>(target: T, nested: readonly (keyof T)[] = []): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj) as unknown;
      if (nested.includes(prop as keyof T) && value !== null && typeof value === 'object') {
        if (!wrapped.has(prop)) wrapped.set(prop, withSqliteErrors(value));
        return wrapped.get(prop);
      }
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(obj, args);
        } catch (err) {
          throw translateSqliteError(err);
        }
        return isPromise(result)
          ? result.then(undefined, (err: unknown) => {
              throw translateSqliteError(err);
            })
          : result;
      };
    },
  });
}
