/**
 * Floods: a client sending far past its rate limit gets a few RATE_LIMITED answers, then silence, then
 * close 4008, while a bystander's pings keep their answers; request heads sent a byte at a time are cut
 * off by the header timeout; upgrades past maxConnections are answered 503. None of this touches the
 * store, so it runs on SQLite only.
 */
import { connect } from 'node:net';
import { CLOSE_CODES } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestWsClient, upgradeRefusal } from '../helpers/ws-client.ts';

describe('floods', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', {
      rateLimits: {
        user: { ratePerSec: 100, burst: 100 },
        tenant: { ratePerSec: 100_000, burst: 100_000 },
        maxConnectionsPerUser: 100,
        tenants: {},
      },
      floodCloseAfter: 500,
      headersTimeoutMs: 500,
      maxConnections: 4,
    });
  });
  afterAll(async () => srv?.close());

  it('closes a ping flood with 4008 after a few answers, and a bystander keeps getting pongs', async () => {
    const flooder = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'mallory'));
    const bystander = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'alice'));
    const frame = JSON.stringify({ type: 'ping' });
    for (let i = 0; i < 20_000 && flooder.ws.readyState === 1; i++) {
      flooder.ws.send(frame);
      if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(await flooder.waitForClose(5000)).toBe(CLOSE_CODES.RATE_LIMITED);
    const refusals = flooder.messages.filter((m) => m.type === 'error');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.length).toBeLessThanOrEqual(100);
    for (const r of refusals) expect(r.code).toBe('RATE_LIMITED');
    // The burst (100 pongs) and 100 refusals were answered; the rest was dropped unread.
    expect(flooder.messages.filter((m) => m.type === 'pong').length).toBeLessThanOrEqual(200);
    expect(flooder.messages.length).toBeLessThan(400);
    expect((await bystander.request({ type: 'ping' }, 2000)).type).toBe('pong');
    const metrics = await (
      await fetch(`${srv.url}/metrics`, { headers: { 'x-api-key': srv.adminKey } })
    ).text();
    expect(metrics).toMatch(/^syncbridge_flood_disconnects_total 1$/m);
    await bystander.close();
  });

  it('cuts off a request head that never ends within the header timeout', async () => {
    const started = Date.now();
    const socket = connect(Number(new URL(srv.url).port), '127.0.0.1');
    socket.on('error', () => undefined);
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write('GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n');
    const closed = await new Promise<number>((resolve) => {
      const timer = setTimeout(() => resolve(-1), 5000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
    });
    socket.destroy();
    expect(closed).toBeGreaterThan(0);
    expect(closed).toBeLessThan(3000);
    expect(answer).toMatch(/^HTTP\/1.1 408/);
  });

  it('answers 503 to upgrades past maxConnections, and takes them again once one closes', async () => {
    const token = await srv.token('acme', 'bob');
    const open = await Promise.all(Array.from({ length: 4 }, () => TestWsClient.connect(srv.wsUrl, token)));
    const refused = await upgradeRefusal(`${srv.wsUrl}?token=${token}`);
    expect(refused?.status).toBe(503);
    expect(JSON.parse(refused!.body).error.code).toBe('UNAVAILABLE');
    await open[0]!.close();
    await new Promise((r) => setTimeout(r, 50));
    const again = await TestWsClient.connect(srv.wsUrl, token);
    for (const c of [...open.slice(1), again]) await c.close();
  });
});
