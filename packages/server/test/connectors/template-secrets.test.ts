/**
 * What a connector's templates can read, on every store. A connector defined over REST that names any
 * `{{env.…}}` variable is refused at definition time with the place of the placeholder, and nothing of
 * the server's environment reaches an upstream by any template (headers, path, query, login and
 * subscribe messages), not even from a definition stored before this rule. Such a connector uses its
 * tenant's connector secrets instead (`{{secrets.NAME}}`): set over REST, sealed at rest (the stored
 * column never holds the value), never echoed back, and usable only by connectors of the same tenant.
 * Config-file connectors read only the environment variables `connectors.env` lists.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type ServerConfig } from '../../src/config/config.ts';
import { openConnectorStore } from '../../src/startup/storage.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  type StoreKind,
  startTestServer,
  storeKinds,
  TEST_JWT_SECRET,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { expectError, rest } from '../http/rest.ts';
import { waitFor } from './support.ts';
import { RecordingUpstream } from './upstream.ts';

const kinds = await storeKinds();
const SECRETS_KEY = randomBytes(32).toString('hex');
const CANARY = `canary-${randomBytes(8).toString('hex')}`;
const SECRET_A = `tenant-a-key-${randomBytes(8).toString('hex')}`;
const SECRET_B = `tenant-b-key-${randomBytes(8).toString('hex')}`;

/** The server's own environment, as a tenant admin would like to read it. */
const PLANTED = { SYNCBRIDGE_JWT_SECRET: CANARY, SB_TEST_CANARY: CANARY };
const saved: Record<string, string | undefined> = {};
beforeAll(() => {
  for (const [k, v] of Object.entries(PLANTED)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

function pullSpec(name: string, upstream: RecordingUpstream, http: Record<string, unknown> = {}, extra = {}) {
  return {
    name,
    kind: 'pull',
    connections: [{ id: 'c1' }],
    http: { baseUrl: upstream.httpUrl, changesPath: `${name}/changes?cursor={{cursor}}`, ...http },
    ...extra,
  };
}

function feedSpec(name: string, upstream: RecordingUpstream, extra: Record<string, unknown> = {}) {
  return {
    name,
    kind: 'ws-feed',
    url: `${upstream.wsUrl}/${name}`,
    symbols: ['AAA'],
    subscribeMessage: { op: 'subscribe', symbols: '{{symbols}}' },
    ...extra,
  };
}

/** Every template place of both built-in kinds, each holding `placeholder` (one definition per place). */
function definitionsNaming(upstream: RecordingUpstream, placeholder: string) {
  return [
    {
      at: '/http/headers/Authorization',
      spec: pullSpec('p1', upstream, { headers: { Authorization: `Bearer ${placeholder}` } }),
    },
    { at: '/http/changesPath', spec: pullSpec('p2', upstream, { changesPath: `x?token=${placeholder}` }) },
    { at: '/http/snapshotPath', spec: pullSpec('p3', upstream, { snapshotPath: `snap/${placeholder}` }) },
    {
      at: '/http/baseUrl',
      spec: pullSpec('p4', upstream, { baseUrl: `${upstream.httpUrl}/${placeholder}` }),
    },
    {
      at: '/connections/0/params/key',
      spec: pullSpec('p5', upstream, {}, { connections: [{ id: 'c1', params: { key: placeholder } }] }),
    },
    { at: '/headers/X-Key', spec: feedSpec('f1', upstream, { headers: { 'X-Key': placeholder } }) },
    {
      at: '/authMessage/key',
      spec: feedSpec('f2', upstream, { authMessage: { op: 'auth', key: placeholder } }),
    },
    {
      at: '/subscribeMessage/auth',
      spec: feedSpec('f3', upstream, {
        subscribeMessage: { op: 'sub', symbols: '{{symbols}}', auth: placeholder },
      }),
    },
    {
      at: '/unsubscribeMessage/0',
      spec: feedSpec('f4', upstream, { unsubscribeMessage: [placeholder, '{{symbols}}'] }),
    },
    { at: '/heartbeat/message', spec: feedSpec('f5', upstream, { heartbeat: { message: placeholder } }) },
    { at: '/url', spec: feedSpec('f6', upstream, { url: `${upstream.wsUrl}/?t=${placeholder}` }) },
  ];
}

/** The `sealed` column of every stored connector secret, and (SQLite) the database files' bytes. */
async function storedSecrets(
  kind: StoreKind,
  storage: TestStorage,
): Promise<{ rows: string[]; raw: string }> {
  if (kind === 'sqlite') {
    const file = join(storage.dataDir, 'connectors.db');
    const db = new Database(file, { readonly: true });
    try {
      const rows = db
        .prepare<[], { sealed: string }>('SELECT sealed FROM connector_secrets')
        .all()
        .map((r) => r.sealed);
      let raw = readFileSync(file).toString('latin1');
      try {
        raw += readFileSync(`${file}-wal`).toString('latin1');
      } catch {
        // no WAL file left
      }
      return { rows, raw };
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const res = await client.query<{ sealed: string }>(
      `SELECT sealed FROM ${storage.config.databaseSchema}.connector_secrets`,
    );
    const rows = res.rows.map((r) => r.sealed);
    return { rows, raw: rows.join('\n') };
  } finally {
    await client.end();
  }
}

describe.each(kinds)('connector templates and secrets (%s)', (kind) => {
  let upstream: RecordingUpstream;
  let srv: TestServer | null = null;
  const settings: Partial<ServerConfig> = { webhookAllowPrivate: ['127.0.0.1/32'], secretsKey: SECRETS_KEY };
  const as = (tenant: string) => (method: string, path: string, json?: unknown) =>
    rest(srv!.url, method, path, { apiKey: srv!.adminKey, tenant, json });

  beforeAll(async () => {
    upstream = await RecordingUpstream.start();
  });
  afterAll(async () => {
    await upstream.close();
  });
  afterEach(async () => {
    await srv?.close();
    srv = null;
    // Whatever a test did, the server's environment never left it.
    expect(upstream.text()).not.toContain(CANARY);
    expect(upstream.text()).not.toContain(TEST_JWT_SECRET);
    upstream.received.length = 0;
  });

  it('refuses a REST definition naming any env. variable, in every template place, with the place', async () => {
    srv = await startTestServer(kind, settings);
    const admin = as('acme');
    for (const placeholder of [
      '{{env.SYNCBRIDGE_JWT_SECRET}}',
      '{{ env.SB_TEST_CANARY }}',
      '{{ENV.SB_TEST_CANARY}}',
    ]) {
      for (const { at, spec } of definitionsNaming(upstream, placeholder)) {
        const res = await admin('POST', '/v1/connectors', spec);
        expectError(res, 400, 'BAD_REQUEST');
        expect(res.body.error.details.problems, `${placeholder} at ${at}`).toEqual(
          expect.arrayContaining([
            expect.stringContaining(`${spec.name}${at}: ${placeholder.replace(/\s/g, '')}`),
          ]),
        );
        expect(res.body.error.message).toMatch(/server's environment/);
      }
    }
    expect((await admin('GET', '/v1/connectors')).body.connectors).toEqual([]);

    // Nor can a definition that was accepted be changed to name one.
    const ok = pullSpec('ok', upstream, { headers: { 'X-Tag': 'plain' } });
    expect((await admin('POST', '/v1/connectors', ok)).status).toBe(201);
    const changed = await admin('PUT', '/v1/connectors/ok', {
      ...ok,
      http: { ...ok.http, headers: { 'X-Tag': '{{env.SYNCBRIDGE_JWT_SECRET}}' } },
    });
    expectError(changed, 400, 'BAD_REQUEST');
    expect(changed.body.error.details.problems[0]).toContain('ok/http/headers/X-Tag');
    await waitFor(
      () => upstream.received.filter((r) => r.url.startsWith('/ok/')).length,
      (n) => n >= 1,
      'the accepted connector to pull',
    );
  });

  it('a definition naming env. stored before the rule is not started, and sends nothing', async () => {
    const storage = createTestStorage(kind);
    // An older server stored it: write it where REST definitions are kept.
    const config = loadConfig({ env: {}, overrides: { ...storage.config } });
    const setup = await startTestServer(kind, settings, storage);
    await setup.close({ keepData: true });
    const connectors = await openConnectorStore(config);
    await connectors.putConnector('acme', 'old', {
      tenant: 'acme',
      ...pullSpec('old', upstream, {
        changesPath: 'old/changes?k={{env.SB_TEST_CANARY}}',
        headers: { Authorization: 'Bearer {{env.SYNCBRIDGE_JWT_SECRET}}' },
      }),
    });
    await connectors.putConnector('acme', 'oldfeed', {
      tenant: 'acme',
      ...feedSpec('oldfeed', upstream, {
        headers: { 'X-Key': '{{env.SYNCBRIDGE_JWT_SECRET}}' },
        authMessage: { key: '{{env.SB_TEST_CANARY}}' },
      }),
    });
    await connectors.close();
    srv = await startTestServer(kind, settings, storage);
    expect((await as('acme')('GET', '/v1/connectors')).body.connectors).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(upstream.received).toEqual([]);
  });

  it('a tenant secret reaches the upstream by every template place, sealed at rest and never echoed', async () => {
    srv = await startTestServer(kind, settings);
    const admin = as('acme');
    const set = await admin('PUT', '/v1/connector-secrets/api_key', { value: SECRET_A });
    expect(set.status, set.text).toBe(200);
    expect(Object.keys(set.body).sort()).toEqual(['createdAt', 'name', 'updatedAt']);
    expect(set.text).not.toContain(SECRET_A);
    expect((await admin('PUT', '/v1/connector-secrets/other', { value: 'x' })).status).toBe(200);
    const list = await admin('GET', '/v1/connector-secrets');
    expect(list.body.secrets.map((s: { name: string }) => s.name)).toEqual(['api_key', 'other']);
    expect(list.text).not.toContain(SECRET_A);

    const pull = pullSpec('bank', upstream, {
      changesPath: 'bank/changes?key={{secrets.api_key}}&cursor={{cursor}}',
      headers: { Authorization: 'Bearer {{ secrets.api_key }}' },
    });
    const feed = feedSpec('feed', upstream, {
      headers: { 'X-Key': '{{secrets.api_key}}' },
      authMessage: { op: 'auth', key: '{{secrets.api_key}}' },
    });
    for (const spec of [pull, feed]) {
      const created = await admin('POST', '/v1/connectors', spec);
      expect(created.status, created.text).toBe(201);
      expect(created.text).not.toContain(SECRET_A);
    }
    const request = await waitFor(
      () => upstream.received.find((r) => r.kind === 'http' && r.url.startsWith('/bank/')),
      (r) => r !== undefined,
      'the pull',
    );
    expect(request!.headers.authorization).toBe(`Bearer ${SECRET_A}`);
    expect(new URL(request!.url, upstream.httpUrl).searchParams.get('key')).toBe(SECRET_A);
    const auth = await waitFor(
      () => upstream.received.find((r) => r.kind === 'message' && r.url === '/feed'),
      (r) => r !== undefined,
      'the feed login',
    );
    expect(JSON.parse(auth!.body)).toEqual({ op: 'auth', key: SECRET_A });
    const upgrade = upstream.received.find((r) => r.kind === 'upgrade' && r.url === '/feed');
    expect(upgrade?.headers['x-key']).toBe(SECRET_A);

    // Never in an answer: status, list, definition.
    for (const path of [
      '/v1/connectors',
      '/v1/connectors/bank',
      '/v1/connectors/feed',
      '/v1/connector-secrets',
    ]) {
      expect((await admin('GET', path)).text).not.toContain(SECRET_A);
    }
    // Sealed at rest.
    const stored = await storedSecrets(kind, srv.storage);
    expect(stored.rows).toHaveLength(2);
    for (const row of stored.rows) expect(row).toMatch(/^sbx1\./);
    expect(stored.raw).not.toContain(SECRET_A);

    // A changed value is used from the next request; a deleted one makes the connector fail, not send blanks.
    expect((await admin('PUT', '/v1/connector-secrets/api_key', { value: `${SECRET_A}-2` })).status).toBe(
      200,
    );
    upstream.received.length = 0;
    expect((await admin('POST', '/v1/connectors/bank/trigger', {})).status).toBe(200);
    expect(upstream.received.find((r) => r.url.startsWith('/bank/'))?.headers.authorization).toBe(
      `Bearer ${SECRET_A}-2`,
    );
    expect((await admin('DELETE', '/v1/connector-secrets/api_key')).status).toBe(204);
    expectError(await admin('DELETE', '/v1/connector-secrets/api_key'), 404, 'NOT_FOUND');
    upstream.received.length = 0;
    const failed = await admin('POST', '/v1/connectors/bank/trigger', {});
    expect(JSON.stringify(failed.body)).toMatch(/connector secret api_key is not set/);
    expect(upstream.received.filter((r) => r.url.startsWith('/bank/'))).toEqual([]);
  });

  it("tenant B cannot use, list or delete tenant A's secret", async () => {
    srv = await startTestServer(kind, settings);
    const a = as('tenant-a');
    const b = as('tenant-b');
    expect((await a('PUT', '/v1/connector-secrets/api_key', { value: SECRET_A })).status).toBe(200);
    expect((await b('GET', '/v1/connector-secrets')).body.secrets).toEqual([]);
    const borrowed = await b(
      'POST',
      '/v1/connectors',
      pullSpec('borrow', upstream, { headers: { Authorization: '{{secrets.api_key}}' } }),
    );
    expectError(borrowed, 400, 'BAD_REQUEST');
    expect(borrowed.body.error.details.problems[0]).toMatch(
      /secrets\.api_key.*no connector secret of this tenant/,
    );
    expectError(await b('DELETE', '/v1/connector-secrets/api_key'), 404, 'NOT_FOUND');

    // With a secret of the same name of its own, B's connector gets B's value, A's gets A's.
    expect((await b('PUT', '/v1/connector-secrets/api_key', { value: SECRET_B })).status).toBe(200);
    for (const [api, name] of [
      [a, 'from-a'],
      [b, 'from-b'],
    ] as const) {
      const res = await api(
        'POST',
        '/v1/connectors',
        pullSpec(name, upstream, { headers: { Authorization: '{{secrets.api_key}}' } }),
      );
      expect(res.status, res.text).toBe(201);
    }
    const seen = await waitFor(
      () => ['from-a', 'from-b'].map((n) => upstream.received.find((r) => r.url.startsWith(`/${n}/`))),
      (list) => list.every((r) => r !== undefined),
      'both pulls',
    );
    expect(seen.map((r) => r!.headers.authorization)).toEqual([SECRET_A, SECRET_B]);
  });

  it('without a secrets key, secrets are refused rather than stored in the clear', async () => {
    srv = await startTestServer(kind, { webhookAllowPrivate: ['127.0.0.1/32'] });
    const res = await as('acme')('PUT', '/v1/connector-secrets/api_key', { value: SECRET_A });
    expectError(res, 503, 'UNAVAILABLE');
    expect(res.body.error.message).toMatch(/SYNCBRIDGE_SECRETS_KEY/);
    expect((await storedSecrets(kind, srv.storage)).rows).toEqual([]);
    const user = await srv.token('acme', 'alice');
    const asUser = await rest(srv.url, 'GET', '/v1/connector-secrets', { token: user });
    expectError(asUser, 403, 'FORBIDDEN');
  });

  it('a config-file connector reads the environment variables connectors.env lists, and only those', async () => {
    srv = await startTestServer(kind, {
      ...settings,
      connectors: {
        env: ['SB_FEED_TOKEN'],
        instances: [
          {
            tenant: 'acme',
            ...pullSpec('listed', upstream, { headers: { Authorization: 'Bearer {{env.SB_FEED_TOKEN}}' } }),
          },
        ],
      },
      connectorEnv: { SB_FEED_TOKEN: 'operator-token' },
    });
    const request = await waitFor(
      () => upstream.received.find((r) => r.url.startsWith('/listed/')),
      (r) => r !== undefined,
      'the config-file pull',
    );
    expect(request!.headers.authorization).toBe('Bearer operator-token');
  });
});

describe('connectors.env in the config', () => {
  const instance = (headers: Record<string, string>) => ({
    name: 'bank',
    tenant: 'acme',
    kind: 'pull',
    connections: [{ id: 'c1' }],
    http: { baseUrl: 'https://bank.example', changesPath: 'changes', headers },
  });
  const load =
    (connectors: unknown, env: Record<string, string> = {}) =>
    () =>
      loadConfig({ env, overrides: { connectors: connectors as ServerConfig['connectors'] } });

  it('refuses a placeholder naming a variable it does not list, with its place', () => {
    expect(load({ instances: [instance({ Authorization: '{{env.SYNCBRIDGE_JWT_SECRET}}' })] })).toThrow(
      /connectors\.instances\[0\]\/http\/headers\/Authorization: \{\{env\.SYNCBRIDGE_JWT_SECRET\}\} names an environment variable not listed in connectors\.env/,
    );
  });

  it("refuses listing the server's own settings, and a listed variable that is not set", () => {
    expect(load({ env: ['SYNCBRIDGE_JWT_SECRET'] }, { SYNCBRIDGE_JWT_SECRET: 'x'.repeat(40) })).toThrow(
      /connectors\.env: SYNCBRIDGE_JWT_SECRET is one of the server's own settings/,
    );
    expect(load({ env: ['BANK_KEY'] })).toThrow(/connectors\.env: BANK_KEY is not set in the environment/);
    expect(load({ env: ['BANK_KEY'] })).toThrow(ConfigError);
  });

  it('reads the listed values from the environment, not from the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
    const file = join(dir, 'syncbridge.json');
    writeFileSync(
      file,
      JSON.stringify({
        connectors: { env: ['BANK_KEY'], instances: [instance({ A: '{{env.BANK_KEY}}' })] },
        connectorEnv: { BANK_KEY: 'from-the-file', OTHER: 'from-the-file' },
      }),
    );
    try {
      const config = loadConfig({ file, env: { BANK_KEY: 'k1', OTHER: 'o' } });
      expect(config.connectorEnv).toEqual({ BANK_KEY: 'k1' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
