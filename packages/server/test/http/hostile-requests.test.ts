/**
 * Requests a hostile or careless client sends that the other http suites do not: bodies that are not
 * UTF-8 (refused, never stored with U+FFFD in place of the bytes sent), compressed bodies (415 naming
 * the encoding), request heads over Node's
 * header limit (the API's error shape, not Fastify's), and filters on keys every JavaScript object
 * has (`__proto__` is refused instead of silently matching every record; `constructor` is a field like
 * any other), over REST and on channels.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, restClient } from './rest.ts';

const kinds = await storeKinds();

describe.each(kinds)('hostile requests (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  let api: ReturnType<typeof restClient>;
  beforeAll(async () => {
    srv = await startTestServer(kind);
    token = await srv.token('acme', 'mallory');
    api = restClient(srv.url, { token });
  });
  afterAll(async () => srv?.close());

  const putBytes = (path: string, body: Uint8Array) =>
    fetch(`${srv.url}${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });

  it('refuses a body that is not UTF-8 with 400 BAD_REQUEST and stores nothing', async () => {
    const bytes = Buffer.concat([Buffer.from('{"title":"caf'), Buffer.from([0xe9, 0xff]), Buffer.from('"}')]);
    const res = await putBytes('/v1/records/utf8/bad', bytes);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { code: 'BAD_REQUEST', message: 'request body is not valid UTF-8' },
    });
    expectError(await api.get('/v1/records/utf8/bad'), 404, 'NOT_FOUND');

    // Real UTF-8, multi-byte characters included, is stored as sent; an empty body is still "empty".
    const good = await putBytes('/v1/records/utf8/good', Buffer.from('{"title":"café ☕ 𝄞"}'));
    expect(good.status).toBe(201);
    expect((await api.get('/v1/records/utf8/good')).body.data).toEqual({ title: 'café ☕ 𝄞' });
    const empty = await putBytes('/v1/records/utf8/empty', new Uint8Array());
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
  });

  it('refuses a compressed body with 415 naming the encoding, not as invalid JSON', async () => {
    const res = await fetch(`${srv.url}/v1/records/utf8/gz`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      },
      body: gzipSync('{"a":1}'),
    });
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({
      error: {
        code: 'BAD_REQUEST',
        message: 'Content-Encoding gzip is not supported: send the body uncompressed',
      },
    });
    expectError(await api.get('/v1/records/utf8/gz'), 404, 'NOT_FOUND');
  });

  it('answers a request head over the header limit in the error shape', async () => {
    const res = await fetch(`${srv.url}/v1/records/c/${'a'.repeat(100_000)}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(431);
    expect(await res.json()).toEqual({
      error: { code: 'PAYLOAD_TOO_LARGE', message: 'the request line and headers are too large' },
    });
    // The server is unharmed.
    expect((await fetch(`${srv.url}/v1/health`)).status).toBe(200);
  });

  it('filters by "constructor" like any field, and refuses "__proto__" instead of matching everything', async () => {
    expect((await api.put('/v1/records/proto/a', { json: { constructor: 'x' } })).status).toBe(201);
    expect((await api.put('/v1/records/proto/b', { json: { constructor: 'y' } })).status).toBe(201);

    const byConstructor = await api.get('/v1/records/proto?constructor=x');
    expect(byConstructor.status).toBe(200);
    expect(byConstructor.body.records.map((r: { id: string }) => r.id)).toEqual(['a']);
    const byToString = await api.get('/v1/records/proto?toString=x');
    expect(byToString.body.records).toEqual([]);

    const proto = await api.get('/v1/records/proto?__proto__=1');
    expectError(proto, 400, 'BAD_REQUEST');
    expect(proto.body.error.message).toBe('filter field "__proto__" is not accepted');

    const ws = await TestWsClient.connect(srv.wsUrl, token);
    const ok = await ws.request({
      type: 'subscribe',
      channel: 'records:proto?constructor=x',
      snapshot: true,
    });
    expect(ok.type).toBe('subscribed');
    const snapshot = await ws.waitFor((m) => m.type === 'snapshot' && m.done === true);
    expect((snapshot.records as Array<{ id: string }>).map((r) => r.id)).toEqual(['a']);
    const other = await ws.request({ type: 'subscribe', channel: 'records:proto?hasOwnProperty=1' });
    expect(other.type).toBe('subscribed');
    const refused = await ws.request({ type: 'subscribe', channel: 'records:proto?__proto__=1' });
    expect(refused).toMatchObject({
      type: 'error',
      code: 'BAD_REQUEST',
      message: 'filter field "__proto__" is not accepted',
    });
    await ws.close();
  });
});
