/**
 * The bank-trading bridge example (scenario 1), run for real: the walkthrough against a server on every
 * store (every line of its transcript checked, BFC catching up in order after its outage), and the
 * documented command.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeConfig, runBankTradingBridge } from '../../../../examples/bank-trading-bridge/bridge.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const README = readFileSync(resolve(ROOT, 'examples/bank-trading-bridge/README.md'), 'utf8');
/** The transcript the README shows, without the final `ok` the command prints. */
const TRANSCRIPT = /```text\n([\s\S]*?)```/
  .exec(README)![1]!
  .trim()
  .split('\n')
  .filter((line) => line !== 'ok');
const kinds = await storeKinds();

describe.each(kinds)('examples/bank-trading-bridge (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const secret = randomBytes(16).toString('hex');
  beforeAll(async () => {
    srv = await startTestServer(kind, bridgeConfig('bank', secret));
  });
  afterAll(async () => srv?.close());

  it('exchanges events both ways, verifies every signature, and BFC catches up in order after its outage', async () => {
    const lines: string[] = [];
    const { token } = await srv.server.tokens.mint({ tenant: 'bank', user: 'vyomo-api', platform: 'vyomo' });
    const result = await runBankTradingBridge({
      url: srv.url,
      adminKey: srv.adminKey,
      tenant: 'bank',
      vyomoToken: token,
      bfcInboundSecret: secret,
      log: (line) => lines.push(line),
    });
    expect(lines).toEqual(TRANSCRIPT);
    expect(result.bfc.received.map((e) => e.seq)).toEqual([1, ...result.missed]);
    expect(result.bfc.received.every((e) => e.source === 'vyomo')).toBe(true);
    expect(result.vyomo.received.map((e) => [e.type, e.source])).toEqual([['balance_updated', 'bfc']]);
    expect(result.bfc.refused + result.vyomo.refused).toBe(0);
  });
});

describe('the bank-trading bridge command', () => {
  it('runs as documented and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/bank-trading-bridge/index.ts'], {
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
    const code = await new Promise<number | null>((res) => child.once('exit', res));
    expect(code, err).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^syncbridge on http:\/\/127\.0\.0\.1:\d+$/);
    expect(lines.slice(1)).toEqual([...TRANSCRIPT, 'ok']);
  });
});
