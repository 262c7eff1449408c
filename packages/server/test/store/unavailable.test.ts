/**
 * The write path on a store that is busy (SQLite held by another process past the busy timeout): every
 * writer of the group commit is told UNAVAILABLE with the store's reason (retry with the same mid), the
 * batch is not re-run one write at a time against the busy store, and writes go through once it is free.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/principal.ts';
import { CollectionRegistry } from '../../src/core/collections.ts';
import { SyncError } from '../../src/core/errors.ts';
import { HybridClock } from '../../src/core/hlc.ts';
import { LogWriter } from '../../src/log/log-writer.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { UNAVAILABLE_MESSAGES } from '../../src/store/unavailable.ts';

const principal: Principal = { tenant: 'acme', user: 'alice', roles: [], via: 'jwt' };

describe('a busy store in the write path (sqlite)', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('fails the whole batch with UNAVAILABLE once, then commits when the lock is free', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'syncbridge-busy-'));
    dirs.push(dir);
    const file = join(dir, 'syncbridge.db');
    const store = new SqliteStore({ file, busyTimeoutMs: 100 });
    const transaction = store.transaction.bind(store);
    let transactions = 0;
    store.transaction = (fn) => {
      transactions += 1;
      return transaction(fn);
    };
    const writer = new LogWriter({
      store,
      collections: new CollectionRegistry(store),
      clock: new HybridClock('n1'),
      logger: pino({ level: 'silent' }),
    });
    const put = (i: number) =>
      writer.mutate(principal, [{ mid: `m${i}`, collection: 'docs', id: `d${i}`, op: 'put', data: { i } }]);

    const other = new Database(file);
    other.exec('BEGIN EXCLUSIVE');
    const outcomes = await Promise.all([1, 2, 3, 4].map((i) => put(i).catch((e: unknown) => e)));
    other.exec('ROLLBACK');
    other.close();
    for (const err of outcomes) {
      expect(err).toBeInstanceOf(SyncError);
      expect(err).toMatchObject({ code: 'UNAVAILABLE', message: UNAVAILABLE_MESSAGES.busy });
    }
    expect(transactions, 'one transaction for the batch, none per write').toBe(1);

    // The same mids go through once the store is free.
    const retried = await Promise.all([1, 2, 3, 4].map((i) => put(i)));
    expect(retried.map((r) => r[0]!.status)).toEqual(['applied', 'applied', 'applied', 'applied']);
    expect(await store.headSeq('acme')).toBe(4);
    await writer.drain();
    await store.close();
  });
});
