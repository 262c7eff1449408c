/**
 * Seqs and versions past 2^53 − 1 in requests, found by the audit of 2026-12-08: on PostgreSQL
 * `GET /v1/events?after=1e30` and `/history?after=1e30` failed with 500 INTERNAL (bigint out of range),
 * and a mutation's `baseVersion` of 1e30 was taken as a stale base. Every seq or version a caller sends
 * is now bounded by its schema and refused 400 BAD_REQUEST, on both stores and both transports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from './helpers/server.ts';
import { TestWsClient } from './helpers/ws-client.ts';

const kinds = await storeKinds();

describe.each(kinds)('seqs and versions beyond 2^53 - 1 (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;

  beforeAll(async () => {
    srv = await startTestServer(kind);
    token = await srv.token('nums', 'alice', { roles: ['admin'] });
    const put = await fetch(`${srv.url}/v1/records/things/t1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ n: 1 }),
    });
    expect(put.status).toBe(201);
  });
  afterAll(async () => srv?.close());

  async function status(method: string, path: string, body?: unknown) {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: json.error?.code };
  }

  it('REST reads refuse them with 400, not 500', async () => {
    for (const path of [
      '/v1/events?after=1e30',
      '/v1/events?after=99999999999999999999',
      '/v1/records/things/t1/history?after=1e30',
      '/v1/records/things/t1?version=9007199254740993',
      '/v1/records/things/t1/versions/99999999999999999999',
    ]) {
      expect(await status('GET', path), path).toEqual({ status: 400, code: 'BAD_REQUEST' });
    }
    expect((await status('GET', '/v1/events?after=0')).status).toBe(200);
  });

  it('a mutation or device ack with one is refused, over REST and WebSocket', async () => {
    const mutation = { mid: 'm1', collection: 'things', id: 't1', op: 'put', data: {}, baseVersion: 1e30 };
    expect(await status('POST', '/v1/mutations', { mutations: [mutation] })).toEqual({
      status: 400,
      code: 'BAD_REQUEST',
    });
    expect(await status('POST', '/v1/devices/d1/ack', { seq: 1e30 })).toEqual({
      status: 400,
      code: 'BAD_REQUEST',
    });
    const client = await TestWsClient.connect(srv.wsUrl, token);
    const reply = await client.request({ type: 'mutate', mutations: [{ ...mutation, mid: 'm2' }] });
    expect(reply).toMatchObject({ type: 'error', code: 'BAD_REQUEST' });
    await client.close();
    // Nothing was written by either.
    const record = await fetch(`${srv.url}/v1/records/things/t1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(((await record.json()) as { version: number }).version).toBe(1);
  });
});
