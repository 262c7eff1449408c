/**
 * examples/open-banking-pull, run for real: the walkthrough against a test server (both stores) with the
 * simulated provider started here and the provider's inbound webhook source configured, and the
 * example's one command as a child process.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type SimulatedProvider,
  startSimulatedProvider,
} from '../../../../examples/open-banking-pull/provider.ts';
import { runOpenBankingExample } from '../../../../examples/open-banking-pull/sync.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const kinds = await storeKinds();

const TRANSCRIPT = [
  'defined connector powens (pull, schedule */15 * * * *)',
  'pulled alice-bnp: 3 record(s), then bob-sg: 2 record(s)',
  "alice's app: 2 transactions (Groceries, Salary)",
  "provider webhook (HTTP 200) -> pulled at once -> alice's app <- Pharmacy -18.9",
  'provider re-sent alice-bnp: 0 applied, 4 duplicate(s)',
  'provider down: circuit_open after 3 failures',
  'provider back: a half-open probe closed the circuit (running)',
  'reconciliation: 1 changed (transactions/alice-bnp:tx-1), repaired; amount back to -42.5',
  '  bob-sg (normal): fresh, limit 4 h',
  '  alice-bnp (critical): fresh, limit 4 h',
  'removed connector powens',
];

describe.each(kinds)('examples/open-banking-pull (%s)', (kind: StoreKind) => {
  let provider: SimulatedProvider;
  let srv: TestServer;
  beforeAll(async () => {
    provider = await startSimulatedProvider({ apiKey: 'provider-key' });
    srv = await startTestServer(kind, {
      webhookAllowPrivate: ['127.0.0.1/32'],
      inbound: {
        powens: {
          tenant: 'demo',
          platform: 'powens',
          scheme: 'hmac',
          secret: 'webhook-secret',
          types: { 'connection.synced': 'powens.synced' },
        },
      },
    });
  });
  afterAll(async () => {
    await srv?.close();
    await provider?.close();
  });

  it('runs the walkthrough: pull by priority, webhook pull, re-pull, outage and circuit, reconciliation', async () => {
    const lines: string[] = [];
    await runOpenBankingExample({
      url: srv.url,
      adminKey: srv.adminKey,
      tenant: 'demo',
      provider,
      providerApiKey: 'provider-key',
      webhookSecret: 'webhook-secret',
      log: (line) => lines.push(line),
    });
    expect(lines).toEqual(TRANSCRIPT);
    expect(provider.requests.slice(0, 2).map((r) => r.connection)).toEqual(['alice-bnp', 'bob-sg']);
  });
});

describe('examples/open-banking-pull command', () => {
  it('runs with one command and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/open-banking-pull/index.ts'], {
      cwd: ROOT,
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
    const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
    expect(code, err).toBe(0);
    expect(out.trim().split('\n').slice(2)).toEqual([...TRANSCRIPT, 'ok']);
  });
});
