/**
 * `syncbridge backup <dir>` and `syncbridge restore <dir>` for the SQLite store. A backup is a new
 * directory laid out like a data dir: `syncbridge.db`, `connectors.db` (when the data dir has one) and the
 * generated `jwt-secret` (when the data dir holds it), so a server can start on it or on a restored copy.
 * Backup works while the server runs (online backup API). Restore copies a backup into a data dir that
 * has no database yet; it never overwrites one. On PostgreSQL both point to pg_dump (docs/deploy.md).
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ServerConfig } from '../config/config.ts';
import { backupDatabase, checkDatabase } from '../store/sqlite/backup.ts';
import { CommandError } from './errors.ts';

const MAIN = 'syncbridge.db';
const CONNECTORS = 'connectors.db';
const JWT_SECRET = 'jwt-secret';

function refuseOnPostgres(config: ServerConfig, what: string): void {
  if (config.databaseUrl) {
    throw new CommandError(
      `${what} is for the SQLite store; on PostgreSQL use pg_dump / pg_restore or point-in-time recovery (docs/deploy.md#backups)`,
    );
  }
}

function targetDir(path: string | undefined, what: string): string {
  if (!path) throw new CommandError(`${what} needs a directory: syncbridge ${what} <dir>`);
  return resolve(path);
}

export async function backupCommand(config: ServerConfig, path: string | undefined): Promise<void> {
  refuseOnPostgres(config, 'backup');
  const target = targetDir(path, 'backup');
  const dataDir = resolve(config.dataDir);
  if (!existsSync(join(dataDir, MAIN))) {
    throw new CommandError(`no database to back up: ${join(dataDir, MAIN)} does not exist`);
  }
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new CommandError(`${target} is not empty: a backup goes into a new or empty directory`);
  }
  mkdirSync(target, { recursive: true, mode: 0o700 });
  const out = (line: string) => process.stdout.write(`${line}\n`);
  // Connector state first: restored with a log from a moment later, a pull repeats a page (idempotent)
  // rather than skipping one.
  if (existsSync(join(dataDir, CONNECTORS))) {
    const pages = await backupDatabase(join(dataDir, CONNECTORS), join(target, CONNECTORS));
    out(`backed up ${CONNECTORS} (${pages} pages)`);
  }
  const pages = await backupDatabase(join(dataDir, MAIN), join(target, MAIN));
  out(`backed up ${MAIN} (${pages} pages)`);
  if (!config.jwtSecret && existsSync(join(dataDir, JWT_SECRET))) {
    copyFileSync(join(dataDir, JWT_SECRET), join(target, JWT_SECRET));
    out(`copied ${JWT_SECRET} (it signs every token: keep this backup as safe as the server)`);
  }
  out(`backup complete: ${target}`);
}

export async function restoreCommand(config: ServerConfig, path: string | undefined): Promise<void> {
  refuseOnPostgres(config, 'restore');
  const source = targetDir(path, 'restore');
  const dataDir = resolve(config.dataDir);
  if (!existsSync(join(source, MAIN))) {
    throw new CommandError(`${source} is not a syncbridge backup: it has no ${MAIN}`);
  }
  for (const name of [MAIN, CONNECTORS]) {
    if (existsSync(join(dataDir, name))) {
      throw new CommandError(
        `${join(dataDir, name)} exists: restore into a new data dir (--data-dir), or move the old one away first`,
      );
    }
  }
  const files = [MAIN, CONNECTORS, JWT_SECRET].filter((name) => existsSync(join(source, name)));
  for (const name of files) {
    if (name !== JWT_SECRET) {
      try {
        checkDatabase(join(source, name));
      } catch (err) {
        throw new CommandError(`cannot restore: ${(err as Error).message}`);
      }
    }
  }
  mkdirSync(dataDir, { recursive: true });
  for (const name of files) copyFileSync(join(source, name), join(dataDir, name));
  process.stdout.write(`restored ${files.join(', ')} into ${dataDir}: start the server on it\n`);
}
