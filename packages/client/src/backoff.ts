/**
 * Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0 and
 * min(cap, base * 2^attempt)), so that thousands of clients dropped by one server restart do not
 * come back in lockstep. After the server said it is going away (close code 1001: a restart or a
 * drain), retries are capped lower (`restartCapMs`), so clients are back within seconds of the server's
 * return instead of sleeping through a back-off that grew during the downtime.
 */

export interface BackoffOptions {
  /** The first retry waits up to this long. Default 500 ms. */
  baseMs?: number;
  /** No retry waits longer than this. Default 30 s. */
  capMs?: number;
  /**
   * After a close with code 1001 (the server is restarting or draining), no retry waits longer than
   * this until a connection is welcomed again. A refused connection costs the server nothing, and the
   * arrivals stay spread over this window (10,000 clients over 4 s: 2,500 a second). Default 4 s.
   */
  restartCapMs?: number;
}

/** The back-off to use while the server that said it was going away is not back yet. */
export function restartBackoff(options: BackoffOptions = {}): BackoffOptions {
  return { ...options, capMs: Math.min(options.capMs ?? 30_000, options.restartCapMs ?? 4_000) };
}

export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const base = options.baseMs ?? 500;
  const cap = options.capMs ?? 30_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
