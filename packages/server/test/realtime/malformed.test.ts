/**
 * Bad input gets a clear error and loses nothing: a burst of malformed frames from one client (bad JSON,
 * non-objects, unknown types, wrong field types, missing fields, binary frames, oversized frames) each
 * get a typed `error` with a DESIGN.md code (and the rid when the frame had a readable one), nothing
 * internal leaks, the connection keeps working, and another client's writes and subscription carry on
 * untouched. Only a frame far over the limit ends its own connection (1009); the server stays up.
 */
import { CLOSE_CODES, ERROR_CODES, type MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectContiguous } from './support.ts';

const kinds = await storeKinds();

const MAX_FRAME = 4096;

/** A bad frame, and the rid its error must carry (undefined: the frame had no readable rid). */
type BadFrame = { frame: string | Buffer; rid?: string; code?: string };

const json = (value: unknown, rid?: string): BadFrame => ({ frame: JSON.stringify(value), rid });

function badFrames(): BadFrame[] {
  const mutation = { mid: 'm', collection: 'c', id: 'i', op: 'put', data: {} };
  return [
    // Not JSON at all.
    { frame: 'not json' },
    { frame: '{"type":"ping","rid":"cut"' },
    { frame: '' },
    { frame: '\u0000\u0001' },
    // JSON, but not an object.
    { frame: '[1,2,3]' },
    { frame: '"hello"' },
    { frame: '42' },
    { frame: 'null' },
    { frame: 'true' },
    { frame: `${'['.repeat(1900)}${']'.repeat(1900)}` },
    // Unknown or missing type.
    json({ type: 'explode', rid: 'u1' }, 'u1'),
    json({ rid: 'u2' }, 'u2'),
    json({ type: 42, rid: 'u3' }, 'u3'),
    json({ type: 'toString', rid: 'u4' }, 'u4'),
    json({ type: '__proto__', rid: 'u5' }, 'u5'),
    json({ type: 'constructor', rid: 7 }, 7 as unknown as string),
    json({ type: 'PING', rid: 'u6' }, 'u6'),
    // Wrong field types and missing fields.
    json({ type: 'mutate', rid: 'f1', mutations: 'x' }, 'f1'),
    json({ type: 'mutate', rid: 'f2', mutations: [] }, 'f2'),
    json({ type: 'mutate', rid: 'f3', mutations: [{ ...mutation, op: 'explode' }] }, 'f3'),
    json({ type: 'mutate', rid: 'f4', mutations: [{ ...mutation, mid: undefined }] }, 'f4'),
    json({ type: 'mutate', rid: 'f5', mutations: [{ ...mutation, collection: 'bad name' }] }, 'f5'),
    json({ type: 'mutate', rid: 'f6', mutations: [{ ...mutation, data: [1, 2] }] }, 'f6'),
    json({ type: 'mutate', rid: 'f7', mutations: [{ ...mutation, extra: 1 }] }, 'f7'),
    json({ type: 'mutate', rid: 'f8', mutations: [{ ...mutation, baseVersion: 'one' }] }, 'f8'),
    json({ type: 'mutate', rid: 'f9' }, 'f9'),
    json({ type: 'subscribe', rid: 'f10', channel: 'records:c', since: '5' }, 'f10'),
    json({ type: 'subscribe', rid: 'f11', channel: 'records:c', since: -1 }, 'f11'),
    json({ type: 'subscribe', rid: 'f12' }, 'f12'),
    json({ type: 'subscribe', rid: 'f13', channel: 42 }, 'f13'),
    json({ type: 'subscribe', rid: 'f14', channel: 'records:c', snapshot: 'yes' }, 'f14'),
    json({ type: 'publish', rid: 'f15' }, 'f15'),
    json({ type: 'publish', rid: 'f16', event: { payload: {} } }, 'f16'),
    json({ type: 'publish', rid: 'f17', event: { type: 'x', priority: 10 } }, 'f17'),
    json({ type: 'publish', rid: 'f18', event: 'x' }, 'f18'),
    json({ type: 'ack', rid: 'f19' }, 'f19'),
    json({ type: 'ack', rid: 'f20', seq: '7' }, 'f20'),
    json({ type: 'ack', rid: 'f21', seq: 1.5 }, 'f21'),
    json({ type: 'hello', rid: 'f22', token: 123 }, 'f22'),
    json({ type: 'resolve', rid: 'f23' }, 'f23'),
    json({ type: 'unsubscribe', rid: 'f24', channel: null }, 'f24'),
    // A rid the server cannot echo (not a short string or an integer): an error without one.
    json({ type: 'ping', rid: { x: 1 } }),
    json({ type: 'ping', rid: 'r'.repeat(200) }),
    // Binary frames.
    { frame: Buffer.from([0xde, 0xad, 0xbe, 0xef]) },
    { frame: Buffer.from(JSON.stringify({ type: 'ping', rid: 'bin' })) },
    // Over the frame limit (but under 4x): PAYLOAD_TOO_LARGE, connection kept.
    {
      frame: JSON.stringify({ type: 'ping', rid: 'big', pad: 'x'.repeat(10 * 1024) }),
      code: 'PAYLOAD_TOO_LARGE',
    },
  ];
}

/** What an error message must never contain: stack frames, file paths, runtime error names. */
const LEAK = /\n\s+at |node_modules|\/work\/|\.ts:\d+|SyntaxError|TypeError|ReferenceError|Unexpected token/;

describe.each(kinds)('malformed input (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind, { maxFrameBytes: MAX_FRAME });
  });
  afterAll(async () => srv?.close());

  it('answers every bad frame with a typed error, keeps the connection, and leaves other clients alone', async () => {
    const token = await srv.token('acme', 'mallory');
    const bad = await TestWsClient.connect(srv.wsUrl, token);
    const good = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'alice'));
    await good.request({ type: 'subscribe', channel: 'records:healthy' });
    const frames = badFrames();

    const goodWrites = (async () => {
      const seqs: number[] = [];
      for (let i = 0; i < 100; i++) {
        const reply = await good.request({
          type: 'mutate',
          mutations: [
            { mid: `g${i}`, collection: 'healthy', id: `h${i % 7}`, op: 'increment', data: { n: 1 } },
          ],
        });
        const [result] = reply.results as MutationResult[];
        expect(result!.status).toBe('applied');
        seqs.push(result!.seq!);
      }
      return seqs;
    })();
    for (const { frame } of frames) bad.send(frame);
    const goodSeqs = await goodWrites;

    // One error per bad frame, nothing else.
    const pong = await bad.request({ type: 'ping' });
    expect(pong.type).toBe('pong');
    const errors = bad.messages.filter((m) => m.type === 'error');
    expect(bad.messages.filter((m) => !['error', 'welcome'].includes(m.type) && m !== pong)).toEqual([]);
    expect(errors).toHaveLength(frames.length);
    for (const error of errors) {
      expect(ERROR_CODES).toContain(error.code);
      expect(typeof error.message).toBe('string');
      expect((error.message as string).length).toBeGreaterThan(0);
      expect(JSON.stringify(error)).not.toMatch(LEAK);
    }
    for (const { rid, code } of frames) {
      if (rid === undefined) continue;
      const error = errors.find((e) => e.rid === rid);
      expect(error, `error for rid ${rid}`).toBeDefined();
      expect(error!.code, `code for rid ${rid}`).toBe(code ?? 'BAD_REQUEST');
    }
    expect(errors.filter((e) => e.rid === undefined)).toHaveLength(
      frames.filter((f) => f.rid === undefined).length,
    );
    expect(errors.filter((e) => e.code === 'PAYLOAD_TOO_LARGE')).toHaveLength(1);
    expect(errors.filter((e) => e.code !== 'PAYLOAD_TOO_LARGE').every((e) => e.code === 'BAD_REQUEST')).toBe(
      true,
    );
    // A schema error says where the problem is.
    expect(errors.find((e) => e.rid === 'f3')!.message).toMatch(/mutations/);

    // The bad client's connection still works for real requests.
    const reply = await bad.request({
      type: 'mutate',
      mutations: [
        { mid: 'ok-1', collection: 'scratch', id: 'a', op: 'put', data: { v: 1 } },
        // Well-formed but impossible: a rejected result, not an error frame, and the batch still applies.
        { mid: 'ok-2', collection: 'scratch', id: 'a', op: 'increment', data: { v: 'x' } },
        { mid: 'ok-3', collection: 'scratch', id: 'b', op: 'delete' },
      ],
    });
    expect(reply.type).toBe('results');
    const results = reply.results as MutationResult[];
    expect(results.map((r) => r.status)).toEqual(['applied', 'rejected', 'rejected']);
    expect(results[1]!.error).toMatchObject({ code: 'BAD_REQUEST' });
    expect(results[2]!.error).toMatchObject({ code: 'NOT_FOUND' });
    expect(bad.closeCode).toBeNull();

    // The good client saw all of its own events, in order, and no error.
    const events = await good.waitForEvents(100, 'records:healthy');
    expect((await good.request({ type: 'ping' })).type).toBe('pong');
    expect(good.events('records:healthy').map((e) => e.seq)).toEqual(goodSeqs);
    expectContiguous(
      events.map((e) => e.version as number).filter((_, k) => events[k]!.id === 'h0'),
      1,
      15,
      'versions of h0',
    );
    expect(good.messages.some((m) => m.type === 'error')).toBe(false);
    await Promise.all([bad.close(), good.close()]);
  });

  it('closes with 1009 on a frame over 4x the limit, and only that connection', async () => {
    const token = await srv.token('acme', 'mallory');
    const huge = await TestWsClient.connect(srv.wsUrl, token);
    const bystander = await TestWsClient.connect(srv.wsUrl, token);
    await bystander.request({ type: 'subscribe', channel: 'events:*' });
    huge.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(MAX_FRAME * 4 + 100) }));
    expect(await huge.waitForClose()).toBe(CLOSE_CODES.TOO_BIG);

    const ok = await bystander.request({ type: 'publish', event: { type: 'still_here', payload: {} } });
    expect(ok.type).toBe('ok');
    const [event] = await bystander.waitForEvents(1, 'events:*');
    expect(event!.seq).toBe(ok.seq);
    const health = await fetch(`${srv.url}/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    // New connections are still accepted.
    const fresh = await TestWsClient.connect(srv.wsUrl, token);
    expect((await fresh.request({ type: 'ping' })).type).toBe('pong');
    await Promise.all([bystander.close(), fresh.close()]);
  });

  it('keeps serving after a storm of bad frames from many clients at once', async () => {
    const token = await srv.token('acme', 'mallory');
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => TestWsClient.connect(srv.wsUrl, token)),
    );
    for (const c of clients) for (const { frame } of badFrames()) c.send(frame);
    for (const c of clients) {
      expect((await c.request({ type: 'ping' }, 10_000)).type).toBe('pong');
      expect(c.messages.filter((m) => m.type === 'error')).toHaveLength(badFrames().length);
      expect(c.closeCode).toBeNull();
    }
    expect((await fetch(`${srv.url}/v1/health`)).status).toBe(200);
    await Promise.all(clients.map((c) => c.close()));
  });
});
