/**
 * Access rules as settings: set in the config file or with `PUT /v1/collections/{c}` (admins), compiled
 * when set (a rule that does not compile is refused with its position and changes nothing), kept across a
 * restart; and the claims rules read, minted by `POST /v1/auth/token` and `syncbridge token`, or passed
 * through from an outside issuer's token at the configured path.
 */
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/auth/tokens.ts';
import { ConfigError } from '../../src/config/config.ts';
import { cliEnv, runCli } from '../cli/support.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  TEST_JWT_SECRET,
  type TestServer,
} from '../helpers/server.ts';
import { expectError, restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const RULES = {
  read: "auth.roles.exists(r, r == 'manager') || record.locationId in auth.claims.locations",
  write: 'record.locationId in auth.claims.locations',
  hide: { costPrice: "!auth.roles.exists(r, r == 'manager')" },
};

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

describe.each(kinds)('access rules as collection settings (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let admin: ReturnType<typeof restClient>;
  let clerk: ReturnType<typeof restClient>;

  beforeAll(async () => {
    srv = await startTestServer(kind, {
      collections: { documents: { rules: { read: 'record.ownerId == auth.user' } } },
    });
    admin = restClient(srv.url, { token: await srv.token('shop', 'boss', { roles: ['admin'] }) });
    clerk = restClient(srv.url, { token: await srv.token('shop', 'clerk') });
  });
  afterAll(async () => srv?.close());

  it('stores rules set by an admin and shows them with the settings', async () => {
    const res = await admin.put('/v1/collections/stock_levels', { json: { rules: RULES } });
    expect(res.status, res.text).toBe(200);
    expect(res.body.settings).toEqual({ strategy: 'lww', rules: RULES });
    expect((await clerk.get('/v1/collections/stock_levels')).body.settings.rules).toEqual(RULES);
    expect((await clerk.get('/v1/collections/documents')).body.settings.rules).toEqual({
      read: 'record.ownerId == auth.user',
    });
  });

  it('refuses a rule that does not compile with its position, and keeps the rules it had', async () => {
    const res = await admin.put('/v1/collections/stock_levels', {
      json: { rules: { ...RULES, write: 'record.locationId in' } },
    });
    expectError(res, 400, 'BAD_REQUEST');
    expect(res.body.error.details).toMatchObject({ rule: 'write', position: { line: 1, column: 21 } });
    expect(res.body.error.message).toContain('rules.write does not compile at line 1, column 21');
    const hidden = await admin.put('/v1/collections/stock_levels', {
      json: { rules: { hide: { costPrice: 'auth.nope(' } } },
    });
    expectError(hidden, 400, 'BAD_REQUEST');
    expect(hidden.body.error.details).toMatchObject({ rule: 'hide.costPrice' });
    // Unknown keys are a schema refusal, before any compiling.
    expectError(
      await admin.put('/v1/collections/stock_levels', { json: { rules: { raed: 'true' } } }),
      400,
      'BAD_REQUEST',
    );
    expect((await admin.get('/v1/collections/stock_levels')).body.settings.rules).toEqual(RULES);
  });

  it('lets only tenant admins change rules', async () => {
    const res = await clerk.put('/v1/collections/stock_levels', { json: { rules: { read: 'true' } } });
    expectError(res, 403, 'FORBIDDEN');
    expect((await admin.get('/v1/collections/stock_levels')).body.settings.rules).toEqual(RULES);
  });

  it('keeps rules across a restart', async () => {
    await srv.close({ keepData: true });
    srv = await startTestServer(kind, { collections: {} }, srv.storage);
    admin = restClient(srv.url, { token: await srv.token('shop', 'boss', { roles: ['admin'] }) });
    clerk = restClient(srv.url, { token: await srv.token('shop', 'clerk') });
    expect((await admin.get('/v1/collections/stock_levels')).body.settings.rules).toEqual(RULES);
  });
});

describe('access rules in the config file', () => {
  it('refuses to start with a rule that does not compile, naming the collection and the position', async () => {
    const storage = createTestStorage('sqlite');
    try {
      const err = await startTestServer(
        'sqlite',
        { collections: { docs: { rules: { read: 'record.a ==' } } } },
        storage,
      ).then(
        async (srv) => {
          await srv.close();
          return null;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain(
        'collections.docs: rules.read does not compile at line 1',
      );
    } finally {
      await storage.cleanup();
    }
  });
});

describe('claims for access rules in tokens', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite');
  });
  afterAll(async () => srv?.close());

  it('mints claims with POST /v1/auth/token and reads them back from the token', async () => {
    const key = restClient(srv.url, { apiKey: srv.adminKey });
    const res = await key.post('/v1/auth/token', {
      json: { tenant: 'shop', user: 'clerk', claims: { locations: ['wh-1'] } },
    });
    expect(res.status, res.text).toBe(200);
    expect(payloadOf(res.body.token).claims).toEqual({ locations: ['wh-1'] });
    const verified = await srv.server.tokens.verify(res.body.token);
    expect(verified.principal.claims).toEqual({ locations: ['wh-1'] });
    expectError(
      await key.post('/v1/auth/token', { json: { tenant: 'shop', user: 'clerk', claims: ['wh-1'] } }),
      400,
      'BAD_REQUEST',
    );
    const big = await key.post('/v1/auth/token', {
      json: { tenant: 'shop', user: 'clerk', claims: { blob: 'x'.repeat(9000) } },
    });
    expectError(big, 400, 'BAD_REQUEST');
  });

  it('mints claims with syncbridge token --claims', async () => {
    const storage = createTestStorage('sqlite');
    try {
      const env = cliEnv(storage);
      const run = await runCli(
        ['token', '--tenant', 'shop', '--user', 'clerk', '--claims', '{"locations":["wh-2"]}'],
        env,
      );
      expect(run.status, run.stderr).toBe(0);
      expect(payloadOf(run.stdout.trim()).claims).toEqual({ locations: ['wh-2'] });
      const bad = await runCli(['token', '--tenant', 'shop', '--user', 'clerk', '--claims', '["wh-2"]'], env);
      expect(bad.status).toBe(1);
      expect(bad.stderr).toContain('--claims must be a JSON object');
    } finally {
      await storage.cleanup();
    }
  });

  it("passes an outside issuer's claims through from the configured path", async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const pem = await exportSPKI(publicKey);
    const outside = (payload: Record<string, unknown>) =>
      new SignJWT({ tenant: 'shop', ...payload })
        .setProtectedHeader({ alg: 'RS256' })
        .setSubject('clerk')
        .setIssuer('https://id.example')
        .setExpirationTime('1h')
        .sign(privateKey);
    const named = new TokenService({
      jwtSecret: TEST_JWT_SECRET,
      jwtPublicKey: pem,
      issuer: 'https://id.example',
      claimsPath: 'https://syncbridge.example/claims',
    });
    const token = await outside({
      'https://syncbridge.example/claims': { locations: ['wh-1'] },
      claims: { x: 1 },
    });
    expect((await named.verify(token)).principal.claims).toEqual({ locations: ['wh-1'] });
    const nested = new TokenService({
      jwtSecret: TEST_JWT_SECRET,
      jwtPublicKey: pem,
      issuer: 'https://id.example',
      claimsPath: 'app_metadata.syncbridge',
    });
    const deep = await outside({ app_metadata: { syncbridge: { locations: ['wh-3'] } } });
    expect((await nested.verify(deep)).principal.claims).toEqual({ locations: ['wh-3'] });
    expect((await nested.verify(await outside({}))).principal.claims).toBeUndefined();
    await expect(
      nested.verify(await outside({ app_metadata: { syncbridge: 'wh-3' } })),
    ).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
  });
});
