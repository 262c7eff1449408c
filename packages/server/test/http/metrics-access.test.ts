/**
 * GET /metrics names tenants only to whoever holds the metrics token or the admin key: a plain scrape
 * gets every series without a `tenant` label (connections, writes, latencies...), so it keeps working,
 * but learns no tenant's name. A wrong token or a tenant's key is refused 401. Access does not depend
 * on the store, so this runs on SQLite only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { rest, restClient } from './rest.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

describe('who sees tenant-labelled metrics', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', { metricsToken: METRICS_TOKEN });
    // An open conflict of tenant "secret-co": syncbridge_conflicts_open{tenant="secret-co"} 1.
    const admin = restClient(srv.url, { token: await srv.token('secret-co', 'root', { roles: ['admin'] }) });
    expect((await admin.put('/v1/collections/deals', { json: { strategy: 'manual' } })).status).toBe(200);
    expect((await admin.put('/v1/records/deals/d1', { json: { v: 1 } })).status).toBe(201);
    expect((await admin.put('/v1/records/deals/d1', { json: { v: 2 } })).status).toBe(200);
    const stale = await admin.put('/v1/records/deals/d1', { json: { v: 3 }, headers: { 'if-match': '1' } });
    expect(stale.status).toBe(409);
  });
  afterAll(async () => srv?.close());

  it('leaves tenant-labelled series out of an unauthenticated scrape', async () => {
    const res = await rest(srv.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^syncbridge_connections \d+$/m);
    expect(res.text).not.toContain('secret-co');
    expect(res.text).not.toMatch(/[{,]tenant="/);
  });

  it('shows them with the metrics token or the admin key', async () => {
    const full: Record<string, string>[] = [
      { authorization: `Bearer ${METRICS_TOKEN}` },
      { 'x-api-key': srv.adminKey },
    ];
    for (const headers of full) {
      const res = await rest(srv.url, 'GET', '/metrics', { headers });
      expect(res.status).toBe(200);
      expect(res.text).toMatch(/^syncbridge_conflicts_open\{tenant="secret-co"\} 1$/m);
    }
  });

  it('refuses a wrong token, a user token and a tenant API key with 401', async () => {
    const tenantKey = await rest(srv.url, 'POST', '/v1/tenants/secret-co/api-keys', {
      apiKey: srv.adminKey,
      json: {},
    });
    expect(tenantKey.status, tenantKey.text).toBeLessThan(300);
    const refused: Record<string, string>[] = [
      { authorization: 'Bearer not-the-metrics-token' },
      { authorization: `Bearer ${await srv.token('secret-co', 'root', { roles: ['admin'] })}` },
      { 'x-api-key': tenantKey.body.key as string },
    ];
    for (const headers of refused) {
      const res = await rest(srv.url, 'GET', '/metrics', { headers });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.body.error.code).toBe('UNAUTHORIZED');
      expect(res.text).not.toContain('secret-co');
    }
  });
});
