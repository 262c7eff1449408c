/**
 * External services integration suites need (PostgreSQL, ...): reachability checks and the rule for
 * when one is missing. Under CI=true a missing service fails the run; locally the suite is skipped
 * with a loud warning, so nobody mistakes a skipped suite for a passing one.
 */
import pg from 'pg';

/** The URL with any password masked, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable url>';
  }
}

/** True when a PostgreSQL server accepts a connection (2 s timeout) and answers a query at `url`. */
export async function postgresAvailable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Decides whether a suite needing `name` runs: true when the service is up. When it is not, throws
 * under CI=true (a CI run must never silently skip), otherwise warns and returns false.
 * `name` says what and where, e.g. `PostgreSQL at postgres://127.0.0.1:5432/test`.
 */
export function requireService(name: string, ok: boolean): boolean {
  if (ok) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${name} unreachable, and CI=true requires it: start the service or fix its URL`);
  }
  console.warn(`${name} unreachable: skipping`);
  return false;
}

export const REDIS_URL = process.env.SYNCBRIDGE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.SYNCBRIDGE_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** True when something accepts a TCP connection at the URL's host and port within 2 s. */
export async function tcpAvailable(url: string, defaultPort: number): Promise<boolean> {
  const { createConnection } = await import('node:net');
  const parsed = new URL(url);
  return new Promise((resolve) => {
    const socket = createConnection({ host: parsed.hostname, port: Number(parsed.port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
