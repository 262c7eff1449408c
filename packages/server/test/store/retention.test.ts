/**
 * Tables that must not only grow, on both stores: cursors are kept for named devices only; finished
 * webhook deliveries (successes, dead letters) with their attempts, resolved conflicts, devices not
 * seen for long and cursors nobody registered are deleted by the retention job past their settings, in
 * bounded batches, counted by `syncbridge_retention_pruned_total`; a user's devices are capped, the
 * least recently seen one giving way. Rows are counted in the database itself.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scrape } from '../helpers/prometheus.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { restClient } from '../http/rest.ts';
import { eventually, Receiver } from '../webhooks/receiver.ts';

const kinds = await storeKinds();
const DAY = 86_400_000;

/** Reads rows straight from the server's database (a second SQLite connection, or a PostgreSQL client). */
async function sqlReader(srv: TestServer): Promise<{
  count(sql: string): Promise<number>;
  run(sql: string, params: unknown[]): Promise<void>;
  close(): Promise<void>;
}> {
  const { databaseUrl, databaseSchema } = srv.storage.config;
  if (!databaseUrl) {
    const db = new Database(join(srv.storage.dataDir, 'syncbridge.db'));
    db.pragma('busy_timeout = 5000');
    return {
      count: async (sql) => (db.prepare(sql).get() as { n: number }).n,
      run: async (sql, params) => {
        db.prepare(sql.replace(/\$\d+/g, '?')).run(...params);
      },
      close: async () => {
        db.close();
      },
    };
  }
  const client = new pg.Client({
    connectionString: databaseUrl,
    options: `-c search_path=${databaseSchema}`,
  });
  await client.connect();
  return {
    count: async (sql) => Number((await client.query<{ n: string }>(sql)).rows[0]!.n),
    run: async (sql, params) => {
      await client.query(sql, params);
    },
    close: () => client.end(),
  };
}

describe.each(kinds)('retention of growing tables (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let db: Awaited<ReturnType<typeof sqlReader>>;
  beforeAll(async () => {
    srv = await startTestServer(kind, {
      retentionIntervalMs: 0,
      webhookAllowPrivate: ['127.0.0.1/32'],
      webhookRetrySchedule: '50ms',
      webhookPollMs: 100,
      collections: { stock: { strategy: 'manual' } },
      retention: {
        deliveriesDays: 30,
        deadLettersDays: 90,
        resolvedConflictsDays: 90,
        devicesUnseenDays: 180,
        maxDevicesPerUser: 3,
        batchSize: 2,
      },
    });
    db = await sqlReader(srv);
  });
  afterAll(async () => {
    await db?.close();
    await srv?.close();
  });

  it('keeps a cursor for a named device only, not one per anonymous connection', async () => {
    const token = await srv.token('cur', 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    const reply = await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'c1', collection: 'notes', id: 'n1', op: 'put', data: { a: 1 } }],
    });
    const seq = (reply.results as Array<{ seq: number }>)[0]!.seq;
    for (let i = 0; i < 3; i++) {
      const anonymous = await TestWsClient.connect(srv.wsUrl, token);
      anonymous.send({ type: 'ack', seq });
      await anonymous.request({ type: 'ping' });
      await anonymous.close();
    }
    const device = await TestWsClient.connect(srv.wsUrl);
    await device.request({ type: 'hello', token, deviceId: 'phone' });
    device.send({ type: 'ack', seq });
    await device.request({ type: 'ping' });
    await device.close();
    await writer.close();
    await eventually(
      async () => (await db.count("SELECT count(*) AS n FROM cursors WHERE tenant = 'cur'")) === 1,
    );
    // Nothing more arrives for the anonymous connections once the device's row is there.
    await new Promise((r) => setTimeout(r, 200));
    expect(await db.count("SELECT count(*) AS n FROM cursors WHERE tenant = 'cur'")).toBe(1);
    expect(
      await db.count("SELECT count(*) AS n FROM cursors WHERE tenant = 'cur' AND device_id = 'phone'"),
    ).toBe(1);
    // And the device reads it back.
    const back = await TestWsClient.connect(srv.wsUrl);
    const welcome = await back.request({ type: 'hello', token, deviceId: 'phone' });
    expect(welcome.cursor).toBe(seq);
    await back.close();
  });

  it('deletes successful deliveries after 30 days and dead letters after 90, with their attempts, in batches', async () => {
    const ok = await Receiver.start(() => ({ status: 200 }));
    const bad = await Receiver.start(() => ({ status: 500 }));
    const api = restClient(srv.url, { apiKey: srv.adminKey, tenant: 'hooks' });
    try {
      for (const url of [ok.url, bad.url]) {
        const res = await api.post('/v1/webhooks', { json: { name: 'h', url, eventTypes: ['*'] } });
        expect(res.status, res.text).toBe(201);
      }
      for (let i = 0; i < 5; i++) {
        const res = await api.post('/v1/events', { json: { type: 'order_placed', payload: { i } } });
        expect(res.status, res.text).toBe(201);
      }
      const finished = (status: string) =>
        db.count(
          `SELECT count(*) AS n FROM webhook_deliveries WHERE tenant = 'hooks' AND status = '${status}'`,
        );
      await eventually(
        async () => (await finished('success')) === 5 && (await finished('failed')) === 5,
        15_000,
      );
      expect(await db.count("SELECT count(*) AS n FROM webhook_attempts WHERE tenant = 'hooks'")).toBe(15);

      // Within their retention nothing goes.
      let report = await srv.server.runRetention(Date.now() + 29 * DAY);
      expect(report.webhook_deliveries).toBe(0);
      expect(report.webhook_dead_letters).toBe(0);
      // Past 30 days the successes go (batches of 2: 5 takes three), the dead letters stay until 90.
      report = await srv.server.runRetention(Date.now() + 31 * DAY);
      expect(report.webhook_deliveries).toBe(5);
      expect(report.webhook_dead_letters).toBe(0);
      expect(await finished('success')).toBe(0);
      expect(await finished('failed')).toBe(5);
      report = await srv.server.runRetention(Date.now() + 91 * DAY);
      expect(report.webhook_dead_letters).toBe(5);
      expect(await db.count("SELECT count(*) AS n FROM webhook_deliveries WHERE tenant = 'hooks'")).toBe(0);
      expect(await db.count("SELECT count(*) AS n FROM webhook_attempts WHERE tenant = 'hooks'")).toBe(0);

      const metrics = await scrape(srv.url);
      expect(metrics.value('syncbridge_retention_pruned_total', { table: 'webhook_deliveries' })).toBe(5);
      expect(metrics.value('syncbridge_retention_pruned_total', { table: 'webhook_dead_letters' })).toBe(5);
    } finally {
      await ok.close();
      await bad.close();
    }
  });

  it('deletes resolved conflicts after 90 days and never an open one', async () => {
    const alice = await TestWsClient.connect(srv.wsUrl, await srv.token('conf', 'alice'));
    const mutate = async (mid: string, id: string, qty: number, baseVersion?: number) =>
      (
        (await alice.request({
          type: 'mutate',
          mutations: [{ mid, collection: 'stock', id, op: 'put', data: { qty }, baseVersion }],
        })) as { results: Array<{ conflictId?: string }> }
      ).results[0]!;
    const conflictIds: string[] = [];
    for (const id of ['p1', 'p2']) {
      await mutate(`${id}-1`, id, 1);
      await mutate(`${id}-2`, id, 2, 1);
      conflictIds.push((await mutate(`${id}-3`, id, 3, 1)).conflictId!);
    }
    await alice.request({ type: 'resolve', conflictId: conflictIds[0], resolution: 'accept_server' });
    await alice.close();
    expect(await db.count("SELECT count(*) AS n FROM conflicts WHERE tenant = 'conf'")).toBe(2);

    expect((await srv.server.runRetention(Date.now() + 89 * DAY)).conflicts).toBe(0);
    expect((await srv.server.runRetention(Date.now() + 91 * DAY)).conflicts).toBe(1);
    expect(
      await db.count("SELECT count(*) AS n FROM conflicts WHERE tenant = 'conf' AND status = 'open'"),
    ).toBe(1);
    expect(await db.count("SELECT count(*) AS n FROM conflicts WHERE tenant = 'conf'")).toBe(1);
  });

  it('caps a user’s devices, evicting the least recently seen, and forgets devices unseen for 180 days', async () => {
    const token = await srv.token('dev', 'bob');
    const api = restClient(srv.url, { token });
    for (const id of ['d1', 'd2', 'd3']) {
      const res = await api.post('/v1/devices', { json: { id, type: 'mobile' } });
      expect(res.status, res.text).toBeLessThan(300);
    }
    // d1 connects (seen now), so d2 is the least recently seen when a fourth device registers.
    const d1 = await TestWsClient.connect(srv.wsUrl);
    await d1.request({ type: 'hello', token, deviceId: 'd1' });
    await d1.close();
    const fourth = await api.post('/v1/devices', { json: { id: 'd4', type: 'mobile' } });
    expect(fourth.status, fourth.text).toBeLessThan(300);
    const listed = await api.get('/v1/devices');
    expect((listed.body.devices as Array<{ id: string }>).map((d) => d.id).sort()).toEqual([
      'd1',
      'd3',
      'd4',
    ]);

    // A cursor of a device id nobody registered, and one of a registered device, both old.
    const old = new Date(Date.now() - 200 * DAY).toISOString();
    for (const device of ['stray', 'd3']) {
      await db.run(
        'INSERT INTO cursors (tenant, user_id, device_id, seq, updated_at) VALUES ($1, $2, $3, $4, $5)',
        ['dev', 'bob', device, 1, old],
      );
    }
    expect((await srv.server.runRetention(Date.now() + 179 * DAY)).devices).toBe(0);
    const report = await srv.server.runRetention(Date.now() + 181 * DAY);
    expect(report.devices).toBe(3);
    expect(report.cursors).toBeGreaterThanOrEqual(1);
    expect(await db.count("SELECT count(*) AS n FROM devices WHERE tenant = 'dev'")).toBe(0);
    expect(await db.count("SELECT count(*) AS n FROM cursors WHERE tenant = 'dev'")).toBe(0);
  });
});
