import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';

describe('REST rate limits', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', {
      rateLimits: {
        user: { ratePerSec: 5, burst: 10 },
        tenant: { ratePerSec: 1000, burst: 1000 },
        maxConnectionsPerUser: 100,
        tenants: { strict: { tenant: { ratePerSec: 1, burst: 3 } } },
      },
    });
  });
  afterAll(async () => srv?.close());

  const get = async (token: string) =>
    fetch(`${srv.url}/v1/records/items`, { headers: { authorization: `Bearer ${token}` } });

  it('throttles a flooding user with 429 and Retry-After while another user keeps going', async () => {
    const flooder = await srv.token('shop', 'flooder');
    const calm = await srv.token('shop', 'calm');
    const statuses: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 30; i++) {
      const res = await get(flooder);
      statuses.push(res.status);
      if (res.status === 429 && !limited) limited = res;
      else await res.arrayBuffer();
    }
    expect(statuses.slice(0, 10).every((s) => s === 200)).toBe(true);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(10);
    expect(limited!.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await limited!.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
    for (let i = 0; i < 5; i++) expect((await get(calm)).status).toBe(200);
  });

  it('applies a tenant override to every user of that tenant together', async () => {
    const a = await srv.token('strict', 'a');
    const b = await srv.token('strict', 'b');
    const statuses = [];
    for (const token of [a, b, a, b, a, b]) statuses.push((await get(token)).status);
    expect(statuses.slice(0, 3)).toEqual([200, 200, 200]);
    expect(statuses.slice(3)).toContain(429);
  });

  it('does not limit health checks', async () => {
    for (let i = 0; i < 30; i++) expect((await fetch(`${srv.url}/v1/health`)).status).toBe(200);
  });
});
