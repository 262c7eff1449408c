/**
 * Input that JSON cannot store as sent is refused with BAD_REQUEST, the same way over WebSocket and
 * REST and on both stores, before it reaches a write transaction: nesting past the depth limit (which
 * overflowed the stack inside the group commit and answered UNAVAILABLE forever), numbers JSON cannot
 * carry back (1e400, integers beyond 2^53, increments past them), lone surrogates, `__proto__` keys,
 * and collection names or record ids `.` / `..`. Writers sharing the server are not touched, and no
 * stored record can break a filtered read.
 */
import { join } from 'node:path';
import type { MutationResult } from '@syncbridge/protocol';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectError, type Json, restClient } from './rest.ts';

const kinds = await storeKinds();

/** `{"a":{"a":…{"a":1}…}}` nested `depth` levels, as JSON text (JSON.stringify of it would overflow). */
function deepText(depth: number): string {
  return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

describe.each(kinds)('unstorable input (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let ws: TestWsClient;
  let api: ReturnType<typeof restClient>;
  let rid = 0;

  /** Sends a mutate frame whose `data` is the given JSON text; resolves with its one result. */
  async function wsPut(
    collection: string,
    id: string,
    dataText: string,
    op = 'put',
  ): Promise<MutationResult> {
    const r = `m${++rid}`;
    ws.send(
      `{"type":"mutate","rid":"${r}","mutations":[{"mid":"${r}","collection":"${collection}","id":"${id}","op":"${op}","data":${dataText}}]}`,
    );
    const reply = await ws.waitFor((m) => m.rid === r);
    // A user who already sent data too deep has later frames refused whole, before parsing.
    if (reply.type === 'error') {
      return { mid: r, status: 'rejected', error: { code: reply.code, message: reply.message as string } };
    }
    expect(reply.type, JSON.stringify(reply)).toBe('results');
    return (reply.results as MutationResult[])[0]!;
  }

  function restPut(collection: string, id: string, bodyText: string) {
    return api.put(`/v1/records/${collection}/${id}`, {
      raw: bodyText,
      headers: { 'content-type': 'application/json' },
    });
  }

  function expectBadRequestResult(result: MutationResult, message: RegExp): void {
    expect(result.status, JSON.stringify(result)).toBe('rejected');
    expect(result.error?.code).toBe('BAD_REQUEST');
    expect(result.error?.message).toMatch(message);
  }

  beforeAll(async () => {
    srv = await startTestServer(kind);
    const token = await srv.token('acme', 'alice');
    ws = await TestWsClient.connect(srv.wsUrl, token);
    api = restClient(srv.url, { token });
  });
  afterAll(async () => {
    await ws?.close();
    await srv?.close();
  });

  it('refuses data nested past the depth limit as BAD_REQUEST, on both transports, and keeps the writer usable', async () => {
    const other = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'bob'));
    const innocent = (async () => {
      const statuses: string[] = [];
      for (let i = 0; i < 30; i++) {
        const reply = await other.request({
          type: 'mutate',
          mutations: [
            { mid: `ok${i}`, collection: 'fine', id: `f${i % 3}`, op: 'increment', data: { n: 1 } },
          ],
        });
        statuses.push((reply.results as MutationResult[])[0]!.status);
      }
      return statuses;
    })();
    for (const depth of [65, 1_500, 10_000]) {
      expectBadRequestResult(await wsPut('deep', `w${depth}`, deepText(depth)), /nested deeper than 64/);
      expectError(await restPut('deep', `r${depth}`, deepText(depth)), 400, 'BAD_REQUEST');
    }
    // A patch nests as deep, and so do a batch over REST, an event payload and resolution data.
    expectBadRequestResult(await wsPut('deep', 'p', deepText(10_000), 'patch'), /nested deeper/);
    const batch = await api.post('/v1/mutations', {
      raw: `{"mutations":[{"mid":"b1","collection":"deep","id":"b","op":"put","data":${deepText(10_000)}},{"mid":"b2","collection":"deep","id":"b","op":"put","data":{"x":1}}]}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(batch.status).toBe(200);
    expect(batch.body.results.map((r: MutationResult) => r.status)).toEqual(['rejected', 'applied']);
    expectError(
      await api.post('/v1/events', {
        raw: `{"type":"deep","payload":${deepText(10_000)}}`,
        headers: { 'content-type': 'application/json' },
      }),
      400,
      'BAD_REQUEST',
    );
    ws.send(`{"type":"publish","rid":"pub","event":{"type":"deep","payload":${deepText(10_000)}}}`);
    const published = await ws.waitFor((m) => m.rid === 'pub');
    expect([published.type, published.code]).toEqual(['error', 'BAD_REQUEST']);
    // Once a user sent data too deep, its frames are scanned before parsing: a deep one is refused
    // whole, with its rid; one at the limit is still fine.
    ws.send(
      `{"type":"mutate","rid":"whole","mutations":[{"mid":"w","collection":"deep","id":"w","op":"put","data":${deepText(10_000)}}]}`,
    );
    const whole = await ws.waitFor((m) => m.rid === 'whole');
    expect([whole.type, whole.code, whole.message]).toEqual([
      'error',
      'BAD_REQUEST',
      'frame nested deeper than 64 levels of data',
    ]);
    expect((await wsPut('deep', 'ok', deepText(64))).status).toBe('applied');
    expect(await innocent).toEqual(Array(30).fill('applied'));
    await other.close();
  });

  it('keeps filtered reads of a collection working: a record nested 1,500 deep is never stored', async () => {
    expect((await wsPut('rooms', 'ok', '{"loc":"wh-1"}')).status).toBe('applied');
    expectBadRequestResult(
      await wsPut('rooms', 'deep', `{"loc":"wh-1","d":${deepText(1_500)}}`),
      /nested deeper/,
    );
    const list = await api.get('/v1/records/rooms?loc=wh-1');
    expect(list.status, list.text).toBe(200);
    expect(list.body.records.map((r: Json) => r.id)).toEqual(['ok']);
    const sub = await ws.request({ type: 'subscribe', channel: 'records:rooms?loc=wh-1', snapshot: true });
    expect(sub.type).toBe('subscribed');
  });

  it('refuses numbers JSON cannot carry back: 1e400, integers beyond 2^53, increments past them', async () => {
    expectBadRequestResult(await wsPut('nums', 'a', '{"x":1e400}'), /\/x: number is not a finite/);
    expectBadRequestResult(await wsPut('nums', 'a', '{"x":9007199254740993}'), /send it as a string/);
    expectError(await restPut('nums', 'a', '{"x":1e400}'), 400, 'BAD_REQUEST');
    expectError(await restPut('nums', 'a', '{"x":-9007199254740993}'), 400, 'BAD_REQUEST');
    expect((await wsPut('nums', 'a', '{"x":9007199254740991,"y":1.5e-300}')).status).toBe('applied');
    expectBadRequestResult(await wsPut('nums', 'a', '{"x":1}', 'increment'), /would pass/);
    expectBadRequestResult(
      await wsPut('nums', 'a', '{"x":1.7976931348623157e308}', 'increment'),
      /cannot be stored exactly/,
    );
    const res = await api.patch('/v1/records/nums/a', { json: { y: 2 } });
    expect(res.status).toBe(200);
    // Nothing of the refused writes reached the record.
    const record = await api.get('/v1/records/nums/a');
    expect(record.body.data).toEqual({ x: 9007199254740991, y: 2 });
    expect(record.body.version).toBe(2);
  });

  it('refuses lone surrogates in values and keys on both transports', async () => {
    expectBadRequestResult(await wsPut('text', 'a', '{"s":"ab\\ud800"}'), /lone surrogate/);
    expectBadRequestResult(await wsPut('text', 'a', '{"\\udc00":1}'), /lone surrogate/);
    expectError(await restPut('text', 'a', '{"s":"\\ud800"}'), 400, 'BAD_REQUEST');
    // A pair is a character like any other.
    expect((await wsPut('text', 'a', '{"s":"\\ud83d\\ude00"}')).status).toBe('applied');
    expect((await api.get('/v1/records/text/a')).body.data).toEqual({ s: '😀' });
  });

  it('says where the unstorable value is in details.path over REST, as over WebSocket and for NUL', async () => {
    const surrogate = await restPut('text', 'b', '{"s":"\\ud800"}');
    expectError(surrogate, 400, 'BAD_REQUEST');
    expect(surrogate.body.error.details).toEqual({ path: '/s' });
    const deep = await restPut('text', 'b', deepText(100));
    expectError(deep, 400, 'BAD_REQUEST');
    expect(deep.body.error.details.path).toMatch(/^\/a\/a\//);
    expect(deep.body.error.details.limit).toBe('depth');
    const nul = await restPut('text', 'b', '{"s":"a\\u0000"}');
    expectError(nul, 400, 'BAD_REQUEST');
    expect(nul.body.error.details).toEqual({ path: '/s' });
    const viaWs = await wsPut('text', 'b', '{"s":"\\ud800"}');
    expect(viaWs.error?.details).toEqual({ path: '/s' });
  });

  it('refuses __proto__ keys over WebSocket as REST does', async () => {
    expectBadRequestResult(await wsPut('proto', 'a', '{"__proto__":{"admin":true}}'), /__proto__/);
    expectBadRequestResult(await wsPut('proto', 'a', '{"x":{"__proto__":1}}'), /\/x\/__proto__/);
    expectBadRequestResult(
      await wsPut('proto', 'a', '{"constructor":{"prototype":{"a":1}}}'),
      /"prototype" is not accepted/,
    );
    const rest = await restPut('proto', 'a', '{"__proto__":{"admin":true}}');
    expectError(rest, 400, 'BAD_REQUEST');
    expect(rest.body.error.message).toMatch(/__proto__/);
    expect((await api.get('/v1/records/proto/a')).status).toBe(404);
  });

  it('refuses collections and ids "." and ".." over WebSocket (REST cannot address them)', async () => {
    for (const [collection, id] of [
      ['.', 'a'],
      ['..', 'a'],
      ['c', '.'],
      ['c', '..'],
    ]) {
      const reply = await ws.request({
        type: 'mutate',
        mutations: [{ mid: `dot-${collection}-${id}`, collection, id, op: 'put', data: { x: 1 } }],
      });
      expect([reply.type, reply.code], JSON.stringify(reply)).toEqual(['error', 'BAD_REQUEST']);
    }
    const sub = await ws.request({ type: 'subscribe', channel: 'records:..' });
    expect([sub.type, sub.code]).toEqual(['error', 'BAD_REQUEST']);
    // Names with dots in them are still names.
    const ok = await ws.request({
      type: 'mutate',
      mutations: [{ mid: 'dots-ok', collection: 'a.b', id: '...', op: 'put', data: { x: 1 } }],
    });
    expect((ok.results as MutationResult[])[0]!.status).toBe('applied');
    expect((await api.get('/v1/records/a.b/...')).status).toBe(200);
  });
});

describe('a stored record SQLite cannot read (sqlite)', () => {
  it('matches no filter instead of failing every filtered read of its collection', async () => {
    const srv = await startTestServer('sqlite');
    try {
      const token = await srv.token('acme', 'alice');
      const api = restClient(srv.url, { token });
      expect((await api.put('/v1/records/rooms/ok', { json: { loc: 'wh-1' } })).status).toBe(201);
      // As a record written before depth was limited would be: nested past SQLite's 1,000 levels.
      const db = new Database(join(srv.storage.dataDir, 'syncbridge.db'));
      db.prepare(
        `INSERT INTO records (tenant, collection, id, data, version, hlc, updated_at, updated_by, deleted)
         VALUES ('acme', 'rooms', 'old', ?, 1, '000000000000001-0000-n', '2026-01-01T00:00:00.000Z', 'x', 0)`,
      ).run(`{"loc":"wh-1","d":${deepText(1_500)}}`);
      db.close();
      const list = await api.get('/v1/records/rooms?loc=wh-1');
      expect(list.status, list.text).toBe(200);
      expect(list.body.records.map((r: Json) => r.id)).toEqual(['ok']);
      const ws = await TestWsClient.connect(srv.wsUrl, token);
      const sub = await ws.request({ type: 'subscribe', channel: 'records:rooms?loc=wh-1', snapshot: true });
      expect(sub.type).toBe('subscribed');
      const snap = await ws.waitFor((m) => m.type === 'snapshot' && m.done === true);
      expect((snap.records as Json[]).map((r) => r.id)).toEqual(['ok']);
      await ws.close();
    } finally {
      await srv.close();
    }
  });
});

describe.each(kinds)('collection settings past the limits (%s)', (kind: StoreKind) => {
  it('refuses a JSON schema nested past the depth limit', async () => {
    const srv = await startTestServer(kind);
    try {
      const admin = restClient(srv.url, { token: await srv.token('acme', 'root', { roles: ['admin'] }) });
      const deepSchema = `${'{"type":"object","properties":{"a":'.repeat(2_000)}{}${'}}'.repeat(2_000)}`;
      const res = await admin.put('/v1/collections/c', {
        raw: `{"schema":${deepSchema}}`,
        headers: { 'content-type': 'application/json' },
      });
      expectError(res, 400, 'BAD_REQUEST');
      expect(res.body.error.message).toMatch(/nested deeper than 64/);
      expect((await admin.put('/v1/records/c/x', { json: { a: 1 } })).status).toBe(201);
    } finally {
      await srv.close();
    }
  });
});
