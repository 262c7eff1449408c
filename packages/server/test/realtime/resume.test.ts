/**
 * Resume after a disconnect: a subscriber that drops at random points of a burst (a seeded PRNG picks
 * the points, so a failure reproduces) and comes back with `since` = the last seq it saw ends up with
 * every event of its channel exactly once, in order, with no de-duplication on its side. And `ack`
 * stores a device's cursor, which `welcome` hands back on the next connection.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { readLog, seededRandom, sleep } from './support.ts';

const kinds = await storeKinds();

const COLLECTION = 'orders';
const CHANNEL = `records:${COLLECTION}`;
const MESSAGES = 500;

interface Session {
  /** Seqs in the order the subscriber processed them, across all its connections. */
  seen: number[];
  connections: number;
  /** How each connection ended: 'terminate' | 'close' | 'done'. */
  endings: string[];
}

/**
 * A subscriber that takes a random number of events (0 to 80) per connection, then drops the connection
 * (abruptly or with a close handshake) and resumes from the last seq it processed. Messages that arrive
 * after it decided to drop are ignored, as a crashed client would never have seen them.
 */
async function resumingSubscriber(
  wsUrl: string,
  token: string,
  rnd: () => number,
  isDone: (lastSeq: number) => boolean,
  deadline: number,
): Promise<Session> {
  const session: Session = { seen: [], connections: 0, endings: [] };
  let last = 0;
  while (!isDone(last)) {
    if (Date.now() > deadline) throw new Error(`resume did not finish; last seq ${last}`);
    session.connections += 1;
    const budget = rnd() < 0.1 ? 0 : 1 + Math.floor(rnd() * 80);
    const abrupt = rnd() < 0.5;
    const ws = new WebSocket(`${wsUrl}?token=${token}`);
    ws.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      let taken = 0;
      let dropped = false;
      const drop = (how: string) => {
        dropped = true;
        session.endings.push(how);
        if (how === 'terminate') ws.terminate();
        else ws.close();
      };
      const poll = setInterval(() => {
        if (!dropped && isDone(last)) drop('done');
      }, 20);
      ws.on('close', () => {
        clearInterval(poll);
        resolve();
      });
      ws.on('message', (data) => {
        if (dropped) return;
        const m = JSON.parse(data.toString()) as { type: string; seq?: number; channel?: string };
        if (m.type === 'welcome') {
          ws.send(JSON.stringify({ type: 'subscribe', rid: 's', channel: CHANNEL, since: last }));
          if (budget === 0) drop(abrupt ? 'terminate' : 'close');
        } else if (m.type === 'event' && m.channel === CHANNEL) {
          session.seen.push(m.seq!);
          last = m.seq!;
          taken += 1;
          if (taken >= budget && !isDone(last)) drop(abrupt ? 'terminate' : 'close');
        } else if (m.type === 'error' || m.type === 'reset') {
          throw new Error(`unexpected ${JSON.stringify(m)}`);
        }
      });
    });
  }
  return session;
}

describe.each(kinds)('resume after disconnects (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it.each([1, 7, 42])(
    'a subscriber dropping at random points (seed %i) gets every event once, in order',
    async (seed) => {
      const tenant = `resume-${seed}`;
      const token = await srv.token(tenant, 'writer');
      const readerToken = await srv.token(tenant, 'reader');
      const rnd = seededRandom(seed);
      const writerRnd = seededRandom(seed * 31 + 1);
      const writer = await TestWsClient.connect(srv.wsUrl, token);

      let writing = true;
      const write = (async () => {
        // Record changes on the channel, interleaved with writes the channel does not carry (domain
        // events, another collection), so the channel's seqs have holes the resume must step over.
        for (let i = 0; i < MESSAGES; i += 10) {
          const batch: Promise<unknown>[] = [];
          for (let k = i; k < i + 10; k++) {
            const roll = writerRnd();
            if (roll < 0.1) {
              batch.push(writer.request({ type: 'publish', event: { type: 'tick', payload: { k } } }));
            } else if (roll < 0.2) {
              batch.push(
                writer.request({
                  type: 'mutate',
                  mutations: [{ mid: `o${k}`, collection: 'other', id: `x${k % 5}`, op: 'put', data: { k } }],
                }),
              );
            } else {
              batch.push(
                writer.request({
                  type: 'mutate',
                  mutations: [
                    {
                      mid: `m${k}`,
                      collection: COLLECTION,
                      id: `o${k % 23}`,
                      op: k % 3 === 0 ? 'put' : 'increment',
                      data: { n: 1 },
                    },
                  ],
                }),
              );
            }
          }
          const replies = (await Promise.all(batch)) as Array<{ type: string }>;
          for (const r of replies) expect(['ok', 'results']).toContain(r.type);
          if (writerRnd() < 0.3) await sleep(2);
        }
        writing = false;
      })();

      let expectedLast = Number.POSITIVE_INFINITY;
      const subscriber = resumingSubscriber(
        srv.wsUrl,
        readerToken,
        rnd,
        (last) => last >= expectedLast,
        Date.now() + 25_000,
      );
      await write;
      expect(writing).toBe(false);
      const log = await readLog(srv.url, token);
      const expected = log.events
        .filter((e: LogEvent) => e.kind === 'record' && e.collection === COLLECTION)
        .map((e) => e.seq);
      expect(expected.length).toBeGreaterThan(MESSAGES / 2);
      expect(log.events.length).toBe(MESSAGES);
      expectedLast = expected[expected.length - 1]!;

      const session = await subscriber;
      // Several drops happened, both abrupt and clean, and the stream is exactly the channel's events.
      expect(session.connections).toBeGreaterThan(3);
      expect(session.seen).toEqual(expected);
      await writer.close();
    },
  );

  it('stores the cursor a device acks, and hands it back in welcome', async () => {
    const token = await srv.token('acme', 'alice');
    const first = await TestWsClient.connect(srv.wsUrl);
    const welcome1 = await first.request({ type: 'hello', token, deviceId: 'phone-1', protocol: 1 });
    expect(welcome1.type).toBe('welcome');
    expect(welcome1.cursor).toBeUndefined();
    for (let i = 0; i < 5; i++) {
      await first.request({
        type: 'mutate',
        mutations: [{ mid: `ack-${i}`, collection: 'notes', id: `n${i}`, op: 'put', data: { i } }],
      });
    }
    first.send({ type: 'ack', seq: 4 });
    // ack has no reply; a ping after it proves the server has read it.
    expect((await first.request({ type: 'ping' })).type).toBe('pong');
    await first.close();

    const second = await TestWsClient.connect(srv.wsUrl);
    const welcome2 = await second.request({ type: 'hello', token, deviceId: 'phone-1' });
    expect(welcome2).toMatchObject({ type: 'welcome', cursor: 4 });

    // Resuming from the stored cursor gives exactly what comes after it.
    second.send({ type: 'subscribe', rid: 'sub', channel: 'records:notes', since: welcome2.cursor });
    const events = await second.waitForEvents(1, 'records:notes');
    expect(events.map((e) => e.seq)).toEqual([5]);

    second.send({ type: 'ack', seq: 5 });
    expect((await second.request({ type: 'ping' })).type).toBe('pong');
    await second.close();
    const third = await TestWsClient.connect(srv.wsUrl);
    expect(await third.request({ type: 'hello', token, deviceId: 'phone-1' })).toMatchObject({ cursor: 5 });
    await third.close();

    // A reconnect right after the close sees the newest cursor, every time (acks beyond the log's head
    // are stored as the head, so the log first grows to seq 30).
    const filler = await TestWsClient.connect(srv.wsUrl, token);
    for (let i = 5; i < 30; i++) {
      await filler.request({
        type: 'mutate',
        mutations: [{ mid: `ack-${i}`, collection: 'notes', id: `n${i}`, op: 'put', data: { i } }],
      });
    }
    await filler.close();
    for (let seq = 6; seq < 26; seq++) {
      const before = await TestWsClient.connect(srv.wsUrl);
      await before.request({ type: 'hello', token, deviceId: 'phone-1' });
      before.send({ type: 'ack', seq });
      await before.request({ type: 'ping' });
      await before.close();
      const after = await TestWsClient.connect(srv.wsUrl);
      expect((await after.request({ type: 'hello', token, deviceId: 'phone-1' })).cursor).toBe(seq);
      await after.close();
    }

    // The device may also be named at the upgrade, next to the token.
    const q = (device: string) => `${srv.wsUrl}?token=${token}&deviceId=${device}`;
    const upgraded = await TestWsClient.connect(q('phone-1'), undefined);
    expect(await upgraded.waitFor((m) => m.type === 'welcome')).toMatchObject({ cursor: 25 });
    upgraded.send({ type: 'ack', seq: 30 });
    await upgraded.request({ type: 'ping' });
    await upgraded.close();
    const again = await TestWsClient.connect(q('phone-1'), undefined);
    expect(await again.waitFor((m) => m.type === 'welcome')).toMatchObject({ cursor: 30 });
    await again.close();
    const badDevice = await TestWsClient.connect(q('bad%20device'), undefined);
    expect(await badDevice.waitFor((m) => m.type === 'error')).toMatchObject({ code: 'BAD_REQUEST' });
    expect(await badDevice.waitForClose()).toBe(1008);

    // The cursor belongs to that device of that user only.
    const otherDevice = await TestWsClient.connect(srv.wsUrl);
    expect((await otherDevice.request({ type: 'hello', token, deviceId: 'laptop' })).cursor).toBeUndefined();
    await otherDevice.close();
    const otherUser = await TestWsClient.connect(srv.wsUrl);
    const bobToken = await srv.token('acme', 'bob');
    expect(
      (await otherUser.request({ type: 'hello', token: bobToken, deviceId: 'phone-1' })).cursor,
    ).toBeUndefined();
    await otherUser.close();
  });
});
