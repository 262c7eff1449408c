/** Shared bits of the connector suites: polling with a deadline, REST as an admin, metric values. */

import type { TestWsClient } from '../helpers/ws-client.ts';
import { type Json, rest } from '../http/rest.ts';

/** Polls until `read` returns a value that passes `test`; fails with the last value after the timeout. */
export async function waitFor<T>(
  read: () => Promise<T> | T,
  test: (value: T) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await read();
  while (!test(last)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 10));
    last = await read();
  }
  return last;
}

/** A REST client acting as the tenant's admin (admin key + X-Tenant). */
export function adminRest(url: string, adminKey: string, tenant: string) {
  return (method: string, path: string, json?: unknown) =>
    rest(url, method, path, { apiKey: adminKey, tenant, json });
}

/** The value of one Prometheus series (name with labels as printed), or undefined. */
export async function metricValue(
  url: string,
  adminKey: string,
  series: string,
): Promise<number | undefined> {
  const res = await rest(url, 'GET', '/metrics', { apiKey: adminKey });
  for (const line of String(res.text).split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

/**
 * Topic frames (`tick`, `depth`, `ticks`) are not part of the log's ServerMessage union: the suites read
 * every frame as loosely typed JSON.
 */
export type Frame = Json;

export function frames(client: TestWsClient): Frame[] {
  return client.messages as Frame[];
}

export function waitForFrame(
  client: TestWsClient,
  test: (m: Frame) => boolean,
  timeoutMs?: number,
): Promise<Frame> {
  return client.waitFor((m) => test(m as Frame), timeoutMs);
}
