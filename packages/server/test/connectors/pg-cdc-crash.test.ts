/**
 * Exactly once across a kill -9 of syncbridge: a platform's database commits a stream of transactions
 * (a trade row and its outbox row each) while the pg-cdc connector tails it; the server process is
 * killed with SIGKILL mid-stream and a new one starts on the same data. Every source transaction must
 * then be in the tenant's log exactly once, in commit order, as one group (the trade's record and its
 * event at consecutive seqs): nothing lost, nothing repeated.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/tokens.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  type ServerProcess,
  type StoreKind,
  spawnServerProcess,
  storeKinds,
  TEST_ADMIN_KEY,
  TEST_JWT_SECRET,
  type TestStorage,
} from '../helpers/server.ts';
import { postgresAvailable, requireService } from '../helpers/services.ts';
import { readLog } from '../realtime/support.ts';
import { createSourceDb, type SourceDb } from './pg-source.ts';
import { adminRest, waitFor } from './support.ts';

const available = requireService(`PostgreSQL at ${POSTGRES_URL}`, await postgresAvailable(POSTGRES_URL));
const kinds = available ? await storeKinds() : [];
const tokens = new TokenService({ jwtSecret: TEST_JWT_SECRET });
const ENV = { SYNCBRIDGE_SECRETS_KEY: 'b'.repeat(64), SYNCBRIDGE_WEBHOOK_ALLOW_PRIVATE: '127.0.0.1/32' };
const TOTAL = 400;

describe.skipIf(kinds.length === 0).each(kinds)('pg-cdc across kill -9 (%s)', (kind: StoreKind) => {
  let source: SourceDb | null = null;
  let storage: TestStorage | null = null;
  const procs: ServerProcess[] = [];
  afterAll(async () => {
    for (const p of procs) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
    await source?.drop();
    await storage?.cleanup();
  });

  it('loses and repeats no source transaction', async () => {
    source = await createSourceDb();
    storage = createTestStorage(kind);
    const db = source;
    const first = await spawnServerProcess(storage, ENV);
    procs.push(first);
    const admin = adminRest(first.url, TEST_ADMIN_KEY, 'bank');
    expect((await admin('PUT', '/v1/connector-secrets/SOURCE_URL', { value: db.url })).status).toBe(200);
    const created = await admin('POST', '/v1/connectors', {
      name: 'platform-db',
      kind: 'pg-cdc',
      connection: '{{secrets.SOURCE_URL}}',
      publication: db.publication,
      slot: `sb_${db.name}`,
      tables: [{ table: 'trades', collection: 'trades' }],
      outbox: { table: 'outbox', type: 'event_type', payload: 'payload' },
    });
    expect(created.status, created.text).toBe(201);
    const { token } = await tokens.mint({ tenant: 'bank', user: 'auditor' });
    // Streaming first: outbox rows committed before the slot exists are not the connector's to publish.
    await waitFor(
      async () => (await admin('GET', '/v1/connectors/platform-db')).body.details?.phase,
      (phase) => phase === 'streaming',
      'the connector streaming',
      30_000,
    );

    // The platform commits its transactions without pause, whatever syncbridge is doing.
    let committed = 0;
    const pump = (async () => {
      for (let i = 1; i <= TOTAL; i++) {
        await db.tx([
          ['INSERT INTO trades (id, symbol, qty) VALUES ($1, $2, $3)', [i, 'SYM', i]],
          ['INSERT INTO outbox (event_type, payload) VALUES ($1, $2)', ['trade.booked', { i }]],
        ]);
        committed = i;
        if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();

    await waitFor(
      async () => (await readLog(first.url, token)).events.length,
      (n) => n >= 120,
      'the first changes in the log',
      30_000,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    const before = committed;
    expect(before).toBeLessThan(TOTAL); // the kill landed mid-stream

    const second = await spawnServerProcess(storage, ENV);
    procs.push(second);
    await pump;
    await waitFor(
      async () => (await readLog(second.url, token)).events.length,
      (n) => n >= 2 * TOTAL,
      'every source transaction in the log',
      60_000,
    );
    // Settle: anything repeated would show up as more entries.
    await new Promise((r) => setTimeout(r, 500));
    const log: LogEvent[] = (await readLog(second.url, token)).events;
    expect(log).toHaveLength(2 * TOTAL);
    for (let i = 1; i <= TOTAL; i++) {
      const put = log[2 * (i - 1)]!;
      const event = log[2 * (i - 1) + 1]!;
      expect(put).toMatchObject({
        kind: 'record',
        collection: 'trades',
        id: String(i),
        op: 'put',
        version: 1,
      });
      expect(event).toMatchObject({ kind: 'event', type: 'trade.booked', payload: { i } });
      expect(event.seq).toBe(put.seq + 1);
    }
  }, 120_000);
});
