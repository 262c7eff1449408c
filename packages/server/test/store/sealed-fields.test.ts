/**
 * Sealed fields on every store: a collection's `sealedFields` are encrypted at rest (records, log
 * entries and history, stored conflicts, remembered results, webhook deliveries, so every backup), read
 * in plain by clients (REST, history, versions, WebSocket snapshot, backlog and live events, webhooks);
 * filters on them are refused with a typed error; without a secrets key the setting is refused.
 * The raw database is read (every table's rows, and the SQLite files' bytes) for the plaintext.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupDatabase } from '../../src/store/sqlite/backup.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { eventually, Receiver } from '../webhooks/receiver.ts';
import { adminClient, register } from '../webhooks/support.ts';

const kinds = await storeKinds();
const KEY = randomBytes(32).toString('hex');
const SSN = 'ssn-plaintext-6f1d2c';
const SSN_2 = 'ssn-plaintext-second-9a7e41';
const NOTE = 'diagnosis-plaintext-b44e10';
const SECRETS = [SSN, SSN_2, NOTE];

/** Every row of every table, as text, as the database holds it. */
async function rawRows(kind: StoreKind, storage: TestStorage): Promise<string> {
  if (kind === 'sqlite') {
    const db = new Database(join(storage.dataDir, 'syncbridge.db'), { readonly: true });
    try {
      const tables = db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all();
      return tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM "${t.name}"`).all())).join('\n');
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const schema = storage.config.databaseSchema!;
    const tables = await client.query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
      [schema],
    );
    const texts: string[] = [];
    for (const t of tables.rows) {
      const res = await client.query<{ row: string }>(
        `SELECT t::text AS row FROM ${schema}."${t.table_name}" t`,
      );
      texts.push(...res.rows.map((r) => r.row));
    }
    return texts.join('\n');
  } finally {
    await client.end();
  }
}

/** The bytes of the SQLite database and its WAL, as a backup or a disk thief would see them. */
function sqliteBytes(storage: TestStorage): string {
  const file = join(storage.dataDir, 'syncbridge.db');
  const parts = [file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f).toString('latin1'));
  return parts.join('\n');
}

describe.each(kinds)('sealed fields (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let receiver: Receiver;
  let srv: TestServer;
  let api: ReturnType<typeof adminClient>;
  let ws: TestWsClient;

  beforeAll(async () => {
    receiver = await Receiver.start();
    srv = await startTestServer(
      kind,
      { secretsKey: KEY, webhookAllowPrivate: ['127.0.0.1/32'], webhookPollMs: 100 },
      storage,
    );
    api = adminClient(srv, 'clinic');
    await register(api, { url: receiver.url, eventTypes: ['record.patients.*'], secretKey: 'x'.repeat(32) });
    const put = await api.put('/v1/collections/patients', {
      json: { strategy: 'manual', sealedFields: ['ssn', 'chart'] },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.body.settings.sealedFields).toEqual(['ssn', 'chart']);
    ws = await TestWsClient.connect(srv.wsUrl, await srv.token('clinic', 'nurse'));
    await ws.request({ type: 'subscribe', channel: 'records:patients' });
  });
  afterAll(async () => {
    await ws?.close();
    await srv?.close({ keepData: true });
    await receiver?.close();
    await storage.cleanup();
  });

  it('keeps sealed fields encrypted in every table while clients read them in plain', async () => {
    const first = await api.put('/v1/records/patients/p1', {
      json: { name: 'Ann', ssn: SSN, chart: { note: NOTE, codes: [1, 2] } },
    });
    expect(first.status, first.text).toBe(201);
    expect(first.body.data).toEqual({ name: 'Ann', ssn: SSN, chart: { note: NOTE, codes: [1, 2] } });
    const second = await api.patch('/v1/records/patients/p1', {
      json: { ssn: SSN_2 },
      headers: { 'if-match': '"1"' },
    });
    expect(second.status, second.text).toBe(200);
    // A stale write: the manual strategy stores a conflict holding all three versions.
    const stale = await api.put('/v1/records/patients/p1', {
      json: { name: 'Ann B', ssn: SSN, chart: { note: NOTE } },
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status, stale.text).toBe(409);
    expect(stale.body.error.details.record.data.ssn).toBe(SSN_2);

    const got = await api.get('/v1/records/patients/p1');
    expect(got.body.data).toEqual({ name: 'Ann', ssn: SSN_2, chart: { note: NOTE, codes: [1, 2] } });
    const list = await api.get('/v1/records/patients?name=Ann');
    expect(list.body.records.map((r: { data: { ssn: string } }) => r.data.ssn)).toEqual([SSN_2]);
    const history = await api.get('/v1/records/patients/p1/history');
    expect(history.body.versions.map((v: { data: { ssn: string } }) => v.data.ssn)).toEqual([SSN, SSN_2]);
    const v1 = await api.get('/v1/records/patients/p1/versions/1');
    expect(v1.body.data.chart.note).toBe(NOTE);
    const conflicts = await api.get('/v1/conflicts?status=open');
    const [conflict] = conflicts.body.conflicts;
    expect([conflict.base.ssn, conflict.server.ssn, conflict.client.ssn]).toEqual([SSN, SSN_2, SSN]);

    // Live events, a backlog from the start and a snapshot.
    const live = await ws.waitForEvents(2, 'records:patients');
    expect(live.map((e) => (e as unknown as { data: { ssn: string } }).data.ssn)).toEqual([SSN, SSN_2]);
    const late = await TestWsClient.connect(srv.wsUrl, await srv.token('clinic', 'doctor'));
    try {
      await late.request({ type: 'subscribe', channel: 'records:patients', since: 0 });
      const backlog = await late.waitForEvents(2, 'records:patients');
      const patch = backlog[1] as unknown as { data: { ssn: string }; previous?: { ssn: string } };
      expect(patch.data.ssn).toBe(SSN_2);
      const snap = (await late.request({
        type: 'subscribe',
        channel: 'records:patients?name=Ann',
        snapshot: true,
      })) as { type: string };
      expect(snap.type).toBe('subscribed');
      const chunk = (await late.waitFor((m) => m.type === 'snapshot')) as unknown as {
        records: { data: { ssn: string } }[];
      };
      expect(chunk.records[0]!.data.ssn).toBe(SSN_2);
    } finally {
      await late.close();
    }

    // Webhooks deliver the plain event.
    const delivered = await eventually(
      () => (receiver.requests.length >= 2 ? receiver.requests : undefined),
      10_000,
      'two deliveries',
    );
    expect(delivered.map((r) => r.body).join('\n')).toContain(SSN_2);

    const raw = await rawRows(kind, storage);
    expect(raw).toContain('sbx1.');
    expect(raw).toContain('Ann');
    for (const secret of SECRETS) expect(raw).not.toContain(secret);
    if (kind === 'sqlite') {
      for (const secret of SECRETS) expect(sqliteBytes(storage)).not.toContain(secret);
      const copy = join(storage.dataDir, 'backup.db');
      await backupDatabase(join(storage.dataDir, 'syncbridge.db'), copy);
      const backup = readFileSync(copy).toString('latin1');
      expect(backup).toContain('sbx1.');
      for (const secret of SECRETS) expect(backup).not.toContain(secret);
    }
  });

  it('refuses filters on sealed fields with a typed error, over REST and WebSocket', async () => {
    const res = await api.get('/v1/records/patients?ssn=x');
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('BAD_REQUEST');
    expect(res.body.error.details).toEqual({ reason: 'sealed_field', field: 'ssn' });
    const nested = await api.get('/v1/records/patients?chart.note=x');
    expect(nested.body.error.details).toEqual({ reason: 'sealed_field', field: 'chart' });
    const refused = (await ws.request({ type: 'subscribe', channel: 'records:patients?ssn=x' })) as {
      type: string;
      code?: string;
      error?: { code: string; details?: unknown };
    };
    expect(refused.type).toBe('error');
    expect(JSON.stringify(refused)).toContain('sealed_field');
  });

  it('opens values sealed under a previous key after rotation', async () => {
    await ws.close();
    await srv.close({ keepData: true });
    srv = await startTestServer(
      kind,
      { secretsKey: randomBytes(32).toString('hex'), secretsKeysPrevious: [KEY] },
      storage,
    );
    api = adminClient(srv, 'clinic');
    ws = await TestWsClient.connect(srv.wsUrl, await srv.token('clinic', 'nurse'));
    const got = await api.get('/v1/records/patients/p1');
    expect(got.body.data.ssn).toBe(SSN_2);
    const history = await api.get('/v1/records/patients/p1/history');
    expect(history.body.versions[0].data.chart.note).toBe(NOTE);
  });
});

describe.each(kinds)('sealed fields without a secrets key (%s)', (kind: StoreKind) => {
  it('are refused over REST and in the config file, saying which key to set', async () => {
    const srv = await startTestServer(kind);
    try {
      const res = await adminClient(srv, 'clinic').put('/v1/collections/patients', {
        json: { sealedFields: ['ssn'] },
      });
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(/SYNCBRIDGE_SECRETS_KEY/);
    } finally {
      await srv.close();
    }
    const storage = createTestStorage(kind);
    try {
      await expect(
        startTestServer(kind, { collections: { patients: { sealedFields: ['ssn'] } } }, storage),
      ).rejects.toThrow(/collections\.patients: sealedFields needs a secrets key/);
    } finally {
      await storage.cleanup();
    }
  });
});
