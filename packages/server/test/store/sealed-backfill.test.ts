/**
 * The sealed-fields backfill on every store, checked in the raw database: data a collection stored
 * before `sealedFields` named its fields (records, log entries and `previous`, a branch's versions and
 * fork point, stored conflicts, remembered mutation results, webhook delivery bodies) is encrypted by the server in
 * the background once the setting gains them, while clients keep reading plaintext; a pass stopped
 * mid-way resumes after its last batch, and a server resumes an unfinished pass when it starts; `syncbridge sealed backfill` re-seals everything under a rotated
 * key, after which the previous key is no longer needed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSealedBackfill, type SealedBackfillStore } from '../../src/store/sealed-backfill.ts';
import { parseSecretsKey, SecretBox } from '../../src/store/secret-box.ts';
import { cliEnv, runCli, STACK } from '../cli/support.ts';
import { rawRows } from '../helpers/raw-database.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { eventually, Receiver } from '../webhooks/receiver.ts';
import { adminClient, register } from '../webhooks/support.ts';

const kinds = await storeKinds();
const KEY = randomBytes(32).toString('hex');
const NEW_KEY = randomBytes(32).toString('hex');
const keyIdOf = (hex: string) => new SecretBox([parseSecretsKey(hex)!]).sealingKeyId;
const SSN = 'ssn-before-sealing-3c9d01';
const SSN_2 = 'ssn-before-sealing-second-77ab2e';
const SSN_WS = 'ssn-before-sealing-ws-5e0f9a';
const SSN_BRANCH = 'ssn-before-sealing-branch-a81c44';
const NOTE = 'chart-before-sealing-0d6b3f';
const SECRETS = [SSN, SSN_2, SSN_WS, SSN_BRANCH, NOTE];
const SALARY = 'salary-before-sealing-91e2c7';
const VISIT = 'visit-note-before-sealing-4d2a90';

describe.each(kinds)('sealed fields backfill (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let receiver: Receiver;
  let srv: TestServer;
  let api: ReturnType<typeof adminClient>;

  beforeAll(async () => {
    receiver = await Receiver.start();
    srv = await startTestServer(
      kind,
      { secretsKey: KEY, webhookAllowPrivate: ['127.0.0.1/32'], webhookPollMs: 100 },
      storage,
    );
    api = adminClient(srv, 'clinic');
    await register(api, { url: receiver.url, eventTypes: ['record.patients.*'], secretKey: 'x'.repeat(32) });
  });
  afterAll(async () => {
    await srv?.close({ keepData: true });
    await receiver?.close();
    await storage.cleanup();
  });

  it('seals what was stored before a field joined sealedFields, in the background, clients reading plain', async () => {
    expect((await api.put('/v1/collections/patients', { json: { strategy: 'manual' } })).status).toBe(200);
    const first = await api.put('/v1/records/patients/p1', {
      json: { name: 'Ann', ssn: SSN, chart: { note: NOTE } },
    });
    expect(first.status, first.text).toBe(201);
    expect(
      (await api.patch('/v1/records/patients/p1', { json: { ssn: SSN_2 }, headers: { 'if-match': '"1"' } }))
        .status,
    ).toBe(200);
    const stale = await api.put('/v1/records/patients/p1', {
      json: { name: 'Ann B', ssn: SSN },
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status, stale.text).toBe(409);
    // A write with a mid over the WebSocket: its result is remembered for duplicates.
    const ws = await TestWsClient.connect(srv.wsUrl, await srv.token('clinic', 'nurse'));
    const reply = await ws.request({
      type: 'mutate',
      mutations: [
        { mid: 'ws-1', collection: 'patients', id: 'p2', op: 'put', data: { name: 'Bo', ssn: SSN_WS } },
      ],
    });
    expect(JSON.stringify(reply)).toContain('applied');
    await ws.close();
    // A branch of p1 with its own version.
    expect((await api.post('/v1/records/patients/p1/branches', { json: { name: 'review' } })).status).toBe(
      201,
    );
    expect((await api.patch('/v1/records/patients@review/p1', { json: { ssn: SSN_BRANCH } })).status).toBe(
      200,
    );
    await eventually(() => (receiver.requests.length >= 3 ? true : undefined), 10_000, 'three deliveries');
    const before = await rawRows(kind, storage);
    for (const secret of SECRETS) expect(before).toContain(secret);

    const put = await api.put('/v1/collections/patients', {
      json: { strategy: 'manual', sealedFields: ['ssn', 'chart'] },
    });
    expect(put.status, put.text).toBe(200);
    const progress = await eventually(
      async () => {
        const p = await srv.server.store.sealedBackfill.readProgress('clinic', 'patients');
        return p?.done ? p : undefined;
      },
      30_000,
      'the backfill to finish',
    );
    expect(progress.fields).toEqual(['ssn', 'chart']);
    expect(progress.rewritten).toBeGreaterThan(0);
    const after = await rawRows(kind, storage);
    expect(after).toContain('Ann');
    for (const secret of SECRETS) expect(after).not.toContain(secret);
    if (kind === 'sqlite') {
      const file = join(storage.dataDir, 'syncbridge.db');
      const bytes = [file, `${file}-wal`]
        .filter(existsSync)
        .map((f) => readFileSync(f).toString('latin1'))
        .join('');
      for (const secret of SECRETS) expect(bytes).not.toContain(secret);
    }

    // Clients read plaintext everywhere.
    expect((await api.get('/v1/records/patients/p1')).body.data).toMatchObject({
      ssn: SSN_2,
      chart: { note: NOTE },
    });
    const history = await api.get('/v1/records/patients/p1/history');
    expect(history.body.versions.map((v: { data: { ssn: string } }) => v.data.ssn)).toEqual([SSN, SSN_2]);
    const [conflict] = (await api.get('/v1/conflicts?status=open')).body.conflicts;
    expect([conflict.base.ssn, conflict.server.ssn, conflict.client.ssn]).toEqual([SSN, SSN_2, SSN]);
    expect((await api.get('/v1/records/patients@review/p1')).body.data.ssn).toBe(SSN_BRANCH);
    const diff = await api.get('/v1/records/patients/p1/branches/review/diff');
    expect(diff.status, diff.text).toBe(200);
    // The fork point (sealed by the backfill) is read in plain: the branch changed ssn from SSN_2.
    expect(JSON.stringify(diff.body)).toContain(SSN_2);
    expect(JSON.stringify(diff.body)).not.toContain('sbx1.');
    // A branch forked now has its fork point sealed as it is written.
    expect((await api.post('/v1/records/patients/p1/branches', { json: { name: 'late' } })).status).toBe(201);
    expect(await rawRows(kind, storage)).not.toContain(SSN_2);
    expect((await api.get('/v1/records/patients/p1/branches/late')).status).toBe(200);
    const again = await TestWsClient.connect(srv.wsUrl, await srv.token('clinic', 'nurse'));
    const dup = await again.request({
      type: 'mutate',
      mutations: [
        { mid: 'ws-1', collection: 'patients', id: 'p2', op: 'put', data: { name: 'Bo', ssn: SSN_WS } },
      ],
    });
    expect(JSON.stringify(dup)).toContain(SSN_WS);
    await again.close();
  });

  it('resumes a pass stopped mid-way after its last batch', async () => {
    for (let i = 0; i < 6; i++)
      expect(
        (await api.put(`/v1/records/staff/s${i}`, { json: { name: `S${i}`, salary: `${SALARY}-${i}` } }))
          .status,
      ).toBe(201);
    const box = new SecretBox([parseSecretsKey(KEY)!]);
    const store = srv.server.store.sealedBackfill;
    const job = { tenant: 'clinic', collection: 'staff', fields: ['salary'] };
    // The first pass dies on its third write (as a crash would, between batches).
    let writes = 0;
    const crashing: SealedBackfillStore = {
      readProgress: (t, c) => store.readProgress(t, c),
      listUnfinished: () => store.listUnfinished(),
      readRows: (...args) => store.readRows(...args),
      writeRows: (...args) => {
        if (++writes === 3) throw new Error('crashed');
        return store.writeRows(...args);
      },
    };
    await expect(runSealedBackfill(crashing, box, job, { batchSize: 2 })).rejects.toThrow('crashed');
    const stopped = await store.readProgress('clinic', 'staff');
    expect(stopped).toMatchObject({ done: false, stage: 'records', scanned: 4, rewritten: 4 });
    expect(await rawRows(kind, storage)).toContain(`${SALARY}-5`);

    const rowsRead: string[] = [];
    const counting: SealedBackfillStore = {
      ...crashing,
      readRows: async (...args) => {
        const rows = await store.readRows(...args);
        if (args[0] === 'records') rowsRead.push(...rows.map((r) => r.key));
        return rows;
      },
      writeRows: (...args) => store.writeRows(...args),
    };
    const done = await runSealedBackfill(counting, box, job, { batchSize: 2 });
    expect(done.done).toBe(true);
    // It went on from the fifth record, not from the first.
    expect(rowsRead).toHaveLength(2);
    expect(done.rewritten).toBeGreaterThanOrEqual(6 + 6);
    const raw = await rawRows(kind, storage);
    for (let i = 0; i < 6; i++) expect(raw).not.toContain(`${SALARY}-${i}`);
    expect((await api.get('/v1/records/staff/s5')).body.data.salary).toBe(`${SALARY}-5`);
  });

  it('resumes a pass left unfinished when the server starts again', async () => {
    for (let i = 0; i < 5; i++)
      expect((await api.put(`/v1/records/visits/v${i}`, { json: { note: `${VISIT}-${i}` } })).status).toBe(
        201,
      );
    const store = srv.server.store.sealedBackfill;
    let writes = 0;
    const crashing: SealedBackfillStore = {
      readProgress: (t, c) => store.readProgress(t, c),
      listUnfinished: () => store.listUnfinished(),
      readRows: (...args) => store.readRows(...args),
      writeRows: (...args) => {
        if (++writes === 2) throw new Error('crashed');
        return store.writeRows(...args);
      },
    };
    const box = new SecretBox([parseSecretsKey(KEY)!]);
    const job = { tenant: 'clinic', collection: 'visits', fields: ['note'] };
    await expect(runSealedBackfill(crashing, box, job, { batchSize: 2 })).rejects.toThrow('crashed');
    expect(await store.listUnfinished()).toEqual([
      expect.objectContaining({ collection: 'visits', done: false }),
    ]);
    // The setting that asked for it is in the config file of the next start.
    await srv.close({ keepData: true });
    srv = await startTestServer(
      kind,
      { secretsKey: KEY, collections: { visits: { sealedFields: ['note'] } } },
      storage,
    );
    api = adminClient(srv, 'clinic');
    const done = await eventually(
      async () => {
        const p = await srv.server.store.sealedBackfill.readProgress('clinic', 'visits');
        return p?.done ? p : undefined;
      },
      30_000,
      'the resumed backfill to finish',
    );
    expect(done.scanned).toBeGreaterThanOrEqual(10);
    const raw = await rawRows(kind, storage);
    for (let i = 0; i < 5; i++) expect(raw).not.toContain(`${VISIT}-${i}`);
    expect((await api.get('/v1/records/visits/v4')).body.data.note).toBe(`${VISIT}-4`);
  });

  it('re-seals everything under a rotated key with `syncbridge sealed backfill`', async () => {
    await srv.close({ keepData: true });
    const env = cliEnv(storage, { SYNCBRIDGE_SECRETS_KEY: NEW_KEY, SYNCBRIDGE_SECRETS_KEYS_PREVIOUS: KEY });
    const run = await runCli(['sealed', 'backfill', '--tenant', 'clinic', '--batch', '3'], env);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/sealed clinic\/patients \[ssn, chart\]: \d+ of \d+ rows rewritten/);
    expect(run.stdout).toMatch(/sealed clinic\/staff \[\]/);
    expect(run.stderr).toMatch(/clinic\/patients: records, \d+ rows read/);
    const raw = await rawRows(kind, storage);
    expect(raw).not.toContain(`sbx1.${keyIdOf(KEY)}.`);
    expect(raw).toContain(`sbx1.${keyIdOf(NEW_KEY)}.`);
    for (const secret of SECRETS) expect(raw).not.toContain(secret);

    // The previous key is no longer needed.
    srv = await startTestServer(kind, { secretsKey: NEW_KEY }, storage);
    api = adminClient(srv, 'clinic');
    expect((await api.get('/v1/records/patients/p1')).body.data).toMatchObject({
      ssn: SSN_2,
      chart: { note: NOTE },
    });
    const history = await api.get('/v1/records/patients/p1/history');
    expect(history.body.versions.map((v: { data: { ssn: string } }) => v.data.ssn)).toEqual([SSN, SSN_2]);
    expect((await api.get('/v1/records/staff/s0')).body.data.salary).toBe(`${SALARY}-0`);
    const [conflict] = (await api.get('/v1/conflicts?status=open')).body.conflicts;
    expect(conflict.server.ssn).toBe(SSN_2);

    // Refusals are one line each.
    const bad = await runCli(['sealed', 'backfill', '--tenant', 'nobody'], env);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/tenant nobody does not exist/);
    expect(bad.stderr).not.toMatch(STACK);
    const noKey = await runCli(['sealed', 'backfill'], cliEnv(storage));
    expect(noKey.status).toBe(1);
    expect(noKey.stderr).toMatch(/SYNCBRIDGE_SECRETS_KEY/);
  }, 120_000);
});
