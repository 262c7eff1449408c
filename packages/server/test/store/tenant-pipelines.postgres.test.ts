/**
 * The log writer's commit pipelines per tenant on PostgreSQL: one tenant's commits in seq order and
 * heard in order, and a tenant whose commit waits on a lock (then fails) delays no other tenant.
 */
import { randomBytes } from 'node:crypto';
import type { LogEvent } from '@syncbridge/protocol';
import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Principal } from '../../src/auth/principal.ts';
import { CollectionRegistry } from '../../src/core/collections.ts';
import { SyncError } from '../../src/core/errors.ts';
import { HybridClock } from '../../src/core/hlc.ts';
import { LogWriter } from '../../src/log/log-writer.ts';
import { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { postgresAvailable, redactUrl, requireService } from '../helpers/services.ts';

const url = process.env.SYNCBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const available = requireService(`PostgreSQL at ${redactUrl(url)}`, await postgresAvailable(url));

const who = (tenant: string): Principal => ({ tenant, user: 'alice', roles: [], via: 'jwt' });

describe.skipIf(!available)('commit pipelines per tenant (postgres)', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });

  async function open(busyTimeoutMs?: number) {
    const schema = `sb_test_${randomBytes(6).toString('hex')}`;
    const store = new PostgresStore({
      connectionString: url,
      schema,
      ...(busyTimeoutMs ? { busyTimeoutMs } : {}),
    });
    await store.migrate();
    const writer = new LogWriter({
      store,
      collections: new CollectionRegistry(store),
      clock: new HybridClock('n1'),
      logger: pino({ level: 'silent' }),
    });
    cleanups.push(async () => {
      await writer.drain();
      await store.close();
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.end();
    });
    let n = 0;
    const put = async (tenant: string) => {
      n += 1;
      const [result] = await writer.mutate(who(tenant), [
        { mid: `m${n}`, collection: 'docs', id: `d${n % 4}`, op: 'put', data: { n } },
      ]);
      return result!;
    };
    return { schema, store, writer, put };
  }

  it("commits one tenant's writes in seq order and tells listeners in that order", async () => {
    const { writer, put } = await open();
    const heard: number[] = [];
    writer.onCommit((tenant, events: LogEvent[]) => {
      if (tenant === 'a') heard.push(...events.map((e) => e.seq));
    });
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => (i % 10 === 0 ? put('b') : put('a'))),
    );
    const seqsA = results.filter((_, i) => i % 10 !== 0).map((r) => r.seq!);
    expect(seqsA).toEqual(Array.from({ length: 54 }, (_, i) => i + 1));
    expect(heard).toEqual(seqsA);
  });

  it("computes a tenant's next commit while the last is in flight; when another node moved the tenant both fall back in order", async () => {
    const { schema, writer, put } = await open();
    const heard: number[][] = [];
    writer.onCommit((tenant, events: LogEvent[]) => {
      if (tenant === 'p') heard.push(events.map((e) => e.seq));
    });
    expect((await put('p')).seq).toBe(1);
    // Another node's commit of the tenant, holding its head row until released.
    const other = new pg.Client({ connectionString: url, options: `-c search_path="${schema}"` });
    await other.connect();
    await other.query('BEGIN');
    await other.query("UPDATE tenant_heads SET seq = 2 WHERE tenant = 'p'");
    await other.query(
      "INSERT INTO events (tenant, seq, event_id, kind, type, actor, ts) VALUES ('p', 2, 'other', 'event', 'x', 'svc', 'now')",
    );
    const calls = vi.spyOn(pg.Client.prototype, 'query');
    try {
      const first = put('p');
      await new Promise((resolve) => setTimeout(resolve, 50));
      const second = put('p');
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Both one-call commits are waiting on the lock: the second was computed on top of the first.
      const oneCalls = calls.mock.calls.filter(
        (c) => (c[0] as { name?: string }).name === 'syncbridge_commit',
      );
      expect(oneCalls).toHaveLength(2);
      await other.query('COMMIT');
      expect([(await first).seq, (await second).seq]).toEqual([3, 4]);
    } finally {
      calls.mockRestore();
      await other.end();
    }
    expect(heard).toEqual([[1], [3], [4]]);
  });

  it('a tenant whose commit waits on a lock, then fails, delays no other tenant', async () => {
    const { schema, put } = await open(1500);
    expect((await put('slow')).seq).toBe(1);
    expect((await put('fast')).seq).toBe(1);
    // Another node's transaction holds the slow tenant's head row.
    const other = new pg.Client({ connectionString: url, options: `-c search_path="${schema}"` });
    await other.connect();
    await other.query('BEGIN');
    await other.query("SELECT seq FROM tenant_heads WHERE tenant = 'slow' FOR UPDATE");
    let slowSettled = false;
    const slow = put('slow')
      .catch((err: unknown) => err)
      .finally(() => {
        slowSettled = true;
      });
    const started = performance.now();
    for (let i = 2; i <= 6; i++) expect((await put('fast')).seq).toBe(i);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(slowSettled).toBe(false);
    const err = await slow;
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    await other.query('ROLLBACK');
    await other.end();
    // The failed commit left no gap.
    expect((await put('slow')).seq).toBe(2);
  });
});
