/**
 * Webhook signing secrets sealed at rest with SYNCBRIDGE_SECRETS_KEY, on every store: the stored row
 * never holds the secret, deliveries still verify, a server without the key refuses to start instead of
 * signing with garbage, keys rotate (new key seals, previous keys open), and endpoints stored before a
 * key was set stay usable.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../../src/config/config.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import {
  createTestStorage,
  POSTGRES_URL,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
  type TestStorage,
} from '../helpers/server.ts';
import { eventually, Receiver } from './receiver.ts';
import { adminClient, publish, register, verifySignatures } from './support.ts';

const kinds = await storeKinds();
const KEY_1 = randomBytes(32).toString('hex');
const KEY_2 = randomBytes(32).toString('base64');
const SECRET = 'ledger-signing-secret-0123456789';

const WEBHOOK_SETTINGS: Partial<ServerConfig> = {
  webhookAllowPrivate: ['127.0.0.1/32'],
  webhookRetrySchedule: '100ms,200ms',
  webhookPollMs: 100,
};

/** The `secrets` column of every stored endpoint, as the database holds it. */
async function storedSecrets(kind: StoreKind, storage: TestStorage): Promise<string[]> {
  if (kind === 'sqlite') {
    const db = new Database(join(storage.dataDir, 'syncbridge.db'), { readonly: true });
    try {
      return db
        .prepare<[], { secrets: string }>('SELECT secrets FROM webhooks')
        .all()
        .map((r) => r.secrets);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const schema = storage.config.databaseSchema!;
    const res = await client.query<{ secrets: string }>(
      `SELECT secrets::text AS secrets FROM ${schema}.webhooks`,
    );
    return res.rows.map((r) => r.secrets);
  } finally {
    await client.end();
  }
}

describe.each(kinds)('webhook secrets at rest (%s)', (kind: StoreKind) => {
  const storage = createTestStorage(kind);
  let receiver: Receiver;
  let srv: TestServer | null = null;
  afterAll(async () => {
    await srv?.close({ keepData: true });
    await receiver?.close();
    await storage.cleanup();
  });

  const start = (overrides: Partial<ServerConfig>) =>
    startTestServer(kind, { ...WEBHOOK_SETTINGS, ...overrides }, storage);

  async function deliversSigned(server: TestServer, secret: string): Promise<void> {
    const api = adminClient(server, 'bank');
    const before = receiver.requests.length;
    const { eventId } = await publish(api, 'trade_opened', { tradeId: `t-${before}` });
    const req = await eventually(
      () => receiver.requests.slice(before).find((r) => r.headers['webhook-id'] === eventId),
      10_000,
      `delivery of ${eventId}`,
    );
    verifySignatures(req, secret);
  }

  it('stores the secret sealed and still signs deliveries with it', async () => {
    receiver = await Receiver.start();
    srv = await start({ secretsKey: KEY_1 });
    await register(adminClient(srv, 'bank'), { url: receiver.url, secretKey: SECRET });
    const stored = await storedSecrets(kind, storage);
    expect(stored).toHaveLength(1);
    expect(stored[0]).not.toContain(SECRET);
    expect(stored[0]).toContain('sbx1.');
    await deliversSigned(srv, SECRET);
  });

  it('refuses to start without the key, or with a key that did not seal the secrets', async () => {
    await srv!.close({ keepData: true });
    srv = null;
    await expect(start({})).rejects.toThrow(/SYNCBRIDGE_SECRETS_KEY/);
    await expect(start({ secretsKey: KEY_2 })).rejects.toThrow(/not configured/);
  });

  it('rotates: a new key with the previous one listed opens old values and seals new ones', async () => {
    srv = await start({ secretsKey: KEY_2, secretsKeysPrevious: [KEY_1] });
    await deliversSigned(srv, SECRET);
    const api = adminClient(srv, 'bank');
    const [hook] = (await api.get('/v1/webhooks')).body.webhooks;
    const rotated = await api.post(`/v1/webhooks/${hook.id}/rotate-secret`, {
      json: { secret: 'rotated-signing-secret-0123456789', overlapSeconds: 0 },
    });
    expect(rotated.status, rotated.text).toBe(200);
    await srv.close({ keepData: true });
    srv = await start({ secretsKey: KEY_2 });
    await deliversSigned(srv, 'rotated-signing-secret-0123456789');
    const stored = await storedSecrets(kind, storage);
    expect(stored[0]).not.toContain('rotated-signing-secret');
  });
});

describe.each(kinds)('webhook secrets stored before a key was set (%s)', (kind: StoreKind) => {
  it('stay usable once a key is configured, and are sealed when next written', async () => {
    const storage = createTestStorage(kind);
    const receiver = await Receiver.start();
    let srv = await startTestServer(kind, WEBHOOK_SETTINGS, storage);
    try {
      const hook = await register(adminClient(srv, 'bank'), { url: receiver.url, secretKey: SECRET });
      expect((await storedSecrets(kind, storage))[0]).toContain(SECRET);
      await srv.close({ keepData: true });
      srv = await startTestServer(kind, { ...WEBHOOK_SETTINGS, secretsKey: KEY_1 }, storage);
      const api = adminClient(srv, 'bank');
      const { eventId } = await publish(api, 'trade_opened', { tradeId: 't-1' });
      verifySignatures(
        await eventually(() => receiver.requests.find((r) => r.headers['webhook-id'] === eventId)),
        SECRET,
      );
      const patched = await api.patch(`/v1/webhooks/${hook.id}`, { json: { description: 'sealed now' } });
      expect(patched.status, patched.text).toBe(200);
      const stored = (await storedSecrets(kind, storage))[0]!;
      expect(stored).not.toContain(SECRET);
      expect(stored).toContain('sbx1.');
    } finally {
      await srv.close({ keepData: true });
      await receiver.close();
      await storage.cleanup();
    }
  });
});

describe('secrets key settings', () => {
  it('rejects a malformed key without echoing it', () => {
    const attempt = () =>
      loadConfig({ env: { SYNCBRIDGE_SECRETS_KEY: 'not-a-32-byte-key-but-a-secret-anyway' }, overrides: {} });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (err) {
      expect((err as ConfigError).problems.join('\n')).toMatch(/SYNCBRIDGE_SECRETS_KEY/);
      expect((err as Error).message).not.toContain('not-a-32-byte-key');
    }
  });
});
