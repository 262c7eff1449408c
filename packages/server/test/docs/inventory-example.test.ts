/**
 * The tenant-inventory example, run for real: as a function against a server with the example's plugins
 * (every step of the transcript checked), as the documented command against that server and with
 * `--embedded`, and the TypeScript of docs/conflicts.md checked to be the example's own (type-checked,
 * run) code.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runInventoryExample } from '../../../../examples/tenant-inventory/inventory.ts';
import {
  countsAsDeltas,
  type LowStockAlert,
  lowStockAlerts,
  noNegativeStock,
  stockByProduct,
} from '../../../../examples/tenant-inventory/plugins.ts';
import { loadConfig } from '../../src/config/config.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const EXAMPLE = 'examples/tenant-inventory';
const kinds = await storeKinds();

function runCommand(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${EXAMPLE}/index.ts`, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
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
  return new Promise((res) => child.once('exit', (code) => res({ code, out, err })));
}

/** The lines every complete run prints, whichever tenants it uses. */
const STEPS = [
  'carl joined records:stock_levels?locationId=wh-1: initial sync of 2 record(s): drill@wh-1 qty 20, saw@wh-1 qty 8',
  'dana joined records:stock_levels?locationId=wh-2: initial sync of 1 record(s): drill@wh-2 qty 5',
  'carl sold 3 drills: increment drill@wh-1 qty -3 -> applied v2 (qty 17)',
  'carl flushed his queue (1 change): conflict: record is at version 3, the change was based on 2',
  '  carl <- sync-conflict: base qty 17 (v2), server qty 15 (v3), his qty 16',
  "  maria <- sync-conflict (tenant admin): carl's change to drill@wh-1",
  'maria resolved with merge qty 14: HTTP 409 the record moved on to version 4 since this conflict; review it again',
  'maria resolved with merge qty 13: applied, drill@wh-1 now v5',
  '  carl <- inventory-updated drill@wh-1 v5 qty 13 by maria',
  'history drill@wh-1 v5 put by maria: qty 14 -> 13',
  'carl tried to take a drill from wh-2: increment drill@wh-2 qty -1 -> rejected FORBIDDEN: the access rules of stock_levels do not allow this create',
  'carl joined records:stock_levels?locationId=wh-2: initial sync of 0 record(s)',
  'gina (globex) received 0 event(s) from acme',
  'acme stock: drill@wh-1 13, drill@wh-2 15, saw@wh-1 2',
  'globex stock: drill@wh-1 99',
];

describe.each(kinds)('tenant-inventory example (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const alerts: LowStockAlert[] = [];
  beforeAll(async () => {
    srv = await startTestServer(kind, {}, undefined, {
      resolvers: { counts_as_deltas: countsAsDeltas },
      middleware: [noNegativeStock, lowStockAlerts(5, (a) => alerts.push(a))],
      projections: [stockByProduct],
    });
  });
  afterAll(async () => srv?.close());

  it('rooms, initial sync, increments, an offline conflict resolved by the manager, audit, isolation', async () => {
    const lines: string[] = [];
    const result = await runInventoryExample({
      url: srv.url,
      adminKey: srv.adminKey,
      tenants: { acme: 'acme', globex: 'globex' },
      log: (l) => lines.push(l),
    });
    expect(lines).toEqual(result.lines);
    for (const step of STEPS) expect(lines).toContain(step);

    // Initial sync per room, and live updates only for the room's location; nothing across tenants.
    expect(result.initialSync).toEqual({
      maria: ['drill@wh-1', 'drill@wh-2', 'saw@wh-1'],
      carl: ['drill@wh-1', 'saw@wh-1'],
      dana: ['drill@wh-2'],
      gina: ['drill@wh-1'],
    });
    expect(result.live.carl.every((l) => l.includes('@wh-1 '))).toBe(true);
    expect(result.live.dana).toEqual(['drill@wh-2 v2 qty 15 by dana']);
    expect(result.live.maria).toContain('drill@wh-2 v2 qty 15 by dana');
    expect(result.live.gina).toEqual([]);

    // The offline count became a stored conflict with its three sides; the stale resolve was refused.
    expect(result.flushed).toMatchObject({ status: 'conflict', version: 3, error: { code: 'CONFLICT' } });
    expect(result.conflict).toMatchObject({
      id: result.flushed.conflictId,
      actor: 'carl',
      recordId: 'drill@wh-1',
      baseVersion: 2,
      base: { qty: 17 },
      serverVersion: 3,
      server: { qty: 15 },
      client: { qty: 16 },
    });
    expect(result.staleResolve).toEqual({ status: 409, code: 'CONFLICT' });
    expect(result.resolution).toMatchObject({ status: 'applied', version: 5, record: { data: { qty: 13 } } });

    // The audit trail: who changed what, and who resolved the conflict how.
    expect(result.history).toEqual([
      { version: 1, op: 'put', actor: 'maria', qty: 20 },
      { version: 2, op: 'increment', actor: 'carl', qty: 17 },
      { version: 3, op: 'increment', actor: 'maria', qty: 15 },
      { version: 4, op: 'increment', actor: 'carl', qty: 14 },
      { version: 5, op: 'put', actor: 'maria', qty: 13 },
    ]);
    expect(result.resolvedEvent).toMatchObject({
      kind: 'event',
      type: 'syncbridge.conflict_resolved',
      actor: 'maria',
      payload: { conflictId: result.conflict.id, id: 'drill@wh-1', resolution: 'merge', version: 5 },
    });
    expect(result.stock).toEqual({
      acme: { 'drill@wh-1': 13, 'drill@wh-2': 15, 'saw@wh-1': 2 },
      globex: { 'drill@wh-1': 99 },
    });

    // The plugins: the projection folded from the log, the middleware's refusal, the afterCommit alert.
    expect(result.plugins?.stockByProduct).toEqual({ drill: { 'wh-1': 13, 'wh-2': 15 }, saw: { 'wh-1': 2 } });
    expect(result.plugins?.oversell).toMatchObject({
      status: 'rejected',
      error: { code: 'BAD_REQUEST', message: 'only 2 in stock' },
    });
    expect(lines).toContain('projection stock_by_product: drill 28 (wh-1 13, wh-2 15)');
    const deadline = Date.now() + 3000;
    while (!alerts.some((a) => a.tenant === 'acme') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(alerts.filter((a) => a.tenant === 'acme')).toEqual([
      { tenant: 'acme', id: 'saw@wh-1', qty: 2, seq: expect.any(Number) },
    ]);
  });

  it('runs as the documented command against the server and exits 0', async () => {
    const { code, out, err } = await runCommand([], {
      SYNCBRIDGE_URL: srv.url,
      SYNCBRIDGE_ADMIN_KEY: srv.adminKey,
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    for (const step of STEPS) expect(lines).toContain(step);
    expect(lines[lines.length - 1]).toBe('ok');
  });

  it('exits 1 with a clear message when the admin key is wrong', async () => {
    const { code, err } = await runCommand([], {
      SYNCBRIDGE_URL: srv.url,
      SYNCBRIDGE_ADMIN_KEY: 'not-the-key',
    });
    expect(code).toBe(1);
    expect(err).toMatch(/^inventory example failed: minting a token failed: HTTP 401/);
  });
});

describe('tenant-inventory example: embedded, and the docs quoting it', () => {
  it('--embedded starts its own server with the plugins, runs, cleans up and exits 0', async () => {
    const { code, out, err } = await runCommand(['--embedded'], {
      SYNCBRIDGE_URL: '',
      SYNCBRIDGE_ADMIN_KEY: '',
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^embedded server on http:\/\/127\.0\.0\.1:\d+ \(plugins: /);
    for (const step of STEPS) expect(lines).toContain(step);
    expect(lines).toContain(
      'carl tried to sell 10 saws: increment saw@wh-1 qty -10 -> rejected BAD_REQUEST: only 2 in stock',
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^low stock alert \(afterCommit\): saw@wh-1 at 2, seq \d+$/),
    );
    expect(lines[lines.length - 1]).toBe('ok');
  });

  it('the YAML of docs/conflicts.md is a valid config file', () => {
    const doc = readFileSync(resolve(ROOT, 'docs/conflicts.md'), 'utf8');
    const [yaml] = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    const dir = mkdtempSync(join(tmpdir(), 'syncbridge-conflicts-doc-'));
    try {
      const file = join(dir, 'syncbridge.yaml');
      writeFileSync(file, yaml!);
      const config = loadConfig({ env: {}, file });
      expect(config.collections.documents).toEqual({
        strategy: 'merge',
        mergeFallback: 'lww',
        textFields: ['body', 'summary.text'],
        retention: { maxVersions: 50 },
      });
      expect(config.collections.stock_levels).toEqual({ strategy: 'manual' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every TypeScript block of docs/conflicts.md is code of the example (so it compiles and runs)', () => {
    const doc = readFileSync(resolve(ROOT, 'docs/conflicts.md'), 'utf8');
    const code = ['plugins.ts', 'index.ts', 'inventory.ts']
      .map((f) => readFileSync(resolve(ROOT, EXAMPLE, f), 'utf8'))
      .join('\n');
    const source = new Set(code.split('\n').map((l) => l.trim()));
    const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    for (const block of blocks) {
      for (const line of block.split('\n').map((l) => l.trim())) {
        if (line === '' || line === '// …' || line === '…') continue;
        expect(source.has(line), `docs/conflicts.md line not in ${EXAMPLE}: ${line}`).toBe(true);
      }
    }
  });
});
