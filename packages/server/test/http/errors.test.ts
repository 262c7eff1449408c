/**
 * REST errors as DESIGN.md promises them: every failure answers `{"error":{"code","message","details"?}}`
 * with the status that fits, and no response ever leaks a stack trace or a source path.
 */
import { request as httpRequest } from 'node:http';
import { ERROR_CODES } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { expectError, type Json, type RestOptions, type RestResponse, rest } from './rest.ts';

const kinds = await storeKinds();

/** Anything that looks like a stack frame, a source file or an internal error name. */
const LEAKS = [
  /\bat \S+ \(/,
  /\bat (file|node):/,
  /\n\s+at /,
  /\.ts:\d+/,
  /\.js:\d+/,
  /node_modules/,
  /\/work\//,
];

function expectNoLeak(res: RestResponse): void {
  for (const pattern of LEAKS)
    expect(res.text, `${pattern} in ${res.text.slice(0, 300)}`).not.toMatch(pattern);
}

describe.each(kinds)('REST errors (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  const seen: RestResponse[] = [];

  /** Calls the server and keeps the response for the final leak check. */
  async function call(method: string, path: string, options: RestOptions = {}): Promise<RestResponse> {
    const res = await rest(srv.url, method, path, options);
    seen.push(res);
    expectNoLeak(res);
    return res;
  }
  const authed = (method: string, path: string, options: RestOptions = {}) =>
    call(method, path, { token, ...options });
  /** One credential per request: the token route takes the admin key, the others the user's token. */
  const asCaller = (path: string, options: RestOptions): RestOptions =>
    path === '/v1/auth/token'
      ? { ...options, token: undefined, headers: { ...options.headers, 'x-api-key': srv.adminKey } }
      : options;

  beforeAll(async () => {
    srv = await startTestServer(kind, { maxFrameBytes: 4096 });
    token = await srv.token('errs', 'eve', { roles: ['admin'] });
  });
  afterAll(async () => srv?.close());

  const JSON_ROUTES: Array<[string, string]> = [
    ['PUT', '/v1/records/things/t1'],
    ['PATCH', '/v1/records/things/t1'],
    ['POST', '/v1/mutations'],
    ['POST', '/v1/events'],
    ['PUT', '/v1/collections/things'],
    ['POST', '/v1/auth/token'],
  ];

  it('a body that is not valid JSON gets 400 BAD_REQUEST', async () => {
    for (const [method, path] of JSON_ROUTES) {
      for (const raw of ['{"a":', '{a:1}', "{'a':1}", '{"a":1}}', 'nul', '']) {
        const res = await authed(
          method,
          path,
          asCaller(path, { raw, headers: { 'content-type': 'application/json' } }),
        );
        expectError(res, 400, 'BAD_REQUEST');
      }
      const merge = await authed(
        method,
        path,
        asCaller(path, { raw: '{"a":', headers: { 'content-type': 'application/merge-patch+json' } }),
      );
      expectError(merge, 400, 'BAD_REQUEST');
    }
    const poisoned = await authed('PUT', '/v1/records/things/t1', {
      raw: '{"__proto__":{"admin":true}}',
      headers: { 'content-type': 'application/json' },
    });
    expectError(poisoned, 400, 'BAD_REQUEST');
    expectError(await authed('GET', '/v1/records/things/t1'), 404, 'NOT_FOUND');
  });

  it('a body over the size limit gets 413 PAYLOAD_TOO_LARGE; one under it is accepted', async () => {
    const big = 'x'.repeat(5000);
    const cases: Array<[string, string, unknown]> = [
      ['PUT', '/v1/records/big/b1', { text: big }],
      ['PATCH', '/v1/records/big/b1', { text: big }],
      [
        'POST',
        '/v1/mutations',
        { mutations: [{ mid: 'm', collection: 'big', id: 'b1', op: 'put', data: { big } }] },
      ],
      ['POST', '/v1/events', { type: 'big', payload: big }],
    ];
    for (const [method, path, json] of cases) {
      expectError(await authed(method, path, { json }), 413, 'PAYLOAD_TOO_LARGE');
    }
    // Sent in chunks without a Content-Length, the limit holds as well.
    const chunked = await new Promise<RestResponse>((resolve, reject) => {
      const url = new URL(`${srv.url}/v1/records/big/b2`);
      const req = httpRequest(
        url,
        {
          method: 'PUT',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () =>
            resolve({ status: res.statusCode!, headers: new Headers(), text, body: JSON.parse(text) }),
          );
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        // The server may answer and close before the whole body is written.
        if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
      });
      req.write('{"text":"');
      for (let i = 0; i < 10; i++) req.write('y'.repeat(1000));
      req.end('"}');
    });
    seen.push(chunked);
    expectError(chunked, 413, 'PAYLOAD_TOO_LARGE');

    expectError(await authed('GET', '/v1/records/big/b1'), 404, 'NOT_FOUND');
    expectError(await authed('GET', '/v1/records/big/b2'), 404, 'NOT_FOUND');
    const ok = await authed('PUT', '/v1/records/big/b1', { json: { text: 'z'.repeat(3000) } });
    expect(ok.status).toBe(201);
  });

  it('an unknown route gets 404 NOT_FOUND', async () => {
    const cases: Array<[string, string]> = [
      ['GET', '/v1/nope'],
      ['GET', '/v2/records/things'],
      ['GET', '/'],
      ['POST', '/v1/records/things/t1'],
      ['DELETE', '/v1/events'],
      ['PUT', '/v1/health'],
      ['GET', '/v1/records'],
      ['GET', '/v1/realtime'],
    ];
    for (const [method, path] of cases) {
      const res = await authed(method, path, method === 'GET' ? {} : { json: {} });
      expectError(res, 404, 'NOT_FOUND');
    }
    const unauth = await call('GET', '/v1/does-not-exist');
    expectError(unauth, 404, 'NOT_FOUND');
  });

  it('a body that is not JSON gets 415', async () => {
    const types = [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/octet-stream',
    ];
    for (const [method, path] of JSON_ROUTES) {
      for (const type of types) {
        const res = await authed(
          method,
          path,
          asCaller(path, { raw: '{"a":1}', headers: { 'content-type': type } }),
        );
        expect(res.status, `${method} ${path} ${type}: ${res.text}`).toBe(415);
        expect(ERROR_CODES).toContain(res.body.error.code);
        expectError(res, 415, res.body.error.code);
        expect(res.body.error.message).toMatch(/JSON/);
      }
    }
    // A body with no Content-Type at all is not JSON either.
    const bare = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        new URL(`${srv.url}/v1/records/things/t9`),
        { method: 'PUT', headers: { authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.end('{"a":1}');
    });
    expect(bare).toBe(415);
    expectError(await authed('GET', '/v1/records/things/t9'), 404, 'NOT_FOUND');
  });

  it('a data route without credentials gets 401 UNAUTHORIZED', async () => {
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/v1/records/things'],
      ['GET', '/v1/records/things/t1'],
      ['PUT', '/v1/records/things/t1', { a: 1 }],
      ['PATCH', '/v1/records/things/t1', { a: 1 }],
      ['DELETE', '/v1/records/things/t1'],
      ['GET', '/v1/records/things/t1/history'],
      ['POST', '/v1/mutations', { mutations: [{ mid: 'x', collection: 'things', id: 't1', op: 'delete' }] }],
      ['POST', '/v1/events', { type: 'x' }],
      ['GET', '/v1/events'],
      ['GET', '/v1/collections'],
      ['GET', '/v1/collections/things'],
      ['PUT', '/v1/collections/things', { strategy: 'lww' }],
      ['GET', '/v1/connections'],
      ['POST', '/v1/auth/token', { tenant: 'errs', user: 'x' }],
      ['POST', '/v1/tenants/errs/api-keys', {}],
    ];
    const creds: Array<[string, Record<string, string>]> = [
      ['none', {}],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['basic', { authorization: 'Basic dXNlcjpwYXNz' }],
      ['garbage bearer', { authorization: 'Bearer not-a-jwt' }],
      ['unknown api key', { 'x-api-key': 'sb_admin_not-a-real-key-at-all' }],
    ];
    for (const [method, path, json] of routes) {
      for (const [what, headers] of creds) {
        const res = await call(method, path, { headers, ...(json === undefined ? {} : { json }) });
        expect(res.status, `${what} ${method} ${path}: ${res.text}`).toBe(401);
        expectError(res, 401, 'UNAUTHORIZED');
      }
    }
    // Nothing was written by any of those calls.
    const log = await authed('GET', '/v1/events');
    expect(log.body.events.filter((e: Json) => e.collection === 'things' || e.type === 'x')).toEqual([]);
  });

  it('invalid requests get 400 BAD_REQUEST with details naming what is wrong', async () => {
    const cases: Array<[string, string, RestOptions, string]> = [
      ['GET', '/v1/records/bad%20name/x', {}, '/collection'],
      ['GET', '/v1/records/things?limit=0', {}, '/limit'],
      ['GET', '/v1/records/things?limit=many', {}, '/limit'],
      ['GET', '/v1/events?after=-5', {}, '/after'],
      ['GET', `/v1/records/things/${'i'.repeat(300)}`, {}, '/id'],
      [
        'PUT',
        '/v1/records/things/t1',
        { json: { a: 1 }, headers: { 'idempotency-key': 'k'.repeat(200) } },
        'idempotency-key',
      ],
      ['PUT', '/v1/records/things/t1', { json: [1, 2, 3] }, '/'],
      ['PUT', '/v1/records/things/t1', { json: 'text' }, '/'],
      ['POST', '/v1/mutations', { json: { mutations: [] } }, '/mutations'],
      ['POST', '/v1/mutations', { json: {} }, 'mutations'],
      [
        'POST',
        '/v1/mutations',
        { json: { mutations: [{ mid: 'a', collection: 'things', id: 't1', op: 'explode' }] } },
        '/mutations/0/op',
      ],
      [
        'POST',
        '/v1/mutations',
        {
          json: { mutations: [{ mid: 'a', collection: 'things', id: 't1', op: 'put', data: {}, extra: 1 }] },
        },
        'extra',
      ],
      [
        'POST',
        '/v1/mutations',
        {
          json: {
            mutations: [{ mid: 'a', collection: 'things', id: 't1', op: 'put', baseVersion: '3', data: {} }],
          },
        },
        '/mutations/0/baseVersion',
      ],
      ['POST', '/v1/events', { json: { type: 'has space' } }, '/type'],
      ['POST', '/v1/events', { json: { type: 'ok', priority: 10 } }, '/priority'],
      ['PUT', '/v1/collections/things', { json: { strategy: 'coin_flip' } }, '/strategy'],
      ['PUT', '/v1/collections/things', { json: { colour: 'red' } }, 'colour'],
    ];
    for (const [method, path, options, where] of cases) {
      const res = await authed(method, path, options);
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(400);
      expectError(res, 400, 'BAD_REQUEST');
      expect(Array.isArray(res.body.error.details), res.text).toBe(true);
      expect(res.body.error.details.length).toBeGreaterThan(0);
      for (const d of res.body.error.details) {
        expect(typeof d.path).toBe('string');
        expect(typeof d.message).toBe('string');
      }
      expect(JSON.stringify(res.body.error), res.text).toContain(where);
    }
  });

  it('a URL the router cannot take still answers in the error shape', async () => {
    expectError(await authed('GET', '/v1/records/things/%E0%A4%A'), 400, 'BAD_REQUEST');
    const long = await authed('GET', `/v1/records/things/${'x'.repeat(5000)}`);
    expect([400, 414]).toContain(long.status);
    expectError(long, long.status, 'BAD_REQUEST');
    // The longest id the schema allows is reachable.
    const id = 'é'.repeat(256);
    expect((await authed('PUT', `/v1/records/things/${id}`, { json: { ok: true } })).status).toBe(201);
    expect((await authed('GET', `/v1/records/things/${id}`)).body.id).toBe(id);
  });

  it('text the store cannot hold is stored faithfully or refused with 400, never a 5xx', async () => {
    const res = await authed('PUT', '/v1/records/things/nul', {
      raw: '{"s":"a\\u0000b"}',
      headers: { 'content-type': 'application/json' },
    });
    if (res.status === 201) {
      expect((await authed('GET', '/v1/records/things/nul')).body.data).toEqual({ s: 'a\u0000b' });
    } else expectError(res, 400, 'BAD_REQUEST');
    const ev = await authed('POST', '/v1/events', {
      raw: '{"type":"nul","payload":{"s":"\\u0000"}}',
      headers: { 'content-type': 'application/json' },
    });
    if (ev.status !== 201) expectError(ev, 400, 'BAD_REQUEST');
    // The tenant keeps working and its log has no gap.
    const after = await authed('PUT', '/v1/records/things/after-nul', { json: { fine: true } });
    expect(after.status).toBe(201);
    const log = await authed('GET', '/v1/events?limit=1000');
    expect(log.body.events.map((e: Json) => e.seq)).toEqual(
      Array.from({ length: log.body.head }, (_, i) => i + 1),
    );
  });

  it('no response so far carried a stack trace or a source path', () => {
    expect(seen.length).toBeGreaterThan(150);
    for (const res of seen) {
      expectNoLeak(res);
      if (res.status >= 400) {
        expect(Object.keys(res.body)).toEqual(['error']);
        expect(ERROR_CODES).toContain(res.body.error.code);
        expect(res.body.error).not.toHaveProperty('stack');
        expect(res.body.error).not.toHaveProperty('statusCode');
      }
    }
  });
});
