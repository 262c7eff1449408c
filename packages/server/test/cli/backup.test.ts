/**
 * `syncbridge backup` and `restore` against a running SQLite server under write load: the backup is
 * made while writes keep landing, restored into a new data dir, a server starts on it, every write
 * acknowledged before the backup began is there, and `replay --verify` finds no difference. On
 * PostgreSQL the commands point to pg_dump instead.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  startTestServer,
  storeKinds,
  TEST_ADMIN_KEY,
  type TestStorage,
} from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { cliEnv, runCli, STACK } from './support.ts';

const kinds = await storeKinds();

describe('syncbridge backup / restore (sqlite)', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'syncbridge-backup-'));
  const storages: TestStorage[] = [];
  afterAll(async () => {
    for (const s of storages) await s.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('backs up a running server under write load; the restored copy starts, holds every acknowledged write and replays clean', async () => {
    const live = createTestStorage('sqlite');
    storages.push(live);
    // The generated JWT secret goes into the backup: tokens stay valid on the restored copy.
    const srv = await startTestServer('sqlite', { jwtSecret: undefined }, live);
    const token = await srv.token('shop', 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    const acked = new Map<string, number>();
    let stop = false;
    let n = 0;
    const load = (async () => {
      while (!stop) {
        const batch = Array.from({ length: 20 }, () => {
          const i = n++;
          return { mid: `m${i}`, collection: 'stock', id: `p${i % 500}`, op: 'put', data: { i } };
        });
        const reply = await writer.request({ type: 'mutate', mutations: batch });
        for (const [k, r] of (reply.results as Array<{ status: string; version: number }>).entries()) {
          if (r.status === 'applied')
            acked.set(batch[k]!.id, Math.max(acked.get(batch[k]!.id) ?? 0, r.version));
        }
      }
    })();
    while (acked.size < 500) await new Promise((r) => setTimeout(r, 20));
    const before = new Map(acked);
    const writesBefore = n;

    const backupDir = join(scratch, 'backup');
    const backup = await runCli(['backup', backupDir], cliEnv(live, { SYNCBRIDGE_JWT_SECRET: '' }));
    const writesDuring = n - writesBefore;
    stop = true;
    await load;
    await writer.close();
    await srv.close({ keepData: true });
    expect(backup.status, backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(/backed up syncbridge\.db \(\d+ pages\)/);
    expect(backup.stdout).toMatch(/copied jwt-secret/);
    expect(backup.stdout).toMatch(/backup complete/);
    expect(writesDuring, 'writes kept landing while the backup ran').toBeGreaterThan(0);

    const restored = createTestStorage('sqlite');
    storages.push(restored);
    rmSync(restored.dataDir, { recursive: true, force: true });
    const env = cliEnv(restored, { SYNCBRIDGE_JWT_SECRET: '' });
    const restore = await runCli(['restore', backupDir], env);
    expect(restore.status, restore.stderr).toBe(0);
    expect(existsSync(join(restored.dataDir, 'syncbridge.db'))).toBe(true);
    // A second restore onto it is refused: restore never overwrites a database.
    const again = await runCli(['restore', backupDir], env);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/syncbridge\.db exists: restore into a new data dir/);
    expect(again.stderr).not.toMatch(STACK);

    const verify = await runCli(['replay', '--verify'], env);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/against \d+ records: no differences/);

    const back = await startTestServer('sqlite', { jwtSecret: undefined }, restored);
    try {
      // A token minted by the original server still works: the backup carried its secret.
      const res = await fetch(`${back.url}/v1/records/stock?limit=1000`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status).toBe(200);
      const records = new Map(
        ((await res.json()) as { records: Array<{ id: string; version: number }> }).records.map((r) => [
          r.id,
          r.version,
        ]),
      );
      const missing = [...before].filter(([id, version]) => (records.get(id) ?? 0) < version);
      expect(missing).toEqual([]);
      const admin = await fetch(`${back.url}/v1/events?limit=1`, {
        headers: { 'x-api-key': TEST_ADMIN_KEY, 'x-tenant': 'shop' },
      });
      expect(admin.status).toBe(200);
    } finally {
      await back.close({ keepData: true });
    }
  }, 180_000);
});

describe.skipIf(!kinds.includes('postgres'))('syncbridge backup on PostgreSQL', () => {
  const storage = createTestStorage('postgres');
  afterAll(() => storage.cleanup());

  it('points to pg_dump instead', async () => {
    const run = await runCli(['backup', join(storage.dataDir, 'b')], cliEnv(storage));
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/on PostgreSQL use pg_dump/);
    expect(run.stderr).not.toMatch(STACK);
  }, 60_000);
});
