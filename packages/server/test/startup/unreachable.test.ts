/**
 * A start against a database or bus that is not there: `syncbridge serve` retries for
 * `SYNCBRIDGE_CONNECT_RETRY_MS`, then exits 1 with one line naming the service, its address and the
 * cause, never a stack trace and never hanging. PostgreSQL, Redis, NATS and a PostgreSQL bus, each on a port where nothing
 * listens; a database that refuses the login fails at once, without retrying; and a data dir that
 * cannot be made stops `serve` and `token` with one line too.
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli, STACK } from '../cli/support.ts';
import { createTestStorage, POSTGRES_URL } from '../helpers/server.ts';

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('unreachable database or bus at start', () => {
  const storage = createTestStorage('sqlite');
  afterAll(() => storage.cleanup());

  it('retries for the configured time, then exits 1 with one line naming where and why', async () => {
    const [pgPort, redisPort, natsPort, pgBusPort] = [
      await deadPort(),
      await deadPort(),
      await deadPort(),
      await deadPort(),
    ];
    const base = { SYNCBRIDGE_CONNECT_RETRY_MS: '1500', SYNCBRIDGE_PORT: '0' };
    const cases: Array<{ env: Record<string, string>; line: RegExp }> = [
      {
        env: { SYNCBRIDGE_DATABASE_URL: `postgres://u:secret-pw@127.0.0.1:${pgPort}/app` },
        line: new RegExp(
          `^syncbridge: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${pgPort}/app: connect ECONNREFUSED 127\\.0\\.0\\.1:${pgPort} \\(tried \\d+ times in [\\d.]+ s\\); SYNCBRIDGE_CONNECT_RETRY_MS`,
        ),
      },
      {
        env: { SYNCBRIDGE_BUS_URL: `redis://127.0.0.1:${redisPort}` },
        line: new RegExp(
          `^syncbridge: cannot reach Redis at 127\\.0\\.0\\.1:${redisPort}: connect ECONNREFUSED 127\\.0\\.0\\.1:${redisPort} \\(for 1\\.5 s\\)`,
        ),
      },
      {
        env: { SYNCBRIDGE_BUS_URL: `nats://127.0.0.1:${natsPort}` },
        line: new RegExp(
          `^syncbridge: cannot reach NATS at 127\\.0\\.0\\.1:${natsPort}: CONNECTION_REFUSED \\(tried \\d+ times`,
        ),
      },
      {
        env: { SYNCBRIDGE_BUS_URL: `postgres://u:secret-pw@127.0.0.1:${pgBusPort}/app` },
        line: new RegExp(
          `^syncbridge: cannot reach PostgreSQL bus at 127\\.0\\.0\\.1:${pgBusPort}/app: connect ECONNREFUSED 127\\.0\\.0\\.1:${pgBusPort} \\(tried \\d+ times`,
        ),
      },
    ];
    const runs = await Promise.all(
      cases.map((c) => runCli(['serve'], cliEnv(storage, { ...base, ...c.env }), 60_000)),
    );
    runs.forEach((run, i) => {
      const { line } = cases[i]!;
      expect(run.status, run.stderr).toBe(1);
      expect(run.stdout).not.toMatch(/listening/);
      expect(run.stderr).not.toMatch(STACK);
      expect(run.stderr).not.toContain('secret-pw');
      const ours = run.stderr.split('\n').filter((l) => l.startsWith('syncbridge:'));
      expect(ours, run.stderr).toHaveLength(1);
      expect(ours[0]).toMatch(line);
      // The retries are logged, a few lines, not one per reconnect attempt of the driver.
      expect(run.stderr.split('\n').filter((l) => /unreachable|retrying/.test(l)).length).toBeLessThanOrEqual(
        6,
      );
    });
  }, 90_000);

  it('a database that refuses the login fails at once, with its reason', async () => {
    const url = new URL(POSTGRES_URL);
    url.username = 'no_such_role_sb';
    const run = await runCli(
      ['migrate'],
      cliEnv(storage, { SYNCBRIDGE_DATABASE_URL: url.toString(), SYNCBRIDGE_CONNECT_RETRY_MS: '30000' }),
      60_000,
    );
    expect(run.status, run.stderr).toBe(1);
    expect(run.stderr).not.toMatch(STACK);
    expect(run.stderr).toMatch(
      new RegExp(
        `syncbridge: cannot use PostgreSQL at ${url.hostname}:${url.port || 5432}${url.pathname}: role "no_such_role_sb" does not exist`,
      ),
    );
    expect(run.stderr).not.toMatch(/retrying/);
  }, 60_000);

  it('a data dir that cannot be made stops serve and token with one line', async () => {
    // Below a regular file: mkdir fails with ENOTDIR, even for root.
    const env = cliEnv(storage, {
      SYNCBRIDGE_DATA_DIR: join(storage.dataDir, 'file', 'data'),
      SYNCBRIDGE_JWT_SECRET: '',
    });
    writeFileSync(join(storage.dataDir, 'file'), 'not a directory');
    const [serve, token] = await Promise.all([
      runCli(['serve'], { ...env, SYNCBRIDGE_PORT: '0' }),
      runCli(['token', '--tenant', 't', '--user', 'u'], env),
    ]);
    for (const run of [serve, token]) {
      expect(run.status, run.stderr).toBe(1);
      expect(run.stderr).not.toMatch(STACK);
      expect(run.stderr.split('\n').filter((l) => l.startsWith('syncbridge:'))).toHaveLength(1);
      expect(run.stderr).toMatch(/ENOTDIR: not a directory/);
    }
  }, 60_000);
});
