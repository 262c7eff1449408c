/**
 * Helpers for the client suites: tokens and record listings over the server's real REST API, a
 * status recorder, a free port that nothing listens on, and bounded polling.
 */
import { createServer } from 'node:net';
import type { SyncRecord } from '@syncbridge/protocol';
import { TEST_ADMIN_KEY } from '../../server/test/helpers/server.ts';
import type { StatusChange, SyncClient } from '../src/index.ts';

/** Mints a user token through `POST /v1/auth/token` with the admin key. */
export async function mintToken(
  baseUrl: string,
  tenant: string,
  user: string,
  options: { roles?: string[]; ttlSeconds?: number } = {},
): Promise<string> {
  const res = await fetch(`${baseUrl}/v1/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': TEST_ADMIN_KEY },
    body: JSON.stringify({ tenant, user, ...options }),
  });
  if (!res.ok) throw new Error(`token: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** Every live record of a collection, as the server's REST API lists it, by id. */
export async function serverRecords(
  baseUrl: string,
  token: string,
  collection: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${baseUrl}/v1/records/${collection}?limit=1000`, {
    headers: { authorization: `Bearer ${token}` },
  });
  if (!res.ok) throw new Error(`list: HTTP ${res.status} ${await res.text()}`);
  const { records } = (await res.json()) as { records: SyncRecord[] };
  return Object.fromEntries(records.map((r) => [r.id, r.data]));
}

/** The client's cached view of a collection, by id, in the same shape as `serverRecords`. */
export function cachedRecords(client: SyncClient, collection: string): Record<string, unknown> {
  return Object.fromEntries(
    client
      .collection(collection)
      .list()
      .map((r) => [r.id, r.data]),
  );
}

/**
 * Polls `check` every 10 ms until it returns true; fails with `what` after `timeoutMs`, adding what
 * `explain` says about the state at that moment.
 */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 10_000,
  explain?: () => unknown,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      const state = explain ? `; state: ${JSON.stringify(explain())}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${state}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Records every status transition of a client. */
export function recordStatus(client: SyncClient): StatusChange[] {
  const changes: StatusChange[] = [];
  client.on('status', (change) => changes.push(change));
  return changes;
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Settles to 'pending' if `promise` has not settled by now (after the current task). */
export async function isPending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const winner = await Promise.race([
    promise.then(
      () => 'settled',
      () => 'settled',
    ),
    new Promise((r) => setTimeout(() => r(marker), 0)),
  ]);
  return winner === marker;
}

/** A base backoff small enough for tests. */
export const FAST_BACKOFF = { baseMs: 50, capMs: 400 };
