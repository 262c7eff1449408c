/**
 * The generated admin key, on both stores: it is made and shown by the first start that gets as far as
 * listening, so a start that failed before (the port in use) does not use up the one chance to see it;
 * `syncbridge admin-key rotate` prints a new key and the old one is refused at once by a running server;
 * `syncbridge admin-key revoke` refuses it without making another, and no start makes one again.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, STACK } from '../cli/support.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestStorage,
} from '../helpers/server.ts';

const kinds = await storeKinds();

async function adminCall(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/v1/records/todos`, { headers: { 'x-api-key': key, 'x-tenant': 'demo' } });
  return res.status;
}

describe.each(kinds)('generated admin key (%s)', (kind: StoreKind) => {
  let storage: TestStorage;
  beforeAll(() => {
    storage = createTestStorage(kind);
  });
  afterAll(async () => storage?.cleanup());

  it('is shown by the first start that listens, not used up by one that failed; rotate and revoke take effect at once', async () => {
    // Something else holds the port: the first start fails after the data dir and store were set up.
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as { port: number }).port;
    await expect(startTestServer(kind, { adminKey: undefined, port }, storage)).rejects.toThrow(
      `cannot listen on 127.0.0.1:${port}: the address is in use`,
    );
    await new Promise((resolve) => squatter.close(resolve));

    const srv = await startTestServer(kind, { adminKey: undefined }, storage);
    try {
      const first = srv.server.generatedAdminKey;
      expect(first).toMatch(/^sb_admin_/);
      expect(await adminCall(srv.url, first!)).toBe(200);

      // Rotation from the command line while the server runs: a new key, the old one refused at once.
      const env = cliEnv(storage, { SYNCBRIDGE_ADMIN_KEY: '' });
      const rotated = await runCli(['admin-key', 'rotate'], env);
      expect(rotated.status, rotated.stderr).toBe(0);
      const second = /admin key \(shown once, keep it safe\): (sb_admin_\S+)/.exec(rotated.stdout)?.[1];
      expect(second, rotated.stdout).toBeDefined();
      expect(second).not.toBe(first);
      expect(await adminCall(srv.url, first!)).toBe(401);
      expect(await adminCall(srv.url, second!)).toBe(200);

      const revoked = await runCli(['admin-key', 'revoke'], env);
      expect(revoked.status, revoked.stderr).toBe(0);
      expect(revoked.stdout).toMatch(/admin key revoked/);
      expect(await adminCall(srv.url, second!)).toBe(401);

      // With SYNCBRIDGE_ADMIN_KEY set, the key is the variable's: the command says so.
      const fromEnv = await runCli(['admin-key', 'rotate'], cliEnv(storage));
      expect(fromEnv.status).toBe(1);
      expect(fromEnv.stderr).toMatch(/SYNCBRIDGE_ADMIN_KEY/);
      expect(fromEnv.stderr).not.toMatch(STACK);
    } finally {
      await srv.close({ keepData: true });
    }
    // A later start does not generate a key again after a revocation.
    const again = await startTestServer(kind, { adminKey: undefined }, storage);
    expect(again.server.generatedAdminKey).toBeNull();
    await again.close({ keepData: true });
  }, 120_000);
});
