/**
 * The servers under test, each in its own child process: syncbridge (`syncbridge serve` on a fresh
 * SQLite file or a fresh PostgreSQL schema) and the plain `ws` broadcast reference. The load generator
 * measures them from outside, through /proc.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { TokenService } from '../../packages/server/src/auth/tokens.ts';
import { onCleanup } from './lifecycle.ts';
import { cpuMicros, rssBytes } from './proc.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const POSTGRES_URL =
  process.env.SYNCBRIDGE_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/**
 * The server entry point. SYNCBRIDGE_BENCH_CLI points at another checkout's
 * packages/server/src/cli/main.ts, to measure a change against the current tree in the same way.
 */
const SERVER_CLI = resolve(process.env.SYNCBRIDGE_BENCH_CLI ?? join(ROOT, 'packages/server/src/cli/main.ts'));
const JWT_SECRET = 'bench-jwt-secret-0123456789abcdef0123456789abcdef';
/** The admin key (`x-api-key`) every syncbridge under test accepts. */
export const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';

export type StoreKind = 'sqlite' | 'postgres';
export type Synchronous = 'FULL' | 'NORMAL';

export interface ServerUnderTest {
  label: string;
  pid: number;
  wsUrl: string;
  /** CPU time the server process has used so far, in µs. */
  cpuMicros(): number;
  rssBytes(): number;
  /** Stops the process (SIGTERM, then SIGKILL after a grace period) and removes its data. */
  stop(): Promise<void>;
}

export interface SyncbridgeUnderTest extends ServerUnderTest {
  store: StoreKind;
  /** The fsync setting in force, as the figures should state it. */
  durability: string;
  /** A user token; `extra` adds roles and the claims access rules read (bench/rules.ts). */
  token(
    user: string,
    tenant?: string,
    extra?: { roles?: string[]; claims?: Record<string, unknown> },
  ): Promise<string>;
  /**
   * Stops the process (SIGTERM, as an operator would) and starts it again on the same port and the
   * same data (SQLite file or PostgreSQL schema). `pid` then names the new process.
   */
  restart(): Promise<void>;
}

export interface SpawnOptions {
  /** Extra flags for node, e.g. --cpu-prof. */
  nodeFlags?: string[];
  /** Raise the child's open-file limit (ulimit -n) to this before it starts. */
  fileLimit?: number;
}

interface Spawned {
  child: ChildProcess;
  ready: RegExpExecArray;
  /** Stops the process (SIGTERM, then SIGKILL after a grace period) once; later calls wait for it. */
  stop: () => Promise<void>;
}

/**
 * Spawns a server and waits for its ready line. The child is registered for cleanup the moment it
 * exists, so an abort during start-up cannot orphan it.
 */
async function spawnServer(
  script: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  dir: string,
  options: SpawnOptions,
): Promise<Spawned> {
  const logFile = join(dir, 'server.log');
  const log = openSync(logFile, 'a');
  // The workspace's sources (the @syncbridge/source condition), never a possibly stale build.
  const nodeArgs = [
    ...(options.nodeFlags ?? []),
    '--conditions=@syncbridge/source',
    '--import',
    'tsx',
    script,
    ...args,
  ];
  // `exec` keeps the pid, so /proc/<pid> is the node process itself.
  const [command, commandArgs] = options.fileLimit
    ? ['/bin/sh', ['-c', `ulimit -n ${options.fileLimit} && exec "$0" "$@"`, process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(command, commandArgs as string[], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', log],
  });
  closeSync(log);
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      unregister();
    })();
    return stopping;
  };
  const unregister = onCleanup({ run: stop, runSync: () => child.kill('SIGKILL') });
  const match = await new Promise<RegExpExecArray>((res, rej) => {
    let out = '';
    const fail = (why: string) => {
      let tail = '';
      try {
        tail = readFileSync(logFile, 'utf8').slice(-2000);
      } catch {}
      child.kill('SIGKILL');
      rej(new Error(`${script} ${why}\n${out}${tail}`));
    };
    const timer = setTimeout(() => fail('did not start within 30 s'), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        clearTimeout(timer);
        res(m);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      fail(`exited with ${child.exitCode ?? child.signalCode} before it was ready`);
    });
  });
  return { child, ready: match, stop };
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** The fsync setting PostgreSQL applies to commits, e.g. "synchronous_commit=on, fsync=on". */
export async function postgresDurability(): Promise<string> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const sc = await client.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
    const fs = await client.query<{ fsync: string }>('SHOW fsync');
    return `synchronous_commit=${sc.rows[0]!.synchronous_commit}, fsync=${fs.rows[0]!.fsync}`;
  } finally {
    await client.end();
  }
}

/** The checkout a CLI path belongs to, by the folder that holds its packages/ (for labels). */
function checkoutName(cli: string): string {
  const parts = resolve(cli).split('/');
  const i = parts.lastIndexOf('packages');
  return i > 0 ? parts[i - 1]! : cli;
}

export interface SyncbridgeOptions extends SpawnOptions {
  store: StoreKind;
  /** SQLite only; default FULL (the product's default). */
  synchronous?: Synchronous;
  env?: Record<string, string>;
  /** Another checkout's packages/server/src/cli/main.ts, to measure a candidate change side by side. */
  cli?: string;
}

/** Starts `syncbridge serve` on port 0 with its own temp data dir (and fresh schema for PostgreSQL). */
export async function startSyncbridge(options: SyncbridgeOptions): Promise<SyncbridgeUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-bench-'));
  const schema = options.store === 'postgres' ? `sb_bench_${randomBytes(6).toString('hex')}` : null;
  const synchronous = options.synchronous ?? 'FULL';
  const env: Record<string, string> = {
    SYNCBRIDGE_PORT: '0',
    SYNCBRIDGE_HOST: '127.0.0.1',
    SYNCBRIDGE_DATA_DIR: dir,
    SYNCBRIDGE_ADMIN_KEY: ADMIN_KEY,
    SYNCBRIDGE_JWT_SECRET: JWT_SECRET,
    SYNCBRIDGE_SQLITE_SYNCHRONOUS: synchronous,
    ...(schema ? { SYNCBRIDGE_DATABASE_URL: POSTGRES_URL, SYNCBRIDGE_DATABASE_SCHEMA: schema } : {}),
    ...options.env,
  };
  const removeData = async () => {
    rmSync(dir, { recursive: true, force: true });
    if (schema) await dropSchema(schema);
  };
  // Registered before the child's own cleanup, so it runs after the child has stopped.
  const unregister = onCleanup({
    run: removeData,
    runSync: () => {
      rmSync(dir, { recursive: true, force: true });
      if (schema) spawnSync('psql', [POSTGRES_URL, '-qc', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`]);
    },
  });
  const script = options.cli ? resolve(options.cli) : SERVER_CLI;
  const ready = /syncbridge listening on http:\/\/(\S+)/;
  let s = await spawnServer(script, ['serve'], env, ready, dir, options);
  const address = s.ready[1]!;
  const tokens = new TokenService({ jwtSecret: JWT_SECRET });
  const durability = schema ? await postgresDurability() : `SQLite synchronous=${synchronous} (WAL)`;
  return {
    label: `syncbridge/${options.store}${options.cli ? ` (${checkoutName(options.cli)})` : ''}`,
    store: options.store,
    durability,
    get pid() {
      return s.child.pid!;
    },
    wsUrl: `ws://${address}/v1/realtime`,
    cpuMicros: () => cpuMicros(s.child.pid!),
    rssBytes: () => rssBytes(s.child.pid!),
    token: async (user, tenant = 'bench', extra = {}) =>
      (await tokens.mint({ tenant, user, ttlSeconds: 3600, ...extra })).token,
    restart: async () => {
      await s.stop();
      const port = address.slice(address.lastIndexOf(':') + 1);
      s = await spawnServer(script, ['serve'], { ...env, SYNCBRIDGE_PORT: port }, ready, dir, options);
    },
    stop: async () => {
      await s.stop();
      await removeData();
      unregister();
    },
  };
}

/** Starts the reference: a minimal `ws` server that broadcasts each message it receives to all others. */
export function startReference(options: SpawnOptions = {}): Promise<ServerUnderTest> {
  return startWsServer('ws reference', join(ROOT, 'bench/reference/ws-broadcast-server.ts'), {}, options);
}

/**
 * Starts another server under test (a peer such as Socket.IO or ShareDB) from its script, which listens
 * on PORT (0: any) and prints `listening on ws://host:port` once it accepts connections.
 */
export async function startWsServer(
  label: string,
  script: string,
  env: Record<string, string>,
  options: SpawnOptions = {},
): Promise<ServerUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'peer-bench-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  const unregister = onCleanup({ run: async () => removeDir(), runSync: removeDir });
  const s = await spawnServer(script, [], { PORT: '0', ...env }, /listening on (ws:\/\/\S+)/, dir, options);
  const pid = s.child.pid!;
  return {
    label,
    pid,
    wsUrl: s.ready[1]!,
    cpuMicros: () => cpuMicros(pid),
    rssBytes: () => rssBytes(pid),
    stop: async () => {
      await s.stop();
      removeDir();
      unregister();
    },
  };
}
