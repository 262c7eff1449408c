/**
 * Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0 and
 * min(cap, base * 2^attempt)), so that thousands of clients dropped by one server restart do not
 * come back in lockstep.
 */

export interface BackoffOptions {
  /** The first retry waits up to this long. Default 500 ms. */
  baseMs?: number;
  /** No retry waits longer than this. Default 30 s. */
  capMs?: number;
}

export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const base = options.baseMs ?? 500;
  const cap = options.capMs ?? 30_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
