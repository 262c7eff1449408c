/**
 * The `Authorization` scheme is case-insensitive (RFC 7235 section 2.1): `bearer`, `Bearer` and
 * `BEARER` tokens are accepted by REST and at the WebSocket upgrade; other schemes are still refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestWsClient, upgradeRefusal } from '../helpers/ws-client.ts';

describe('Authorization scheme', () => {
  let srv: TestServer;
  let token: string;
  beforeAll(async () => {
    srv = await startTestServer('sqlite');
    token = await srv.token('scheme', 'alice');
  });
  afterAll(async () => srv?.close());

  it('accepts bearer in any case over REST, and refuses other schemes', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await fetch(`${srv.url}/v1/records/todos`, {
        headers: { authorization: `${scheme} ${token}` },
      });
      expect(res.status, scheme).toBe(200);
    }
    for (const authorization of [`Basic ${token}`, `bearer${token}`, token]) {
      const res = await fetch(`${srv.url}/v1/records/todos`, { headers: { authorization } });
      expect(res.status, authorization.slice(0, 8)).toBe(401);
    }
  });

  it('accepts a lowercase bearer at the WebSocket upgrade (welcome at once)', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, undefined, { Authorization: `bearer ${token}` });
    const welcome = await client.waitFor((m) => m.type === 'welcome');
    expect(welcome).toMatchObject({ tenant: 'scheme', user: 'alice' });
    await client.close();
    expect((await upgradeRefusal(srv.wsUrl, { Authorization: 'bearer not-a-token' }))?.status).toBe(401);
  });
});
