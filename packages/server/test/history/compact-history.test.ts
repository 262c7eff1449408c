/**
 * Compact history on every store: after superseded versions are compacted (deltas against the next
 * version, with keyframes), everything that reads old versions gives what it gave before, byte for
 * byte: history, the versions route (`/versions/{v}`), the audit log, a WebSocket backlog resumed from a
 * cursor, a fork from an old version, the base of a merge and of a stale write, replay --verify. The
 * raw database holds the compact form (and no sealed plaintext in it); `syncbridge history compact`
 * converts in batches with progress, and a run killed mid-way leaves every version readable.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyReplay } from '../../src/replay/verify.ts';
import { KEYFRAME_EVERY } from '../../src/store/history/packing.ts';
import { cliEnv, runCli } from '../cli/support.ts';
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
import { adminClient } from '../webhooks/support.ts';

const kinds = await storeKinds();
const KEY = randomBytes(32).toString('hex');
const SECRET = 'sealed-plaintext-71c0d9';
type Json = Record<string, unknown>;

interface RawEntry {
  seq: number;
  collection: string;
  id: string;
  data: unknown;
  packed: Buffer | null;
}

/** The record log entries as the database holds them. */
async function rawEntries(kind: StoreKind, storage: TestStorage): Promise<RawEntry[]> {
  const sql =
    "SELECT seq, collection, record_id AS id, data, packed FROM events WHERE kind = 'record' ORDER BY seq";
  if (kind === 'sqlite') {
    const db = new Database(join(storage.dataDir, 'syncbridge.db'), { readonly: true });
    try {
      return db.prepare<[], RawEntry>(sql).all();
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${storage.config.databaseSchema}"`);
    return (await client.query<RawEntry>(sql)).rows;
  } finally {
    await client.end();
  }
}

const payloadText = (packed: Buffer) =>
  (packed[1] === 1 ? inflateRawSync(packed.subarray(2)) : packed.subarray(2)).toString('utf8');

/** A ~10 KB document: 40 paragraphs. */
function documentAt(edit: number): Json {
  const paragraphs = Array.from(
    { length: 40 },
    (_, i) => `Paragraph ${i}: ${'the quick brown fox jumps over the lazy dog '.repeat(5)}`,
  );
  for (let e = 1; e <= edit; e++) paragraphs[(e * 7) % 40] = `${paragraphs[(e * 7) % 40]} edit ${e}.`;
  return { title: 'Design notes', paragraphs, meta: { edits: edit } };
}

describe.each(kinds)('compact history (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let srv: TestServer;
  let api: ReturnType<typeof adminClient>;
  const TENANT = 'writers';
  const EDITS = 70;

  /** Everything a client can read of old versions. */
  async function readAll(): Promise<Json> {
    const out: Json = {};
    for (const id of ['d1', 'd2']) {
      out[`history:${id}`] = (await api.get(`/v1/records/docs/${id}/history`)).text;
    }
    out['history:s1'] = (await api.get('/v1/records/secret/s1/history')).text;
    for (let v = 1; v <= EDITS + 2; v++) {
      out[`versions:${v}`] = (await api.get(`/v1/records/docs/d1/versions/${v}`)).text;
      out[`?version=${v}`] = (await api.get(`/v1/records/docs/d1?version=${v}`)).text;
    }
    const log: string[] = [];
    for (let after = 0; ; ) {
      const page = await api.get(`/v1/events?after=${after}&limit=37`);
      expect(page.status, page.text).toBe(200);
      const events = page.body.events as { seq: number }[];
      log.push(JSON.stringify(events));
      if (events.length < 37) break;
      after = events[events.length - 1]!.seq;
    }
    out.log = log.join('\n');
    return out;
  }

  /** What a device resuming after `since` receives on the docs and secret channels. */
  async function backlog(since: number): Promise<string> {
    const ws = await TestWsClient.connect(srv.wsUrl, await srv.token(TENANT, 'reader', { roles: ['admin'] }));
    try {
      const got: string[] = [];
      for (const channel of ['records:docs', 'records:secret']) {
        const sub = await ws.request({ type: 'subscribe', channel, since });
        const cursor = Number((sub as { cursor?: number }).cursor);
        const head = Number((await api.get('/v1/events?after=0&limit=1000')).body.events.at(-1).seq);
        // The backlog ends at the head; wait for the events of the channel up to it.
        const expected = (
          await api.get(`/v1/events?after=${since}&limit=1000&kind=record`)
        ).body.events.filter((e: { collection: string }) => `records:${e.collection}` === channel).length;
        const events = await ws.waitForEvents(expected, channel, 30_000);
        got.push(`${channel} ${cursor <= head} ${JSON.stringify(events)}`);
      }
      return got.join('\n');
    } finally {
      await ws.close();
    }
  }

  beforeAll(async () => {
    srv = await startTestServer(
      kind,
      { secretsKey: KEY, historyCompaction: { intervalMs: 0, afterMs: 0, batchSize: 25 } },
      storage,
    );
    api = adminClient(srv, TENANT);
    expect((await api.put('/v1/collections/docs', { json: { strategy: 'manual' } })).status).toBe(200);
    const sealed = await api.put('/v1/collections/secret', { json: { sealedFields: ['ssn'] } });
    expect(sealed.status, sealed.text).toBe(200);
    expect((await api.put('/v1/records/docs/d1', { json: documentAt(0) })).status).toBe(201);
    for (let e = 1; e <= 60; e++) {
      const headers = e === 3 ? { 'idempotency-key': 'edit-3' } : undefined;
      const res = await api.put('/v1/records/docs/d1', { json: documentAt(e), headers });
      expect(res.status, res.text).toBe(200);
    }
    // A reviewer forks at version 61 and rewrites the title while main goes on editing.
    const fork = await api.post('/v1/records/docs/d1/branches', { json: { name: 'review' } });
    expect(fork.status, fork.text).toBe(201);
    const onBranch = await api.patch('/v1/records/docs@review/d1', { json: { title: 'Reviewed notes' } });
    expect(onBranch.status, onBranch.text).toBe(200);
    for (let e = 61; e <= EDITS; e++) {
      expect(
        (await api.put('/v1/records/docs/d1', { json: { ...documentAt(e), title: `Notes ${e}` } })).status,
      ).toBe(200);
    }
    // A record deleted and created again; a record with a sealed field.
    await api.put('/v1/records/docs/d2', { json: { a: 1, text: 'x'.repeat(300) } });
    await api.patch('/v1/records/docs/d2', { json: { a: 2 } });
    await api.delete('/v1/records/docs/d2');
    await api.put('/v1/records/docs/d2', { json: { a: 3, text: 'y'.repeat(300) } });
    await api.patch('/v1/records/docs/d2', { json: { b: true } });
    for (let i = 0; i < 5; i++)
      await api.put('/v1/records/secret/s1', { json: { name: 'Ann', ssn: `${SECRET}-${i}`, n: i } });
  }, 120_000);
  afterAll(async () => {
    await srv?.close({ keepData: true });
    await storage.cleanup();
  });

  it('reads back every old version exactly as before, with the log holding deltas and keyframes', async () => {
    const before = await readAll();
    const resumed = await backlog(20);
    const compacted = await srv.server.compactHistory(Date.now() + 1000);
    expect(compacted.find((p) => p.tenant === TENANT)?.packed).toBeGreaterThan(EDITS);

    const raw = await rawEntries(kind, storage);
    const packed = raw.filter((e) => e.packed !== null);
    expect(packed.length).toBeGreaterThan(EDITS);
    expect(packed.every((e) => e.data === null)).toBe(true);
    expect(packed.some((e) => e.packed![0] === 0)).toBe(true);
    expect(packed.every((e) => e.packed![0] < KEYFRAME_EVERY)).toBe(true);
    // Sealed fields stay sealed in the compact form too.
    for (const e of packed) expect(payloadText(e.packed!)).not.toContain(SECRET);
    const docBytes = (rows: RawEntry[]) =>
      rows.reduce((n, e) => n + (e.packed ? e.packed.length : String(e.data ?? '').length), 0);
    const fullBytes = EDITS * JSON.stringify(documentAt(EDITS)).length;
    expect(docBytes(raw.filter((e) => e.collection === 'docs'))).toBeLessThan(fullBytes / 5);

    expect(await readAll()).toEqual(before);
    // A retried write whose result is rebuilt from its (now compacted) log entry answers as before.
    const retried = await api.put('/v1/records/docs/d1', {
      json: documentAt(3),
      headers: { 'idempotency-key': 'edit-3' },
    });
    expect(retried.status, retried.text).toBe(200);
    expect(retried.body).toMatchObject({ version: 4, data: documentAt(3) });
    expect(await backlog(20)).toBe(resumed);
    const replay = await verifyReplay(srv.server.store, { tenants: [TENANT] });
    expect(replay.differences).toEqual([]);
  }, 180_000);

  it('forks from, merges against and bases stale writes on compacted versions', async () => {
    const v5 = (await api.get('/v1/records/docs/d1/versions/5')).body.data;
    expect(v5).toEqual(documentAt(4));
    const old = await api.post('/v1/records/docs/d1/branches', { json: { name: 'old', fromVersion: 5 } });
    expect(old.status, old.text).toBe(201);
    expect((await api.get('/v1/records/docs@old/d1')).body.data).toEqual(documentAt(4));

    // Both sides changed the title: the manual queue gets it, based on the fork version's data.
    const merge = await api.post('/v1/records/docs/d1/branches/review/merge');
    expect(merge.status, merge.text).toBe(202);
    const conflict = (await api.get(`/v1/conflicts/${merge.body.conflictId}`)).body;
    expect(conflict.base).toEqual(documentAt(60));

    // A stale write based on version 10 (compacted): its conflict carries version 10 as base.
    const stale = await api.put('/v1/records/docs/d1', {
      json: { ...documentAt(10), title: 'stale' },
      headers: { 'if-match': '"10"' },
    });
    expect(stale.status, stale.text).toBe(409);
    const open = (await api.get('/v1/conflicts?status=open')).body.conflicts as Json[];
    // (Compared as values: PostgreSQL's jsonb keeps its own key order.)
    expect(open.some((c) => isDeepStrictEqual(c.base, documentAt(9)))).toBe(true);
  }, 120_000);

  it('converts with the CLI in batches with progress, and a run killed mid-way leaves data readable', async () => {
    for (let e = 0; e < 40; e++) {
      await api.put('/v1/records/docs/d3', { json: { ...documentAt(e), title: `d3 ${e}` } });
    }
    const before = (await api.get('/v1/records/docs/d3/history')).text;
    const env = cliEnv(storage);
    // Killed at its first progress line: the batches it committed are whole, the rest still full.
    const { spawn } = await import('node:child_process');
    const cli = join(import.meta.dirname, '../../src/cli/main.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'history', 'compact', '--batch', '3'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (/batch \d+/.test(err)) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => resolve());
      setTimeout(() => reject(new Error(`no progress: ${err}`)), 60_000).unref();
    });
    expect((await api.get('/v1/records/docs/d3/history')).text).toBe(before);

    const run = await runCli(['history', 'compact', '--batch', '10'], env);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/writers: batch \d+, log entry \d+ of \d+, \d+ versions compacted/);
    expect(run.stdout).toMatch(/compacted \d+ superseded versions of 1 tenant\(s\)/);
    expect((await api.get('/v1/records/docs/d3/history')).text).toBe(before);
    const raw = await rawEntries(kind, storage);
    // Only each record's current version (and deletes, which hold no data) stays full.
    const records = new Set(raw.map((e) => `${e.collection}/${e.id}`));
    expect(raw.filter((e) => e.data !== null && e.packed === null).length).toBeLessThanOrEqual(records.size);
    const replay = await verifyReplay(srv.server.store, { tenants: [TENANT] });
    expect(replay.differences).toEqual([]);
    const bad = await runCli(['history', 'compact', '--batch', 'x'], env);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('--batch x must be a whole number');
  }, 180_000);
});
