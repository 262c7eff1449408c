import { CLOSE_CODES } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

describe('WebSocket rate limits and connection caps', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', {
      rateLimits: {
        user: { ratePerSec: 20, burst: 40 },
        tenant: { ratePerSec: 10_000, burst: 10_000 },
        maxConnectionsPerUser: 3,
        tenants: {},
      },
    });
  });
  afterAll(async () => srv?.close());

  it('throttles a flooding client with RATE_LIMITED while another user of the tenant is served', async () => {
    const flooder = await TestWsClient.connect(srv.wsUrl, await srv.token('shop', 'flooder'));
    const calm = await TestWsClient.connect(srv.wsUrl, await srv.token('shop', 'calm'));
    for (let i = 0; i < 300; i++) flooder.send({ type: 'ping', rid: `f${i}` });
    const replies: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 20; i++) {
      replies.push(
        await calm.request({
          type: 'mutate',
          mutations: [{ mid: `c${i}`, collection: 'orders', id: `o${i}`, op: 'put', data: { i } }],
        }),
      );
    }
    expect(replies.every((r) => r.type === 'results')).toBe(true);
    // The first 100 refusals of a window are answered with the frame's rid; later ones are dropped
    // unread, so a flood costs the server little (flood.test.ts closes a longer one).
    await flooder.waitFor((m) => m.type === 'error' && m.code === 'RATE_LIMITED');
    await new Promise((r) => setTimeout(r, 200));
    const limited = flooder.messages.filter((m) => m.type === 'error' && m.code === 'RATE_LIMITED');
    const pongs = flooder.messages.filter((m) => m.type === 'pong');
    expect(pongs.length).toBeGreaterThanOrEqual(40);
    expect(limited.length).toBe(100);
    expect(limited[0]).toMatchObject({
      rid: expect.stringMatching(/^f\d+$/),
      details: { retryAfterMs: expect.any(Number) },
    });
    // The flooder's connection stays open (300 refusals are below floodCloseAfter) and works again
    // once its bucket refills.
    await new Promise((r) => setTimeout(r, 200));
    expect((await flooder.request({ type: 'ping' })).type).toBe('pong');
    await flooder.close();
    await calm.close();
  });

  it('caps connections per user and frees a slot when one closes', async () => {
    const token = await srv.token('shop', 'many');
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await TestWsClient.connect(srv.wsUrl, token));
    const extra = await TestWsClient.connect(srv.wsUrl);
    extra.send({ type: 'hello', rid: 'h', token });
    const refused = await extra.waitFor((m) => m.rid === 'h');
    expect(refused).toMatchObject({ type: 'error', code: 'RATE_LIMITED' });
    expect(await extra.closed).toBe(CLOSE_CODES.TRY_AGAIN_LATER);
    await open[0]!.close();
    await new Promise((r) => setTimeout(r, 50));
    const again = await TestWsClient.connect(srv.wsUrl, token);
    expect(again.messages[0]).toMatchObject({ type: 'welcome' });
    for (const c of [...open.slice(1), again]) await c.close();
  });
});
