/**
 * System endpoints: liveness and readiness, the OpenAPI document and UI at /docs, Prometheus metrics,
 * and minting user tokens with an API key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, type Json, rest } from './rest.ts';

const kinds = await storeKinds();

/** Reads one sample's value from Prometheus text, or null when it is absent. */
function metric(text: string, name: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : null;
}

describe.each(kinds)('system endpoints (%s)', (kind: StoreKind) => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('GET /v1/health answers without credentials', async () => {
    const res = await rest(srv.url, 'GET', '/v1/health');
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(typeof res.body.uptimeSeconds).toBe('number');
    expect(res.body.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });

  it('GET /v1/ready reports the store and the bus as reachable', async () => {
    const res = await rest(srv.url, 'GET', '/v1/ready');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      status: 'ready',
      store: { kind, ok: true },
      bus: { ok: true },
    });
    expect(typeof res.body.bus.kind).toBe('string');
    expect(typeof res.body.store.latencyMs).toBe('number');
  });

  it('GET /docs serves the OpenAPI UI', async () => {
    let res = await rest(srv.url, 'GET', '/docs');
    for (let hops = 0; hops < 3 && res.status >= 300 && res.status < 400; hops++) {
      res = await rest(srv.url, 'GET', new URL(res.headers.get('location')!, `${srv.url}/docs/`).pathname);
    }
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.text.toLowerCase()).toContain('swagger');
    // The page's own assets are served too.
    const css = /href="([^"]+\.css)"/.exec(res.text)?.[1];
    expect(css).toBeDefined();
    const asset = await fetch(new URL(css!, `${srv.url}/docs/`));
    expect(asset.status).toBe(200);
    await asset.arrayBuffer();
  });

  it('GET /docs/json is an OpenAPI 3 document listing the routes with their request schemas', async () => {
    const res = await rest(srv.url, 'GET', '/docs/json');
    expect(res.status).toBe(200);
    const doc = res.body;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('syncbridge');
    const paths = doc.paths as Record<string, Record<string, Json>>;
    const expected: Record<string, string[]> = {
      '/v1/records/{collection}/{id}': ['get', 'put', 'patch', 'delete'],
      '/v1/records/{collection}': ['get'],
      '/v1/records/{collection}/{id}/history': ['get'],
      '/v1/mutations': ['post'],
      '/v1/events': ['get', 'post'],
      '/v1/collections': ['get'],
      '/v1/collections/{collection}': ['get', 'put'],
      '/v1/connections': ['get'],
      '/v1/auth/token': ['post'],
      '/v1/health': ['get'],
      '/v1/ready': ['get'],
    };
    for (const [path, methods] of Object.entries(expected)) {
      expect(paths[path], path).toBeDefined();
      for (const method of methods) expect(paths[path]![method], `${method} ${path}`).toBeDefined();
    }
    expect(paths['/metrics']).toBeUndefined();

    const bodySchema = (path: string, method: string): Json =>
      paths[path]![method].requestBody?.content?.['application/json']?.schema;
    const token = bodySchema('/v1/auth/token', 'post');
    expect(token.required).toEqual(expect.arrayContaining(['tenant', 'user']));
    expect(Object.keys(token.properties)).toEqual(
      expect.arrayContaining(['tenant', 'user', 'roles', 'ttlSeconds']),
    );
    const mutations = bodySchema('/v1/mutations', 'post');
    expect(mutations.properties.mutations.type).toBe('array');
    expect(mutations.properties.mutations.items.properties.op).toBeDefined();
    const publish = bodySchema('/v1/events', 'post');
    expect(publish.required).toContain('type');
    expect(Object.keys(publish.properties)).toEqual(
      expect.arrayContaining(['type', 'payload', 'source', 'target', 'priority', 'idempotencyKey']),
    );
    expect(bodySchema('/v1/records/{collection}/{id}', 'put').type).toBe('object');
    expect(bodySchema('/v1/collections/{collection}', 'put').properties.strategy).toBeDefined();

    const recordParams = paths['/v1/records/{collection}/{id}']!.get.parameters.map(
      (p: Json) => `${p.in}:${p.name}`,
    );
    expect(recordParams).toEqual(expect.arrayContaining(['path:collection', 'path:id']));
    const listParams = paths['/v1/records/{collection}']!.get.parameters.map(
      (p: Json) => `${p.in}:${p.name}`,
    );
    expect(listParams).toEqual(expect.arrayContaining(['query:limit', 'query:after']));
    const eventParams = paths['/v1/events']!.get.parameters.map((p: Json) => `${p.in}:${p.name}`);
    expect(eventParams).toEqual(expect.arrayContaining(['query:after', 'query:limit', 'query:type']));
    expect(paths['/v1/records/{collection}/{id}']!.get.responses['200']).toBeDefined();
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKey', 'bearer', 'tenant']);
    // "Try it out" with the admin key needs X-Tenant: it is a scheme, required together with the key.
    expect(doc.components.securitySchemes.tenant).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'X-Tenant',
    });
    expect(doc.security).toContainEqual({ apiKey: [], tenant: [] });
  });

  it('GET /metrics is Prometheus text with syncbridge_connections following open connections', async () => {
    const first = await rest(srv.url, 'GET', '/metrics');
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(first.text).toMatch(/^# HELP syncbridge_connections /m);
    expect(first.text).toMatch(/^# TYPE syncbridge_connections gauge$/m);
    expect(metric(first.text, 'syncbridge_connections')).toBe(0);

    const token = await srv.token('metrics', 'm');
    const clients = [
      await TestWsClient.connect(srv.wsUrl, token),
      await TestWsClient.connect(srv.wsUrl, token),
    ];
    const open = await rest(srv.url, 'GET', '/metrics');
    expect(metric(open.text, 'syncbridge_connections')).toBe(2);

    await rest(srv.url, 'PUT', '/v1/records/m/1', { token, json: { a: 1 } });
    const after = await rest(srv.url, 'GET', '/metrics');
    expect(after.text).toMatch(/^syncbridge_log_events_total\{kind="record"\} [1-9]/m);

    await Promise.all(clients.map((c) => c.close()));
    const deadline = Date.now() + 5000;
    let value = metric((await rest(srv.url, 'GET', '/metrics')).text, 'syncbridge_connections');
    while (value !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      value = metric((await rest(srv.url, 'GET', '/metrics')).text, 'syncbridge_connections');
    }
    expect(value).toBe(0);
  });

  it('POST /v1/auth/token with the admin key mints a token that works on REST and WebSocket', async () => {
    const before = Date.now();
    const res = await rest(srv.url, 'POST', '/v1/auth/token', {
      apiKey: srv.adminKey,
      json: { tenant: 'minted', user: 'carol', roles: ['admin', 'ops'], ttlSeconds: 600 },
    });
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['expiresAt', 'token']);
    const expires = Date.parse(res.body.expiresAt);
    expect(expires).toBeGreaterThanOrEqual(before + 599_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 601_000);
    const token: string = res.body.token;
    expect(token.split('.')).toHaveLength(3);

    const put = await rest(srv.url, 'PUT', '/v1/records/notes/n1', { token, json: { by: 'carol' } });
    expect(put.status).toBe(201);
    expect(put.body.updatedBy).toBe('carol');
    // The roles travel with it: the admin role may change collection settings.
    const settings = await rest(srv.url, 'PUT', '/v1/collections/notes', {
      token,
      json: { strategy: 'server_wins' },
    });
    expect(settings.status).toBe(200);

    const ws = await TestWsClient.connect(srv.wsUrl, token);
    expect(ws.messages[0]).toMatchObject({
      type: 'welcome',
      tenant: 'minted',
      user: 'carol',
      roles: ['admin', 'ops'],
    });
    const sub = await ws.request({ type: 'subscribe', channel: 'records:notes', since: 0 });
    expect(sub.type).toBe('subscribed');
    const [event] = await ws.waitForEvents(1, 'records:notes');
    expect(event).toMatchObject({ id: 'n1', data: { by: 'carol' } });
    await ws.close();

    // In hello as well as at the upgrade.
    const late = await TestWsClient.connect(srv.wsUrl);
    const welcome = await late.request({ type: 'hello', token, protocol: 1 });
    expect(welcome).toMatchObject({ type: 'welcome', tenant: 'minted', user: 'carol' });
    await late.close();

    // Defaults: no roles, and about an hour.
    const plain = await rest(srv.url, 'POST', '/v1/auth/token', {
      apiKey: srv.adminKey,
      json: { tenant: 'minted', user: 'dan' },
    });
    expect(plain.status).toBe(200);
    const ttl = Date.parse(plain.body.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(60_000);
    const denied = await rest(srv.url, 'PUT', '/v1/collections/notes', {
      token: plain.body.token,
      json: { strategy: 'lww' },
    });
    expectError(denied, 403, 'FORBIDDEN');
  });

  it('POST /v1/auth/token without a key, with a wrong key or with a token gets 401; a bad body gets 400', async () => {
    const body = { tenant: 'minted', user: 'eve' };
    expectError(await rest(srv.url, 'POST', '/v1/auth/token', { json: body }), 401, 'UNAUTHORIZED');
    for (const apiKey of ['wrong-key', `${srv.adminKey}x`, srv.adminKey.slice(0, -1), ' ']) {
      const res = await rest(srv.url, 'POST', '/v1/auth/token', {
        json: body,
        headers: { 'x-api-key': apiKey },
      });
      expectError(res, 401, 'UNAUTHORIZED');
      expect(res.text).not.toContain('eyJ');
    }
    const userToken = await srv.token('minted', 'frank', { roles: ['admin'] });
    expectError(
      await rest(srv.url, 'POST', '/v1/auth/token', { token: userToken, json: body }),
      401,
      'UNAUTHORIZED',
    );

    const invalid: unknown[] = [
      {},
      { tenant: 'minted' },
      { user: 'eve' },
      { tenant: 'has space', user: 'eve' },
      { tenant: '', user: 'eve' },
      { tenant: 'minted', user: '' },
      { tenant: 'minted', user: 'eve', roles: 'admin' },
      { tenant: 'minted', user: 'eve', roles: [''] },
      { tenant: 'minted', user: 'eve', ttlSeconds: 0 },
      { tenant: 'minted', user: 'eve', ttlSeconds: 'forever' },
      { tenant: 'minted', user: 'eve', superuser: true },
      { tenant: 42, user: 'eve' },
    ];
    for (const json of invalid) {
      const res = await rest(srv.url, 'POST', '/v1/auth/token', { apiKey: srv.adminKey, json });
      expect(res.status, `${JSON.stringify(json)}: ${res.text}`).toBe(400);
      expectError(res, 400, 'BAD_REQUEST');
    }
  });
});
