/**
 * Secrets key rotation on every store: data sealed under key A (a connector secret, a webhook signing
 * secret, a delivery body, a sealed record field) is re-sealed under key B by a server started with B and
 * A as the previous key, so that a server with only B still runs the connector with its secret, signs
 * webhooks that verify and reads the sealed field; the status shows nothing left; a server started with a
 * key missing that the data needs refuses with a ConfigError naming what needs it; and a re-seal never
 * overwrites a value written concurrently.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type ServerConfig } from '../../src/config/config.ts';
import { openSealedRows, rotationStatus, sealedCollectionsOf } from '../../src/startup/key-rotation.ts';
import { keyStatus, resealText } from '../../src/store/key-rotation.ts';
import { parseSecretsKey, SecretBox } from '../../src/store/secret-box.ts';
import { cliEnv, runCli } from '../cli/support.ts';
import { waitFor } from '../connectors/support.ts';
import { RecordingUpstream } from '../connectors/upstream.ts';
import { rawRows } from '../helpers/raw-database.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../helpers/server.ts';
import { eventually, Receiver } from '../webhooks/receiver.ts';
import { adminClient, register, verifySignatures } from '../webhooks/support.ts';

const kinds = await storeKinds();
const KEY_A = randomBytes(32).toString('hex');
const KEY_B = randomBytes(32).toString('hex');
const boxOf = (...keys: string[]) => new SecretBox(keys.map((k) => parseSecretsKey(k)!));
const ID_A = boxOf(KEY_A).sealingKeyId;
const ID_B = boxOf(KEY_B).sealingKeyId;
const API_KEY = `upstream-key-${randomBytes(8).toString('hex')}`;
const HOOK_SECRET = `hook-secret-${randomBytes(12).toString('hex')}`;
const SSN = `ssn-${randomBytes(6).toString('hex')}`;

describe.each(kinds)('secrets key rotation (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let upstream: RecordingUpstream;
  let receiver: Receiver;
  let srv: TestServer | null = null;
  const settings = { webhookAllowPrivate: ['127.0.0.1/32'], webhookPollMs: 100 };
  const start = (keys: Partial<ServerConfig>) => startTestServer(kind, { ...settings, ...keys }, storage);
  const config = () => loadConfig({ env: {}, overrides: { ...storage.config } });
  const statusUnder = async (...keys: string[]) => {
    const rows = await openSealedRows(config());
    try {
      return await keyStatus(rows, boxOf(...keys));
    } finally {
      await rows.close();
    }
  };
  const pulled = (since: number) =>
    waitFor(
      () => upstream.received.slice(since).find((r) => r.kind === 'http' && r.url.startsWith('/bank/')),
      (r) => r !== undefined,
      'a pull with the secret',
    );
  async function deliversSigned(server: TestServer, id: string): Promise<void> {
    const api = adminClient(server, 'acme');
    expect((await api.put(`/v1/records/patients/${id}`, { json: { ssn: SSN } })).status).toBe(201);
    const req = await eventually(
      () => receiver.requests.find((r) => r.body.includes(`"${id}"`)),
      10_000,
      `delivery of ${id}`,
    );
    verifySignatures(req, HOOK_SECRET);
  }

  beforeAll(async () => {
    upstream = await RecordingUpstream.start();
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await srv?.close({ keepData: true });
    await upstream.close();
    await receiver.close();
    await storage.cleanup();
  });

  it('seals under key A', async () => {
    srv = await start({ secretsKey: KEY_A });
    const api = adminClient(srv, 'acme');
    expect((await api.put('/v1/connector-secrets/api_key', { json: { value: API_KEY } })).status).toBe(200);
    const created = await api.post('/v1/connectors', {
      json: {
        name: 'bank',
        kind: 'pull',
        connections: [{ id: 'c1' }],
        http: {
          baseUrl: upstream.httpUrl,
          changesPath: 'bank/changes?cursor={{cursor}}',
          headers: { Authorization: 'Bearer {{secrets.api_key}}' },
        },
      },
    });
    expect(created.status, created.text).toBe(201);
    expect((await pulled(0))!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    const put = await api.put('/v1/collections/patients', {
      json: { strategy: 'lww', sealedFields: ['ssn'] },
    });
    expect(put.status, put.text).toBe(200);
    await register(api, { url: receiver.url, eventTypes: ['record.patients.*'], secretKey: HOOK_SECRET });
    await deliversSigned(srv, 'p1');
    const status = await statusUnder(KEY_B, KEY_A);
    for (const k of ['connectorSecrets', 'webhookSecrets', 'webhookDeliveries', 'records', 'events'])
      expect(status.kinds.find((s) => s.kind === k)!.byKey[ID_A], k).toBeGreaterThan(0);
    await srv.close({ keepData: true });
    srv = null;
  });

  it('refuses to start with a new key alone, naming what still needs the old one', async () => {
    const err = await start({ secretsKey: KEY_B }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).problems.join('\n');
    expect(text).toContain(ID_A);
    expect(text).toMatch(/connector secrets \(1\)/);
    expect(text).toMatch(/webhook signing secrets \(1\)/);
    // A start reads only the settings-sized kinds; the status an operator asks for reads the data too.
    expect(text).not.toMatch(/sealed fields in records/);
    const cli = await runCli(['secrets', 'status'], cliEnv(storage, { SYNCBRIDGE_SECRETS_KEY: KEY_B }));
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`MISSING key id ${ID_A}: needed by connector secrets`);
    expect(cli.stdout).toMatch(/sealed fields in records/);
    expect(cli.stdout).toContain('connector secrets: 1 under an older key');
  });

  it('re-seals everything under key B when started with B and A as the previous key', async () => {
    srv = await start({ secretsKey: KEY_B, secretsKeysPrevious: [KEY_A] });
    const server = srv.server;
    await waitFor(
      async () => {
        const rows = await openSealedRows(config());
        try {
          const s = await rotationStatus(
            rows,
            boxOf(KEY_B, KEY_A),
            server.store.sealedBackfill,
            sealedCollectionsOf(server.store, config()),
          );
          return s.left + s.pendingPasses.length;
        } finally {
          await rows.close();
        }
      },
      (left) => left === 0,
      'everything re-sealed under key B',
      30_000,
    );
    const raw = await rawRows(kind, storage);
    expect(raw).not.toContain(`sbx1.${ID_A}.`);
    expect(raw).toContain(`sbx1.${ID_B}.`);
    await srv.close({ keepData: true });
    srv = null;
    const cli = await runCli(['secrets', 'status'], cliEnv(storage, { SYNCBRIDGE_SECRETS_KEY: KEY_B }));
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`current key id: ${ID_B}`);
    expect(cli.stdout).toContain('connector secrets: 0 under an older key');
    expect(cli.stdout).toContain('previous keys may be dropped');
  });

  it('with only key B: the connector pulls with its secret, webhooks verify, sealed fields read', async () => {
    const since = upstream.received.length;
    srv = await start({ secretsKey: KEY_B });
    const api = adminClient(srv, 'acme');
    expect((await pulled(since))!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect((await api.get('/v1/records/patients/p1')).body.data.ssn).toBe(SSN);
    await deliversSigned(srv, 'p2');
    expect((await statusUnder(KEY_B)).left).toBe(0);
    const status = await api.get('/v1/secrets-key/status');
    expect(status.status, status.text).toBe(200);
    expect(status.body).toMatchObject({ currentKeyId: ID_B, configuredKeyIds: [ID_B], left: 0, missing: [] });
    expect(status.body.kinds.find((k: { kind: string }) => k.kind === 'connectorSecrets').left).toBe(0);
  });

  it('never overwrites a value written while a re-seal was under way', async () => {
    const rows = await openSealedRows(config());
    try {
      const [before] = await rows.page('connectorSecrets', null, 10);
      expect(before).toBeDefined();
      // Another writer replaces the secret after the rotation read it.
      const api = adminClient(srv!, 'acme');
      expect(
        (await api.put('/v1/connector-secrets/api_key', { json: { value: `${API_KEY}-new` } })).status,
      ).toBe(200);
      const stale = { ...before!, text: before!.text };
      const resealed = resealText(stale.text, boxOf(KEY_A, KEY_B));
      expect(resealed).not.toBeNull();
      expect(await rows.rewrite('connectorSecrets', stale, resealed!)).toBe(false);
      const [after] = await rows.page('connectorSecrets', null, 10);
      expect(boxOf(KEY_B).open(after!.text)).toBe(`${API_KEY}-new`);
    } finally {
      await rows.close();
    }
  });
});

describe.each(kinds.filter((k) => k === 'postgres'))('secrets key rotation leader (%s)', (kind) => {
  it('one node at a time leads the rotation; another takes over when it goes', async () => {
    const storage = createTestStorage(kind);
    const srv = await startTestServer(kind, {}, storage);
    await srv.close({ keepData: true });
    const config = loadConfig({ env: {}, overrides: { ...storage.config } });
    const a = await openSealedRows(config);
    const b = await openSealedRows(config);
    try {
      expect(await a.tryLead()).toBe(true);
      expect(await a.tryLead()).toBe(true);
      expect(await b.tryLead()).toBe(false);
      await a.close();
      expect(await b.tryLead()).toBe(true);
    } finally {
      await a.close();
      await b.close();
      await storage.cleanup();
    }
  });
});
