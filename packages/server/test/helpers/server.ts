/**
 * Test harness: real syncbridge servers on ephemeral ports (in this process, or as a child process
 * that a test may kill -9), on a fresh SQLite file or a fresh PostgreSQL schema, plus helpers to mint
 * tokens. Every server a test starts is closed and its data removed by `close()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig, type ServerConfig } from '../../src/config/config.ts';
import { type StartOptions, type SyncbridgeServer, startServer } from '../../src/server.ts';
import { postgresAvailable, requireService } from './services.ts';

export type StoreKind = 'sqlite' | 'postgres';

export const POSTGRES_URL =
  process.env.SYNCBRIDGE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_ADMIN_KEY = 'test-admin-key-0123456789abcdef';
export const TEST_JWT_SECRET = 'test-jwt-secret-0123456789abcdef0123456789abcdef';

let postgresChecked: Promise<boolean> | null = null;

/** The stores to run a suite on: SQLite always, PostgreSQL when reachable (required under CI=true). */
export async function storeKinds(): Promise<StoreKind[]> {
  postgresChecked ??= postgresAvailable(POSTGRES_URL);
  const ok = requireService(`PostgreSQL at ${POSTGRES_URL}`, await postgresChecked);
  return ok ? ['sqlite', 'postgres'] : ['sqlite'];
}

/** Data location for one test server: a temp dir, and for PostgreSQL a fresh schema. */
export interface TestStorage {
  dataDir: string;
  config: Partial<ServerConfig>;
  cleanup(): Promise<void>;
}

export function createTestStorage(kind: StoreKind): TestStorage {
  const dataDir = mkdtempSync(join(tmpdir(), 'syncbridge-test-'));
  if (kind === 'sqlite') {
    return {
      dataDir,
      config: { dataDir },
      cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
    };
  }
  const schema = `sb_t_${randomBytes(6).toString('hex')}`;
  return {
    dataDir,
    config: { dataDir, databaseUrl: POSTGRES_URL, databaseSchema: schema },
    cleanup: async () => {
      rmSync(dataDir, { recursive: true, force: true });
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface TestServer {
  server: SyncbridgeServer;
  url: string;
  wsUrl: string;
  adminKey: string;
  /** Mints a user token for tenant/user through the server's own token service. */
  token(
    tenant: string,
    user: string,
    options?: { roles?: string[]; ttlSeconds?: number; claims?: Record<string, unknown> },
  ): Promise<string>;
  /** Closes the server; keeps the data unless `keepData` (then call `storage.cleanup()` yourself). */
  close(options?: { keepData?: boolean }): Promise<void>;
  storage: TestStorage;
}

export async function startTestServer(
  kind: StoreKind = 'sqlite',
  overrides: Partial<ServerConfig> = {},
  storage: TestStorage = createTestStorage(kind),
  options: Omit<StartOptions, 'logger'> = {},
): Promise<TestServer> {
  const config = loadConfig({
    env: {},
    overrides: {
      port: 0,
      adminKey: TEST_ADMIN_KEY,
      jwtSecret: TEST_JWT_SECRET,
      logLevel: 'silent',
      ...storage.config,
      ...overrides,
    },
  });
  const server = await startServer(config, {
    ...options,
    logger: pino({ level: process.env.SYNCBRIDGE_TEST_LOG ?? 'silent' }),
  });
  return {
    server,
    url: server.url,
    wsUrl: `${server.url.replace(/^http/, 'ws')}/v1/realtime`,
    adminKey: TEST_ADMIN_KEY,
    storage,
    token: async (tenant, user, options = {}) =>
      (
        await server.tokens.mint({
          tenant,
          user,
          roles: options.roles,
          ttlSeconds: options.ttlSeconds,
          claims: options.claims,
        })
      ).token,
    close: async (options = {}) => {
      await server.close();
      if (!options.keepData) await storage.cleanup();
    },
  };
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

const CLI = resolve(import.meta.dirname, '../../src/cli/main.ts');

/**
 * Starts `syncbridge serve` as a child process on the given storage, and resolves once it prints its
 * listening line. Use it where a test must kill the server without a clean shutdown.
 */
export async function spawnServerProcess(
  storage: TestStorage,
  env: Record<string, string> = {},
): Promise<ServerProcess> {
  const cfg = storage.config;
  const childEnv: Record<string, string> = {
    ...(process.env as Record<string, string>),
    SYNCBRIDGE_PORT: '0',
    SYNCBRIDGE_DATA_DIR: storage.dataDir,
    SYNCBRIDGE_ADMIN_KEY: TEST_ADMIN_KEY,
    SYNCBRIDGE_JWT_SECRET: TEST_JWT_SECRET,
    SYNCBRIDGE_LOG_LEVEL: 'warn',
    ...(cfg.databaseUrl ? { SYNCBRIDGE_DATABASE_URL: cfg.databaseUrl } : {}),
    ...(cfg.databaseSchema ? { SYNCBRIDGE_DATABASE_SCHEMA: cfg.databaseSchema } : {}),
    ...env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve'], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const url = await new Promise<string>((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`server did not start in 60 s:\n${stderr}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /syncbridge listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m[1]!);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code} before listening:\n${stderr}`));
    });
  });
  return { child, url, wsUrl: `${url.replace(/^http/, 'ws')}/v1/realtime`, exited };
}
