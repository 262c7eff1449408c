/**
 * Sealing a field whose history was compacted, on every store: a record written many versions with a
 * changing `ssn`, its superseded versions compacted (deltas against the next version, keyframes), then
 * `ssn` added to sealedFields. Once the backfill is done every old version reads back exactly as it was
 * written, no plaintext `ssn` is left in the log entries (their data nor their compact form, inflated),
 * and compaction run afterwards compacts the sealed entries again, reads unchanged. While a backfill of
 * a tenant is unfinished its history compaction compacts nothing.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSealedBackfill } from '../../src/store/sealed-backfill.ts';
import { parseSecretsKey, SecretBox } from '../../src/store/secret-box.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { eventually } from '../webhooks/receiver.ts';
import { adminClient } from '../webhooks/support.ts';

const kinds = await storeKinds();
const KEY = randomBytes(32).toString('hex');
const TENANT = 'clinic';
const VERSIONS = 40;
const PREFIX = 'ssn-plain-7f3a';
/** Long values changed in the middle: their deltas are string splices. */
const ssnAt = (v: number) => `${PREFIX}-${'1'.repeat(24)}-${v}-${'9'.repeat(24)}`;
const dataAt = (v: number) => ({ name: `Ann ${v % 3}`, ssn: ssnAt(v), note: 'n'.repeat(200 + (v % 5)) });

interface RawEntry {
  seq: number;
  data: unknown;
  packed: Buffer | null;
}

/** The text of each record log entry as stored: its data, or its compact form inflated. */
async function storedTexts(
  kind: StoreKind,
  storage: TestStorage,
): Promise<{ text: string; packed: boolean }[]> {
  const sql = "SELECT seq, data, packed FROM events WHERE kind = 'record' ORDER BY seq";
  let rows: RawEntry[];
  if (kind === 'sqlite') {
    const db = new Database(join(storage.dataDir, 'syncbridge.db'), { readonly: true });
    try {
      rows = db.prepare<[], RawEntry>(sql).all();
    } finally {
      db.close();
    }
  } else {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`SET search_path TO "${storage.config.databaseSchema}"`);
      rows = (await client.query<RawEntry>(sql)).rows;
    } finally {
      await client.end();
    }
  }
  return rows.map((r) => {
    if (r.packed) {
      const body = r.packed[1] === 1 ? inflateRawSync(r.packed.subarray(2)) : r.packed.subarray(2);
      return { text: body.toString('utf8'), packed: true };
    }
    return { text: typeof r.data === 'string' ? r.data : JSON.stringify(r.data), packed: false };
  });
}

describe.each(kinds)('sealing a compacted history (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let srv: TestServer;
  let api: ReturnType<typeof adminClient>;

  beforeAll(async () => {
    srv = await startTestServer(
      kind,
      { secretsKey: KEY, historyCompaction: { intervalMs: 0, afterMs: 0, batchSize: 25 } },
      storage,
    );
    api = adminClient(srv, TENANT);
  });
  afterAll(async () => {
    await srv?.close();
    await storage.cleanup();
  });

  async function compact(): Promise<void> {
    const before = new Date(Date.now() + 60_000).toISOString();
    for (let i = 0; i < 100; i++) {
      const batch = await srv.server.store.history.compactBatch(TENANT, { limit: 25, before });
      if (batch.done || batch.scanned === 0) return;
    }
  }

  async function expectVersionsExact(): Promise<void> {
    for (let v = 1; v <= VERSIONS; v++) {
      const res = await api.get(`/v1/records/patients/p1/versions/${v}`);
      expect(res.status, res.text).toBe(200);
      expect(res.body.data, `version ${v}`).toEqual(dataAt(v));
    }
  }

  it('reads every old version exactly and leaves no plaintext in the compacted log', async () => {
    expect((await api.put('/v1/collections/patients', { json: { strategy: 'manual' } })).status).toBe(200);
    expect((await api.put('/v1/records/patients/p1', { json: dataAt(1) })).status).toBe(201);
    for (let v = 2; v <= VERSIONS; v++) {
      const res = await api.put('/v1/records/patients/p1', { json: dataAt(v) });
      expect(res.status, res.text).toBe(200);
    }
    await compact();
    const compacted = await storedTexts(kind, storage);
    expect(compacted.filter((e) => e.packed).length).toBe(VERSIONS - 1);
    expect(compacted.some((e) => e.text.includes(PREFIX))).toBe(true);
    await expectVersionsExact();

    const put = await api.put('/v1/collections/patients', {
      json: { strategy: 'manual', sealedFields: ['ssn'] },
    });
    expect(put.status, put.text).toBe(200);
    await eventually(
      async () => {
        const p = await srv.server.store.sealedBackfill.readProgress(TENANT, 'patients');
        return p?.done ? p : undefined;
      },
      30_000,
      'the backfill to finish',
    );
    await expectVersionsExact();
    const sealed = await storedTexts(kind, storage);
    for (const entry of sealed) expect(entry.text).not.toContain(PREFIX);
    expect(sealed.some((e) => e.text.includes('Ann'))).toBe(true);
    // Compaction afterwards compacts the sealed stored form again; reads are unchanged.
    await compact();
    const again = await storedTexts(kind, storage);
    expect(again.filter((e) => e.packed).length).toBe(VERSIONS - 1);
    for (const entry of again) expect(entry.text).not.toContain(PREFIX);
    await expectVersionsExact();
    const history = await api.get('/v1/records/patients/p1/history');
    expect(history.body.versions.map((v: { data: { ssn: string } }) => v.data.ssn)).toEqual(
      Array.from({ length: VERSIONS }, (_, i) => ssnAt(i + 1)),
    );
  });

  it('compacts nothing of a tenant while a backfill of it is unfinished', async () => {
    expect((await api.put('/v1/records/charts/c1', { json: { n: 1, text: 't'.repeat(300) } })).status).toBe(
      201,
    );
    for (let n = 2; n <= 5; n++) {
      expect((await api.put('/v1/records/charts/c1', { json: { n, text: 't'.repeat(300) } })).status).toBe(
        200,
      );
    }
    const packedCount = async () => (await storedTexts(kind, storage)).filter((e) => e.packed).length;
    const before = await packedCount();
    const box = new SecretBox([parseSecretsKey(KEY)!]);
    const store = srv.server.store.sealedBackfill;
    const job = { tenant: TENANT, collection: 'charts', fields: ['text'] };
    let batches = 0;
    const stopped = await runSealedBackfill(store, box, job, {
      batchSize: 1,
      onProgress: () => batches++,
      shouldStop: () => batches >= 1,
    });
    expect(stopped.done).toBe(false);
    const paused = await srv.server.store.history.compactBatch(TENANT, {
      limit: 25,
      before: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(paused.packed).toBe(0);
    expect(await packedCount()).toBe(before);
    expect((await runSealedBackfill(store, box, job)).done).toBe(true);
    await compact();
    expect(await packedCount()).toBe(before + 4);
    for (let v = 1; v <= 5; v++) {
      const res = await api.get(`/v1/records/charts/c1/versions/${v}`);
      expect(res.body.data).toEqual({ n: v, text: 't'.repeat(300) });
    }
  });
});
