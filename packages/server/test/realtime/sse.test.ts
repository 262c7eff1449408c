/**
 * Server-sent events at GET /v1/stream, on SQLite and PostgreSQL: the backlog then live events of
 * several channels, each log event with an `id:` that resumes every channel where it was (exactly once,
 * in order, through Last-Event-ID or `since`), filters, `reset` past the head, the HTTP ack, typed
 * refusals of bad input, and a reader that stops reading closed as a slow consumer (4001).
 */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestSseClient } from '../helpers/sse-client.ts';
import { postJson, range } from './support.ts';

const kinds = await storeKinds();

async function put(server: TestServer, token: string, collection: string, id: string, data: object) {
  const res = await fetch(`${server.url}/v1/records/${collection}/${id}`, {
    method: 'PUT',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(data),
  });
  expect(res.status).toBeLessThan(300);
  return Number(res.headers.get('x-seq'));
}

const seqsOf = (client: TestSseClient, channel: string) =>
  client.logEvents(channel).map((e) => e.data.seq as number);

describe.each(kinds)('server-sent events (%s)', (kind) => {
  let server: TestServer;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer(kind);
    token = await server.token('acme', 'alice');
  });
  afterAll(async () => server.close());

  it('streams backlog then live events of two channels, and resumes each where it was', async () => {
    // Backlog: notes 1..3 and events between them.
    const first = await put(server, token, 'notes', 'n1', { tag: 'a' });
    await postJson(`${server.url}/v1/events`, token, { type: 'ping', payload: { k: 1 } });
    await put(server, token, 'notes', 'n2', { tag: 'b' });
    const channels = ['records:notes', 'events:ping'];
    const query = `${channels.map((c) => `channels=${encodeURIComponent(c)}`).join('&')}&since=${first - 1}`;
    const a = await TestSseClient.open(server.url, query, { Authorization: `Bearer ${token}` });
    expect(a.status).toBe(200);
    await a.waitFor((e) => e.data.type === 'welcome');
    await a.waitFor(
      (e) => e.data.type === 'event' && e.data.channel === 'records:notes' && e.data.id === 'n2',
    );
    // Live.
    const live = await put(server, token, 'notes', 'n3', { tag: 'a' });
    await a.waitFor((e) => e.data.seq === live);
    const resumeId = a.lastEventId!;
    a.close();
    // While away: more of both.
    const away = [
      await put(server, token, 'notes', 'n4', { tag: 'c' }),
      (await postJson<{ seq: number }>(`${server.url}/v1/events`, token, { type: 'ping' })).body.seq,
    ];
    // An EventSource comes back with Last-Event-ID (the URL's since is older and ignored).
    const b = await TestSseClient.open(server.url, `${query}&access_token=${token}`, {
      'Last-Event-ID': resumeId,
    });
    expect(b.status).toBe(200);
    await b.waitFor((e) => e.data.seq === away[1]);
    const all = [...seqsOf(a, 'records:notes'), ...seqsOf(b, 'records:notes')];
    expect(all).toEqual([first, first + 2, live, away[0]]);
    const pings = [...seqsOf(a, 'events:ping'), ...seqsOf(b, 'events:ping')];
    expect(pings).toEqual([first + 1, away[1]]);
    // Every log event carries an id; every id parses as one seq or one place per channel.
    for (const e of [...a.logEvents(), ...b.logEvents()]) expect(e.id).toMatch(/^(\d+|\d*,\d*)$/);
    b.close();
  });

  it('a filtered channel gets its matching changes only, and one channel resumes from its id alone', async () => {
    const channel = 'records:tagged?tag=x';
    const c = await TestSseClient.open(
      server.url,
      `channels=${encodeURIComponent(channel)}&access_token=${token}`,
    );
    await c.waitFor((e) => e.data.type === 'subscribed');
    const seqs: number[] = [];
    for (const i of range(1, 6)) {
      const seq = await put(server, token, 'tagged', `t${i}`, { tag: i % 2 ? 'x' : 'y' });
      if (i % 2) seqs.push(seq);
    }
    await c.waitFor((e) => e.data.seq === seqs[2]);
    expect(seqsOf(c, channel)).toEqual(seqs);
    // With one channel the id is the event's seq.
    expect(c.lastEventId).toBe(String(seqs[2]));
    c.close();
  });

  it('answers a cursor past the head with reset, and the next id starts from the head', async () => {
    const head = await put(server, token, 'evs', 'e1', { v: 1 });
    const c = await TestSseClient.open(
      server.url,
      `channels=events:later&since=${head + 1000}&access_token=${token}`,
    );
    await c.waitFor((e) => e.data.type === 'reset');
    const seq = (await postJson<{ seq: number }>(`${server.url}/v1/events`, token, { type: 'later' })).body
      .seq;
    const ev = await c.waitFor((e) => e.data.seq === seq);
    expect(ev.id).toBe(String(seq));
    c.close();
  });

  it('takes acks over HTTP: the device cursor rises, never past the head', async () => {
    const head = await put(server, token, 'acks', 'a1', { v: 1 });
    const ok = await postJson<{ cursor: number }>(`${server.url}/v1/devices/dev-sse/ack`, token, {
      seq: head,
    });
    expect(ok).toEqual({ status: 200, body: { cursor: head } });
    const lower = await postJson<{ cursor: number }>(`${server.url}/v1/devices/dev-sse/ack`, token, {
      seq: 1,
    });
    expect(lower.body.cursor).toBe(head);
    const past = await postJson<{ error: { code: string } }>(`${server.url}/v1/devices/dev-sse/ack`, token, {
      seq: head + 100,
    });
    expect(past.status).toBe(400);
    const c = await TestSseClient.open(
      server.url,
      `channels=records:acks&deviceId=dev-sse&access_token=${token}`,
    );
    const welcome = await c.waitFor((e) => e.data.type === 'welcome');
    expect(welcome.data.cursor).toBe(head);
    c.close();
  });

  it('refuses bad input with typed errors', async () => {
    const get = async (query: string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${server.url}/v1/stream?${query}`, { headers });
      return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
    };
    expect((await get('channels=records:a')).body.error.code).toBe('UNAUTHORIZED');
    expect((await get('channels=records:a&access_token=nope')).status).toBe(401);
    const t = `access_token=${token}`;
    expect((await get(`channels=records:a&snapshot=records:b&${t}`)).status).toBe(400);
    expect((await get(`channels=nochannel&${t}`)).body.error.code).toBe('BAD_REQUEST');
    expect((await get(`channels=records:a&channels=records:a&${t}`)).status).toBe(400);
    expect((await get(`channels=records:a&since=-1&${t}`)).status).toBe(400);
    expect((await get(`channels=records:a&since=1,2&${t}`)).status).toBe(400);
    expect((await get(`channels=records:a&${t}`, { 'Last-Event-ID': 'x' })).status).toBe(400);
    expect((await get(`channels=records:a&deviceId=${'a'.repeat(200)}&${t}`)).status).toBe(400);
    expect((await get(`channels=records:a&bogus=1&${t}`)).status).toBe(400);
    // No channels: a stream of welcome (and pending, conflicts) only.
    const bare = await TestSseClient.open(server.url, t);
    await bare.waitFor((e) => e.data.type === 'welcome');
    bare.close();
    // A channel refused after the stream opened (here: a snapshot-less topic with topics disabled)
    // gets an error naming it; the other channels carry on.
    const c = await TestSseClient.open(server.url, `channels=topic:fx&channels=records:ok&${t}`);
    const err = await c.waitFor((e) => e.data.type === 'error');
    expect(err.data.rid).toBe('topic:fx');
    await c.waitFor((e) => e.data.type === 'subscribed' && e.data.channel === 'records:ok');
    c.close();
  });
});

describe('server-sent events: a reader that stops reading', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { maxBufferedBytes: 64 * 1024 });
  });
  afterAll(async () => server.close());

  it('is closed as a slow consumer with event: close 4001', async () => {
    const token = await server.token('acme', 'slow');
    const url = new URL(`${server.url}/v1/stream?channels=events:big&access_token=${token}`);
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = httpRequest(url, resolve);
      req.on('error', reject);
      req.end();
    });
    expect(res.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    const ended = new Promise<void>((resolve) => {
      res.on('end', resolve);
      res.on('close', resolve);
    });
    // Read until subscribed, then stop reading while events pile up.
    await new Promise<void>((resolve) => {
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        if (Buffer.concat(chunks).toString().includes('"subscribed"')) {
          res.off('data', onData);
          res.pause();
          resolve();
        }
      };
      res.on('data', onData);
    });
    const payload = { blob: 'x'.repeat(30_000) };
    for (let i = 0; i < 200 && !res.destroyed; i++) {
      await postJson(`${server.url}/v1/events`, token, { type: 'big', payload });
      if (res.readableEnded) break;
    }
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.resume();
    await ended;
    const text = Buffer.concat(chunks).toString();
    expect(text).toMatch(/event: close\ndata: \{"code":4001,"reason":"slow consumer[^"]*"\}\n\n$/);
  });
});

describe('server-sent events: heartbeats and token expiry', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { heartbeatMs: 200 });
  });
  afterAll(async () => server.close());

  it('fills silences with comment lines, and ends a stream whose token expired with close 1008', async () => {
    const token = await server.token('acme', 'brief', { ttlSeconds: 2 });
    const c = await TestSseClient.open(server.url, `channels=events:quiet&access_token=${token}`);
    await c.waitFor((e) => e.data.type === 'subscribed');
    const deadline = Date.now() + 15_000;
    while (c.comments < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(c.comments).toBeGreaterThanOrEqual(2);
    const close = await c.waitFor((e) => e.event === 'close');
    expect(close.data.code).toBe(1008);
    expect(c.events.find((e) => e.data.type === 'error')?.data.code).toBe('UNAUTHORIZED');
    await c.ended;
  });
});
