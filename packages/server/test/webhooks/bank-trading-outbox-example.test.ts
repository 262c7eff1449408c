/**
 * The bank-trading bridge's outbox variant, run as documented: Vyomo publishes by inserting rows into
 * its own database's outbox table and BFC receives exactly the committed trades' events (the README's
 * transcript, line for line). Needs the local PostgreSQL with wal_level = logical.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../helpers/server.ts';
import { postgresAvailable, requireService } from '../helpers/services.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const README = readFileSync(resolve(ROOT, 'examples/bank-trading-bridge/README.md'), 'utf8');
const variant = README.slice(README.indexOf('## Variant: Vyomo publishes from its own database'));
const TRANSCRIPT = /```text\n([\s\S]*?)```/.exec(variant)![1]!.trim().split('\n');
const available = requireService(`PostgreSQL at ${POSTGRES_URL}`, await postgresAvailable(POSTGRES_URL));

describe.skipIf(!available)('the bank-trading bridge outbox command', () => {
  it('runs as documented and exits 0', async () => {
    const admin = new URL(POSTGRES_URL);
    admin.pathname = '/postgres';
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/bank-trading-bridge/outbox.ts'], {
      cwd: ROOT,
      env: { ...process.env, SOURCE_ADMIN_URL: admin.toString() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code, err).toBe(0);
    const lines = out
      .trim()
      .split('\n')
      .map((l) => l.replace(/vyomo_[0-9a-f]{8}/, 'vyomo_<random>'));
    expect(lines).toEqual(TRANSCRIPT);
  }, 60_000);
});
