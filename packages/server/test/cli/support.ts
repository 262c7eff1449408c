/** Runs the real `syncbridge` command on a test storage (a SQLite data dir or a PostgreSQL schema). */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { TEST_ADMIN_KEY, TEST_JWT_SECRET, type TestStorage } from '../helpers/server.ts';

const CLI = resolve(import.meta.dirname, '../../src/cli/main.ts');

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a command sees for this storage, plus `env`. */
export function cliEnv(storage: TestStorage, env: Record<string, string> = {}): Record<string, string> {
  const cfg = storage.config;
  return {
    ...(process.env as Record<string, string>),
    SYNCBRIDGE_DATA_DIR: storage.dataDir,
    SYNCBRIDGE_JWT_SECRET: TEST_JWT_SECRET,
    SYNCBRIDGE_ADMIN_KEY: TEST_ADMIN_KEY,
    SYNCBRIDGE_LOG_LEVEL: 'warn',
    SYNCBRIDGE_CONFIG: '',
    ...(cfg.databaseUrl ? { SYNCBRIDGE_DATABASE_URL: cfg.databaseUrl } : {}),
    ...(cfg.databaseSchema ? { SYNCBRIDGE_DATABASE_SCHEMA: cfg.databaseSchema } : {}),
    ...env,
  };
}

/** Runs `syncbridge <args>` to its end (asynchronously, so servers in this process keep running). */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`syncbridge ${args.join(' ')} did not end in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

/** A stack trace line, which an expected failure must never print. */
export const STACK = /\n\s+at .+\(.+:\d+:\d+\)/;
