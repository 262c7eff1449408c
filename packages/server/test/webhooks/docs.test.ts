/**
 * docs/webhooks.md against the server: the receiver code on the page runs as written and verifies real
 * deliveries (also during a secret rotation) and refuses a forged one; the page's inbound config loads.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import type { TestServer } from '../helpers/server.ts';
import { eventually } from './receiver.ts';
import { adminClient, publish, register, startWebhookServer } from './support.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const page = readFileSync(join(ROOT, 'docs/webhooks.md'), 'utf8');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('docs/webhooks.md', () => {
  let child: ChildProcess | null = null;
  let srv: TestServer | null = null;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await srv?.close();
  });

  it('the receiver code verifies deliveries, through a secret rotation, and refuses a forged request', async () => {
    const code = /```js\n(\/\/ receiver\.mjs[\s\S]*?)```/.exec(page)?.[1];
    expect(code, 'the receiver code block').toBeTruthy();
    const port = await freePort();
    const secret = 'docs-receiver-secret-1';
    // Run from the server package, so `standardwebhooks` resolves as it would in a receiver's project.
    child = spawn(process.execPath, ['--input-type=module', '--eval', code!], {
      cwd: resolve(ROOT, 'packages/server'),
      env: { ...process.env, PORT: String(port), WEBHOOK_SECRET: secret },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const url = `http://127.0.0.1:${port}/`;
    await eventually(
      async () => (await fetch(url, { method: 'POST', body: '{}' }).then((r) => r.status)) === 401,
      10_000,
      `the receiver to listen (${err})`,
    );

    srv = await startWebhookServer('sqlite');
    const api = adminClient(srv, 'docs');
    const hook = await register(api, { url, eventTypes: ['trade_*'], secret });
    const first = await publish(api, 'trade_opened', { symbol: 'NIFTY' });
    const rotated = await api.post(`/v1/webhooks/${hook.id}/rotate-secret`, {
      json: { overlapSeconds: 3600 },
    });
    expect(rotated.status).toBe(200);
    // The receiver still has the old secret: during the overlap it keeps accepting.
    const second = await publish(api, 'trade_closed', { symbol: 'NIFTY', pnl: 5000 });
    await eventually(() => out.includes(second.eventId), 10_000, `the receiver's output (${out}${err})`);
    expect(out).toContain(`verified ${first.eventId} trade_opened seq=${first.seq}`);
    expect(out).toContain(`verified ${second.eventId} trade_closed seq=${second.seq}`);

    const body = JSON.stringify({ type: 'trade_closed', data: {} });
    const forged = await fetch(url, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/json',
        'webhook-id': 'msg_forged',
        'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        'webhook-signature': 'v1,bm90IGEgc2lnbmF0dXJl',
        'x-webhook-signature': '00'.repeat(32),
      },
    });
    expect(forged.status).toBe(401);
    expect(out).not.toContain('msg_forged');
  });

  it('the inbound config example loads', () => {
    const yaml = /```yaml\n(inbound:[\s\S]*?)```/.exec(page)?.[1];
    expect(yaml).toBeTruthy();
    const file = join(tmpdir(), `webhooks-docs-${process.pid}.yaml`);
    writeFileSync(file, yaml!);
    try {
      const config = loadConfig({ env: {}, file });
      expect(Object.keys(config.inbound)).toEqual(['powens', 'bfc']);
      expect(config.inbound.powens).toMatchObject({
        scheme: 'standard',
        tenant: 'bank',
        payloadField: 'data',
      });
      expect(config.inbound.bfc).toMatchObject({
        scheme: 'hmac',
        idField: 'eventId',
        typeField: 'eventType',
      });
    } finally {
      rmSync(file, { force: true });
    }
  });
});
