/**
 * `syncbridge replay --verify --tenant T` on both stores: a tenant that has no log is reported as not
 * existing (exit 1, one line), never as a clean replay of nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestStorage, startTestServer, storeKinds, type TestStorage } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { cliEnv, runCli, STACK } from './support.ts';

const kinds = await storeKinds();

describe.each(kinds)('syncbridge replay --verify --tenant (%s)', (kind) => {
  let storage: TestStorage;
  beforeAll(async () => {
    storage = createTestStorage(kind);
    const srv = await startTestServer(kind, {}, storage);
    const client = await TestWsClient.connect(srv.wsUrl, await srv.token('shop', 'alice'));
    await client.request({
      type: 'mutate',
      mutations: [{ mid: 'm1', collection: 'stock', id: 'p1', op: 'put', data: { qty: 1 } }],
    });
    await client.close();
    await srv.close({ keepData: true });
  });
  afterAll(async () => storage?.cleanup());

  it('names a tenant that does not exist and exits 1; an existing one replays clean', async () => {
    const env = cliEnv(storage);
    const [missing, present] = await Promise.all([
      runCli(['replay', '--verify', '--tenant', 'nosuch'], env),
      runCli(['replay', '--verify', '--tenant', 'shop'], env),
    ]);
    expect(missing.status).toBe(1);
    // (Log lines may come with it, e.g. the warning about unsealed webhook secrets on PostgreSQL.)
    expect(missing.stderr.split('\n')).toContain(
      `syncbridge: tenant nosuch does not exist in this ${kind} store (it has no log)`,
    );
    expect(missing.stdout).not.toMatch(/no differences/);
    expect(missing.stderr).not.toMatch(STACK);
    expect(present.status, present.stderr).toBe(0);
    expect(present.stdout).toMatch(
      /replayed 1 log entries of 1 tenant\(s\) against 1 records: no differences/,
    );
  }, 120_000); // spawns server processes: slow when the machine is loaded
});
