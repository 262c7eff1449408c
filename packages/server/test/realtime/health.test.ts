import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

describe('health messages to operators', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', { webhookAllowPrivate: ['127.0.0.1/32'] });
  });
  afterAll(async () => srv?.close());

  it('sends per-platform health to tenant admins on connect and when it changes, not to plain users', async () => {
    const adminToken = await srv.token('ops', 'boss', { roles: ['admin'] });
    const admin = await TestWsClient.connect(srv.wsUrl, adminToken);
    const user = await TestWsClient.connect(srv.wsUrl, await srv.token('ops', 'clerk'));
    const first = await admin.waitFor((m) => m.type === 'health', 6000);
    expect(first.platforms).toEqual([]);
    // Registering an endpoint for platform "bank" (a receiver that does not exist) changes the health.
    const res = await fetch(`${srv.url}/v1/webhooks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'bank',
        platform: 'bank',
        url: 'http://127.0.0.1:9/hook',
        eventTypes: ['*'],
      }),
    });
    expect(res.status).toBe(201);
    const changed = await admin.waitFor(
      (m) =>
        m.type === 'health' &&
        (m.platforms as Array<{ platform: string }>).some((p) => p.platform === 'bank'),
      6000,
    );
    expect(changed.platforms).toEqual([expect.objectContaining({ platform: 'bank', webhooks: 1 })]);
    expect(user.messages.some((m) => m.type === 'health')).toBe(false);
    await admin.close();
    await user.close();
  });
});
