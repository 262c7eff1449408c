/**
 * How long the retention job holds the writer: 100,000 finished webhook deliveries (each with one
 * attempt and a 400-byte body) are deleted in batches of 1,000, on SQLite and on PostgreSQL; prints the
 * rows per second and the time of one batch (p50, max), which is what a write waits for at most.
 *
 *   node --import tsx bench/retention.ts [--rows 100000] [--batch 1000] [--store sqlite|postgres|all]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresStore } from '../packages/server/src/store/postgres/postgres-store.ts';
import { SqliteStore } from '../packages/server/src/store/sqlite/sqlite-store.ts';
import type { Store } from '../packages/server/src/store/types.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '1000' },
    store: { type: 'string', default: 'all' },
  },
});
const ROWS = Number(values.rows);
const BATCH = Number(values.batch);
const POSTGRES_URL = process.env.SYNCBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const body = JSON.stringify({ x: 'y'.repeat(400) });

async function measure(name: string, store: Store, fill: () => Promise<void>): Promise<void> {
  await store.migrate();
  await fill();
  const batches: number[] = [];
  let total = 0;
  const started = performance.now();
  for (;;) {
    const t = performance.now();
    const n = await store.expiry.pruneDeliveries('success', Date.now(), BATCH);
    batches.push(performance.now() - t);
    total += n;
    if (n < BATCH) break;
  }
  const seconds = (performance.now() - started) / 1000;
  batches.sort((a, b) => a - b);
  const p50 = batches[Math.floor(batches.length / 2)]!;
  console.log(
    `${name}: ${total} deliveries and their attempts in ${seconds.toFixed(2)} s (${Math.round(total / seconds)} deliveries/s); ` +
      `one batch of ${BATCH}: p50 ${p50.toFixed(1)} ms, max ${batches.at(-1)!.toFixed(1)} ms`,
  );
  await store.close();
}

if (values.store !== 'postgres') {
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-retention-bench-'));
  const file = join(dir, 'syncbridge.db');
  try {
    await measure('sqlite', new SqliteStore({ file }), async () => {
      const db = new Database(file);
      const delivery = db.prepare(
        `INSERT INTO webhook_deliveries (id, tenant, webhook_id, event_id, seq, event_type, body, status,
           next_attempt_at, created_at, completed_at) VALUES (?, 't', 'w', ?, ?, 'e', ?, 'success', 0, 0, ?)`,
      );
      const attempt = db.prepare(
        `INSERT INTO webhook_attempts (delivery_id, attempt, tenant, webhook_id, started_at, duration_ms, success)
         VALUES (?, 1, 't', 'w', 0, 1, 1)`,
      );
      db.transaction(() => {
        for (let i = 0; i < ROWS; i++) {
          delivery.run(`d${i}`, `e${i}`, i, body, i);
          attempt.run(`d${i}`);
        }
      })();
      db.close();
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (values.store !== 'sqlite') {
  const schema = `sb_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await measure('postgres', new PostgresStore({ connectionString: POSTGRES_URL, schema }), async () => {
      await admin.query(`SET search_path = ${schema}`);
      await admin.query(
        `INSERT INTO webhook_deliveries (id, tenant, webhook_id, event_id, seq, event_type, body, status,
           next_attempt_at, created_at, completed_at)
         SELECT 'd' || i, 't', 'w', 'e' || i, i, 'e', $1, 'success', 0, 0, i FROM generate_series(1, $2::int) i`,
        [body, ROWS],
      );
      await admin.query(
        `INSERT INTO webhook_attempts (delivery_id, attempt, tenant, webhook_id, started_at, duration_ms, success)
         SELECT 'd' || i, 1, 't', 'w', 0, 1, true FROM generate_series(1, $1::int) i`,
        [ROWS],
      );
      await admin.query('ANALYZE');
    });
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  }
}
