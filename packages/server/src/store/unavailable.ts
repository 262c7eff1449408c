/**
 * The messages of SyncError('UNAVAILABLE') by cause, shared by every store's error translator
 * (store/sqlite/errors.ts, store/postgres/sql.ts), so the same cause reads the same on every store.
 */
export const UNAVAILABLE_MESSAGES = {
  /** Another connection held what the statement needed past its wait (a lock or busy timeout). */
  busy: 'database busy: another connection holds its lock; retry',
  /** No space left for the write. */
  full: 'database full: no space left for this write',
  /** Not reachable, not accepting work, or failing I/O. */
  down: 'database unavailable',
} as const;

export type UnavailableCause = keyof typeof UNAVAILABLE_MESSAGES;
