/**
 * Reaching the database and the bus when a server starts: an outside service that is down (not started
 * yet, restarting, a wrong host) is retried with exponential backoff for a bounded time
 * (`connectRetryMs`), with one log line per retry naming the service, where it is and why it failed;
 * then the start fails with a `StartupError` the command prints as one line. It never retries a
 * failure that waiting cannot fix (a wrong password, a missing database) and never prints a password.
 */
import type { Logger } from 'pino';
import { Backoff, type BackoffOptions } from '../core/backoff.ts';

/** An expected failure to start: the `syncbridge` command prints its message alone and exits 1. */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** `host:port` of a service URL, without credentials (the default port when the URL names none). */
export function whereIs(url: string, defaultPort: number): string {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname || 'localhost';
    const path = parsed.pathname.length > 1 ? parsed.pathname : '';
    return `${host}:${parsed.port || defaultPort}${path}`;
  } catch {
    return 'an unparsable URL';
  }
}

/** The most telling words of a connection failure: the root cause's message, or its code. */
export function causeOf(err: unknown): string {
  let e: unknown = err;
  // Translated errors keep the driver's error as `cause`; a dual-stack connect fails as an AggregateError.
  for (let depth = 0; depth < 5; depth++) {
    if (e instanceof AggregateError && e.errors.length > 0) e = e.errors[0];
    else if (e instanceof Error && e.cause !== undefined && (e.message === '' || isGeneric(e.message)))
      e = e.cause;
    else break;
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    if (e.message) return e.message;
    if (typeof code === 'string') return code;
  }
  return String(e);
}

function isGeneric(message: string): boolean {
  return message === 'database unavailable';
}

export interface ReachOptions {
  /** What is being reached, for messages: `PostgreSQL at db.internal:5432/app`. */
  what: string;
  /** Retry for at most this long (ms) from the first attempt; 0: try once. */
  retryMs: number;
  logger: Logger;
  /** Whether waiting may fix this failure (a refused or timed-out connection); others fail at once. */
  transient: (err: unknown) => boolean;
  /** Settings that change the outcome, named in the final message. */
  hint?: string;
}

/** 250 ms, doubling up to 2 s, without jitter (one process waits, nobody to spread out from). */
const STARTUP_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 2000, factor: 2, jitter: 0 };

/**
 * Runs `attempt` until it succeeds, retrying transient failures after 250 ms, 500 ms, 1 s, 2 s, 2 s...
 * until `retryMs` has passed; then throws a StartupError naming the service and the last cause.
 */
export async function reach<T>(options: ReachOptions, attempt: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const backoff = new Backoff(STARTUP_BACKOFF);
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      const cause = causeOf(err);
      if (!options.transient(err)) {
        throw new StartupError(`cannot use ${options.what}: ${cause}`, { cause: err });
      }
      const elapsed = Date.now() - started;
      const delay = backoff.next();
      if (elapsed + delay > options.retryMs) {
        const waited = tries === 1 ? '' : ` (tried ${tries} times in ${(elapsed / 1000).toFixed(1)} s)`;
        throw new StartupError(
          `cannot reach ${options.what}: ${cause}${waited}${options.hint ? `; ${options.hint}` : ''}`,
          { cause: err },
        );
      }
      options.logger.warn(`${options.what} unreachable (${cause}); retrying in ${delay} ms`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** What a start that gave up on a service tells the operator to change. */
export const RETRY_HINT = 'SYNCBRIDGE_CONNECT_RETRY_MS sets how long a start retries';
