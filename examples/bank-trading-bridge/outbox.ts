/**
 * The bank-trading bridge with Vyomo publishing from its own database: Vyomo books a trade and writes the
 * event about it into its `sync_events` outbox table in the same PostgreSQL transaction; syncbridge's
 * `pg-cdc` connector tails Vyomo's database and delivers the event to BFC as a signed webhook. A trade
 * whose transaction rolls back publishes nothing; Vyomo's `trades` table is mirrored as a collection.
 *
 *   node --import tsx examples/bank-trading-bridge/outbox.ts
 *
 * Needs a local PostgreSQL with `wal_level = logical` (SOURCE_ADMIN_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres): it creates a database `vyomo_<random>` for Vyomo, and
 * removes it (and the connector's replication slot) at the end. Exits 0 when it went as described.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type SyncbridgeServer, startServer } from '@syncbridge/server';
import pg from 'pg';
import { Platform } from './platforms.ts';

const ADMIN_URL = process.env.SOURCE_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const print = (line: string) => process.stdout.write(`${line}\n`);
const timer = setTimeout(() => {
  process.stderr.write('bank-trading bridge (outbox): no result within 30 s\n');
  process.exit(1);
}, 30_000);

// biome-ignore lint/suspicious/noExplicitAny: REST answers are read field by field
type Json = any;

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const database = `vyomo_${randomBytes(4).toString('hex')}`;
const dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-outbox-'));
const admin = new pg.Client({ connectionString: ADMIN_URL });
let server: SyncbridgeServer | null = null;
let vyomoDb: pg.Client | null = null;
const bfc = new Platform('bfc');
let code = 0;
try {
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  const sourceUrl = new URL(ADMIN_URL);
  sourceUrl.pathname = `/${database}`;
  vyomoDb = new pg.Client({ connectionString: sourceUrl.toString() });
  await vyomoDb.connect();
  // Vyomo's own schema: its trades, and the outbox it writes its sync events to.
  await vyomoDb.query(`
    CREATE TABLE trades (trade_id text PRIMARY KEY, symbol text NOT NULL, qty integer NOT NULL,
                         status text NOT NULL, trader_notes text);
    CREATE TABLE sync_events (id bigserial PRIMARY KEY, event_type text NOT NULL, payload jsonb NOT NULL,
                              source text NOT NULL DEFAULT 'vyomo', target text, priority integer, created_at timestamptz DEFAULT now());
    CREATE PUBLICATION syncbridge FOR TABLE trades, sync_events;`);
  print(`vyomo database ${database}: trades, sync_events, publication syncbridge`);

  const adminKey = `sb_admin_${randomBytes(16).toString('hex')}`;
  server = await startServer(
    loadConfig({
      env: {},
      overrides: {
        port: 0,
        dataDir,
        adminKey,
        logLevel: 'error',
        webhookAllowPrivate: ['127.0.0.1/32'],
        secretsKey: randomBytes(32).toString('hex'),
      },
    }),
  );
  const call = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const res = await fetch(`${server!.url}${path}`, {
      method,
      headers: {
        'x-api-key': adminKey,
        'x-tenant': 'bank',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = res.status === 204 ? null : await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  await bfc.start();
  const hook = await call('POST', '/v1/webhooks', {
    name: 'BFC Trade Notifications',
    platform: 'bfc',
    url: bfc.url,
    eventTypes: ['trade_*'],
    delivery: 'ordered',
  });
  bfc.useSecret(hook.secret);
  print(`registered ${hook.name} -> bfc (${hook.eventTypes.join(', ')})`);

  // The connector reads Vyomo's database with a URL kept as a connector secret.
  await call('PUT', '/v1/connector-secrets/VYOMO_DB_URL', { value: sourceUrl.toString() });
  await call('POST', '/v1/connectors', {
    name: 'vyomo-db',
    kind: 'pg-cdc',
    connection: '{{secrets.VYOMO_DB_URL}}',
    publication: 'syncbridge',
    tables: [{ table: 'trades', collection: 'trades', exclude: ['trader_notes'] }],
    outbox: {
      table: 'sync_events',
      type: 'event_type',
      payload: 'payload',
      source: 'source',
      target: 'target',
      priority: 'priority',
    },
  });
  const streaming = await until(
    () => call('GET', '/v1/connectors/vyomo-db'),
    (s) => s.details?.phase === 'streaming',
    'the connector streaming',
  );
  print(`connector vyomo-db ${streaming.state}, slot ${streaming.details.slot}`);

  // Vyomo books a trade: the trade row and its sync event commit together, or not at all.
  const book = async (tradeId: string, symbol: string, qty: number, commit: boolean) => {
    await vyomoDb!.query('BEGIN');
    await vyomoDb!.query(
      `INSERT INTO trades (trade_id, symbol, qty, status, trader_notes) VALUES ($1, $2, $3, 'open', 'desk 4')`,
      [tradeId, symbol, qty],
    );
    await vyomoDb!.query(
      `INSERT INTO sync_events (event_type, payload, target, priority) VALUES ('trade_opened', $1, 'bfc', 1)`,
      [{ tradeId, symbol, qty }],
    );
    await vyomoDb!.query(commit ? 'COMMIT' : 'ROLLBACK');
  };
  await book('T-1', 'NIFTY', 50, true);
  print('vyomo committed trade T-1 NIFTY with its trade_opened row in sync_events');
  await book('T-2', 'BANKNIFTY', 25, false);
  print('vyomo rolled back trade T-2 (its sync event goes with it)');
  await book('T-3', 'RELIANCE', 10, true);
  print('vyomo committed trade T-3 RELIANCE');

  const received = await bfc.waitFor(2);
  for (const e of received) {
    print(
      `bfc <- ${e.type} ${e.data.tradeId} ${e.data.symbol} from ${e.source} (seq ${e.seq}), signatures verified`,
    );
  }
  const trades = await call('GET', '/v1/records/trades');
  const list = (trades.records as Array<{ id: string; data: Record<string, unknown> }>)
    .map((r) => `${r.id} ${r.data.symbol}${'trader_notes' in r.data ? ' (with notes!)' : ''}`)
    .join(', ');
  print(`trades collection: ${list}`);
  if (received.length !== 2 || received.some((e) => e.data.tradeId === 'T-2')) {
    throw new Error('bfc did not get exactly the committed trades');
  }
  await call('DELETE', '/v1/connectors/vyomo-db');
  const slots = await admin.query('SELECT 1 FROM pg_replication_slots WHERE database = $1', [database]);
  print(`connector removed; replication slots left on vyomo's database: ${slots.rows.length}`);
  print('ok');
} catch (err) {
  process.stderr.write(`bank-trading bridge (outbox) failed: ${(err as Error).message}\n`);
  code = 1;
} finally {
  await bfc.stop().catch(() => {});
  await server?.close();
  await vyomoDb?.end().catch(() => {});
  await admin
    .query(
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`,
      [database],
    )
    .catch(() => {});
  await admin
    .query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1', [
      database,
    ])
    .catch(() => {});
  await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).catch(() => {});
  await admin.end().catch(() => {});
  rmSync(dataDir, { recursive: true, force: true });
  clearTimeout(timer);
}
process.exit(code);
