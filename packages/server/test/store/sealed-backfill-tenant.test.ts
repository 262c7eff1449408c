/**
 * `syncbridge sealed backfill` over every collection of a tenant, on every store: each collection's own
 * rows are sealed by a pass of its own, and the tenant's shared tables (remembered results, webhook
 * delivery bodies, webhook secrets) are read once, by one tenant-wide pass that seals each row by its own
 * collection's fields. A tenant-wide pass stopped mid-way is resumed by the next server start. Admins see
 * a collection's progress at `GET /v1/collections/{c}/sealed-backfill`.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SealedBackfillStore } from '../../src/store/sealed-backfill.ts';
import { runTenantBackfill } from '../../src/store/sealed-backfill-tenant.ts';
import { parseSecretsKey, SecretBox } from '../../src/store/secret-box.ts';
import { cliEnv, runCli } from '../cli/support.ts';
import { rawRows } from '../helpers/raw-database.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../helpers/server.ts';
import { eventually, Receiver } from '../webhooks/receiver.ts';
import { adminClient, register } from '../webhooks/support.ts';

const kinds = await storeKinds();
const KEY = randomBytes(32).toString('hex');
const SSN = 'alpha-ssn-plain-5b1f0c';
const CARD = 'beta-card-plain-c93d27';
const NOTE = 'gamma-note-stays-plain-07e4aa';
const LATE = 'delta-late-plain-e2f8b1';
const ALPHA_NAME = 'alpha-name-plain-9a0d3e';
const SEALED = { alpha: { sealedFields: ['ssn'] }, beta: { sealedFields: ['card'] } };

describe.each(kinds)('sealed backfill of a whole tenant (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let receiver: Receiver;
  let srv: TestServer | null = null;
  let api: ReturnType<typeof adminClient>;
  const mutations: { collection: string; data: Record<string, unknown> }[] = [];

  beforeAll(async () => {
    receiver = await Receiver.start();
    srv = await startTestServer(
      kind,
      { secretsKey: KEY, webhookAllowPrivate: ['127.0.0.1/32'], webhookPollMs: 100 },
      storage,
    );
    api = adminClient(srv, 'acme');
    await register(api, { url: receiver.url, eventTypes: ['record.*'], secretKey: 'y'.repeat(32) });
    for (let i = 0; i < 4; i++) {
      mutations.push({ collection: 'alpha', data: { name: `${ALPHA_NAME}-${i}`, ssn: `${SSN}-${i}` } });
      mutations.push({ collection: 'beta', data: { name: `b${i}`, card: `${CARD}-${i}` } });
      mutations.push({ collection: 'gamma', data: { name: `g${i}`, note: `${NOTE}-${i}` } });
    }
    const res = await api.post('/v1/mutations', {
      json: {
        mutations: mutations.map((m, i) => ({
          mid: `m${i}`,
          collection: m.collection,
          id: `r${i}`,
          op: 'put',
          data: m.data,
        })),
      },
    });
    expect(res.status, res.text).toBe(200);
    await eventually(
      () => (receiver.requests.length >= mutations.length ? true : undefined),
      20_000,
      'deliveries',
    );
    await srv.close({ keepData: true });
    srv = null;
  }, 60_000);
  afterAll(async () => {
    await srv?.close({ keepData: true });
    await receiver?.close();
    await storage.cleanup();
  });

  it('reads the shared tables once and seals each row by its own collection', async () => {
    const config = join(storage.dataDir, 'sealed.json');
    writeFileSync(config, JSON.stringify({ collections: SEALED }));
    const env = cliEnv(storage, { SYNCBRIDGE_SECRETS_KEY: KEY, SYNCBRIDGE_CONFIG: config });
    const run = await runCli(['sealed', 'backfill', '--tenant', 'acme', '--batch', '2'], env);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/sealed acme\/alpha \[ssn\]: \d+ of \d+ rows rewritten/);
    expect(run.stdout).toMatch(/sealed acme\/gamma \[\]: 0 of \d+ rows rewritten/);
    expect(run.stdout).toMatch(
      /sealed acme \(results, deliveries, webhooks of every collection\): \d+ of \d+/,
    );
    // The shared tables' batches are the tenant-wide pass's only.
    const lines = run.stderr.split('\n');
    expect(lines.some((l) => /^acme\/\*: (results|deliveries|webhooks),/.test(l))).toBe(true);
    expect(lines.filter((l) => /^acme\/(alpha|beta|gamma): (results|deliveries|webhooks)/.test(l))).toEqual(
      [],
    );

    const raw = await rawRows(kind, storage, ['sealed_backfills']);
    for (let i = 0; i < 4; i++) {
      expect(raw).not.toContain(`${SSN}-${i}`);
      expect(raw).not.toContain(`${CARD}-${i}`);
      expect(raw).toContain(`${NOTE}-${i}`);
    }

    srv = await startTestServer(kind, { secretsKey: KEY, collections: SEALED }, storage);
    api = adminClient(srv, 'acme');
    const wide = await srv.server.store.sealedBackfill.readProgress('acme', '*');
    expect(wide).toMatchObject({ done: true, collections: { alpha: ['ssn'], beta: ['card'], gamma: [] } });
    // Each remembered result is read once: 12 of them, plus deliveries and the webhook.
    expect(wide!.scanned).toBeGreaterThanOrEqual(mutations.length * 2 + 1);
    expect(wide!.scanned).toBeLessThan(mutations.length * 4);
    // Clients read plaintext; a retried mid answers with its record as written.
    expect((await api.get('/v1/records/alpha/r0')).body.data.ssn).toBe(`${SSN}-0`);
    const again = await api.post('/v1/mutations', {
      json: { mutations: [{ mid: 'm1', collection: 'beta', id: 'r1', op: 'put', data: mutations[1]!.data }] },
    });
    expect(JSON.stringify(again.body)).toContain(`${CARD}-0`);
  }, 120_000);

  it('shows admins the progress of a collection, its shared rows included', async () => {
    const view = await api.get('/v1/collections/alpha/sealed-backfill');
    expect(view.status, view.text).toBe(200);
    expect(view.body).toMatchObject({
      name: 'alpha',
      backfill: { fields: ['ssn'], done: true, activity: null, tenantRows: { done: true } },
    });
    expect(view.body.backfill.scanned).toBeGreaterThan(0);
    expect((await api.get('/v1/collections/never/sealed-backfill')).body).toEqual({
      name: 'never',
      backfill: null,
    });
    const user = await srv!.token('acme', 'someone');
    const refused = await fetch(`${srv!.url}/v1/collections/alpha/sealed-backfill`, {
      headers: { authorization: `Bearer ${user}` },
    });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    expect((await api.get('/v1/collections/bad%20name/sealed-backfill')).status).toBe(400);

    // A field sealed over REST: the server's own pass walks every stage of the collection.
    expect((await api.put('/v1/records/delta/d1', { json: { late: LATE } })).status).toBe(201);
    expect((await api.put('/v1/collections/delta', { json: { sealedFields: ['late'] } })).status).toBe(200);
    const done = await eventually(
      async () => {
        const got = await api.get('/v1/collections/delta/sealed-backfill');
        return got.body.backfill?.done ? got.body.backfill : undefined;
      },
      30_000,
      'the delta backfill',
    );
    expect(done).toMatchObject({ fields: ['late'], stage: 'webhooks', activity: null });
    expect(done.tenantRows).toBeUndefined();
  }, 60_000);

  it('a tenant-wide pass stopped mid-way is resumed when the server starts', async () => {
    const box = new SecretBox([parseSecretsKey(KEY)!]);
    const store = srv!.server.store.sealedBackfill;
    let writes = 0;
    const crashing: SealedBackfillStore = {
      readProgress: (t, c) => store.readProgress(t, c),
      listUnfinished: () => store.listUnfinished(),
      readRows: (...args) => store.readRows(...args),
      writeRows: (...args) => {
        // Past the collections' passes, inside the tenant-wide one.
        if (args[0] === 'results' && ++writes === 2) throw new Error('crashed');
        return store.writeRows(...args);
      },
    };
    // A different set of fields starts every pass afresh.
    const targets = [
      { collection: 'alpha', fields: ['ssn', 'name'] },
      { collection: 'beta', fields: ['card'] },
    ];
    expect(await rawRows(kind, storage, ['sealed_backfills'])).toContain(`${ALPHA_NAME}-0`);
    await expect(runTenantBackfill(crashing, box, 'acme', targets, { batchSize: 2 })).rejects.toThrow(
      'crashed',
    );
    expect(await store.listUnfinished()).toEqual([
      expect.objectContaining({ collection: '*', done: false, stage: 'results' }),
    ]);
    const partial = await api.get('/v1/collections/alpha/sealed-backfill');
    expect(partial.body.backfill).toMatchObject({
      done: false,
      stage: 'results',
      tenantRows: { done: false },
    });

    await srv!.close({ keepData: true });
    srv = await startTestServer(kind, { secretsKey: KEY, collections: SEALED }, storage);
    api = adminClient(srv, 'acme');
    const resumed = await eventually(
      async () => {
        const p = await srv!.server.store.sealedBackfill.readProgress('acme', '*');
        return p?.done ? p : undefined;
      },
      30_000,
      'the tenant-wide pass to finish',
    );
    // It went on with the fields it started with.
    expect(resumed.collections).toEqual({ alpha: ['ssn', 'name'], beta: ['card'] });
    const view = await api.get('/v1/collections/alpha/sealed-backfill');
    expect(view.body.backfill).toMatchObject({
      done: true,
      fields: ['ssn', 'name'],
      tenantRows: { done: true },
    });
    const raw = await rawRows(kind, storage, ['sealed_backfills']);
    for (let i = 0; i < 4; i++) expect(raw).not.toContain(`${ALPHA_NAME}-${i}`);
    expect((await api.get('/v1/records/alpha/r0')).body.data).toMatchObject({
      name: `${ALPHA_NAME}-0`,
      ssn: `${SSN}-0`,
    });
  }, 60_000);
});
