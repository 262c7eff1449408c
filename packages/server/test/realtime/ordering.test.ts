/**
 * One order per tenant under concurrent writers: ten connections write put / patch / increment /
 * delete on overlapping records at the same time while three subscribers watch (one from before the
 * burst, one joining mid-way from seq 0, one joining mid-way live only). Each must see seqs strictly
 * increasing with no gap and no duplicate, every write gets an `applied` result with its seq, and every
 * record's versions are 1..v with no gap.
 */
import type { Mutation, MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectContiguous, getJson, range, readHistory, readLog, seededRandom } from './support.ts';

const kinds = await storeKinds();

const WRITERS = 10;
const MUTATIONS_PER_WRITER = 50;
const IDS = 12;
const COLLECTION = 'ledger';
const CHANNEL = `records:${COLLECTION}`;

/** One writer's messages: mostly single mutations, some batches, deletes paired with a put first. */
function planWriter(w: number): Mutation[][] {
  const rnd = seededRandom(1000 + w);
  const messages: Mutation[][] = [];
  let n = 0;
  const mid = () => `w${w}-m${n++}`;
  while (n < MUTATIONS_PER_WRITER) {
    const id = `r${Math.floor(rnd() * IDS)}`;
    const roll = rnd();
    if (roll < 0.3) {
      messages.push([{ mid: mid(), collection: COLLECTION, id, op: 'put', data: { count: w, by: `w${w}` } }]);
    } else if (roll < 0.55) {
      messages.push([{ mid: mid(), collection: COLLECTION, id, op: 'patch', data: { [`w${w}`]: n } }]);
    } else if (roll < 0.85) {
      messages.push([{ mid: mid(), collection: COLLECTION, id, op: 'increment', data: { count: 1 } }]);
    } else if (roll < 0.93) {
      // put + delete in one message: both apply whatever the other writers did in between.
      messages.push([
        { mid: mid(), collection: COLLECTION, id, op: 'put', data: { count: 0 } },
        { mid: mid(), collection: COLLECTION, id, op: 'delete' },
      ]);
    } else {
      const other = `r${Math.floor(rnd() * IDS)}`;
      messages.push([
        { mid: mid(), collection: COLLECTION, id, op: 'increment', data: { count: 2 } },
        { mid: mid(), collection: COLLECTION, id: other, op: 'patch', data: { touched: true } },
        { mid: mid(), collection: COLLECTION, id, op: 'increment', data: { count: -1 } },
      ]);
    }
  }
  return messages;
}

describe.each(kinds)('one order per tenant under concurrent writers (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('gives every subscriber a gap-free, duplicate-free, increasing seq stream', async () => {
    const token = await srv.token('acme', 'writer');
    const readerToken = await srv.token('acme', 'reader');

    const early = await TestWsClient.connect(srv.wsUrl, readerToken);
    expect(await early.request({ type: 'subscribe', channel: CHANNEL })).toMatchObject({
      type: 'subscribed',
      channel: CHANNEL,
      cursor: 0,
    });

    const plans = range(0, WRITERS - 1).map(planWriter);
    const totalMutations = plans.flat(2).length;
    const writers = await Promise.all(plans.map(() => TestWsClient.connect(srv.wsUrl, token)));
    const results = new Map<string, MutationResult>();
    const sentOrder: Mutation[] = [];

    let lateSince0: TestWsClient | null = null;
    let lateLive: TestWsClient | null = null;
    let liveCursor = -1;
    let joining: Promise<void> | null = null;
    const joinMidway = async () => {
      lateSince0 = await TestWsClient.connect(srv.wsUrl, readerToken);
      lateLive = await TestWsClient.connect(srv.wsUrl, readerToken);
      lateSince0.send({ type: 'subscribe', rid: 's', channel: CHANNEL, since: 0 });
      const sub = await lateLive.request({ type: 'subscribe', channel: CHANNEL });
      liveCursor = sub.cursor as number;
    };

    await Promise.all(
      writers.map(async (writer, w) => {
        for (const mutations of plans[w]!) {
          sentOrder.push(...mutations);
          const reply = await writer.request({ type: 'mutate', mutations }, 15_000);
          expect(reply.type, JSON.stringify(reply)).toBe('results');
          const got = reply.results as MutationResult[];
          expect(got.map((r) => r.mid)).toEqual(mutations.map((m) => m.mid));
          for (const r of got) results.set(r.mid, r);
          if (!joining && results.size >= totalMutations * 0.4) joining = joinMidway();
        }
      }),
    );
    await joining;
    expect(liveCursor).toBeGreaterThan(0);
    expect(liveCursor).toBeLessThan(totalMutations);

    // Every write was applied and got its own seq; together they are exactly 1..N.
    const n = totalMutations;
    expect(results.size).toBe(n);
    for (const r of results.values()) {
      expect(r.status, JSON.stringify(r)).toBe('applied');
      expect(Number.isInteger(r.seq)).toBe(true);
    }
    const resultSeqs = [...results.values()].map((r) => r.seq!).sort((a, b) => a - b);
    expect(resultSeqs).toEqual(range(1, n));

    // Each subscriber sees exactly its part of the log, in order.
    const earlyEvents = await early.waitForEvents(n, CHANNEL, 20_000);
    const since0Events = await lateSince0!.waitForEvents(n, CHANNEL, 20_000);
    const liveEvents = await lateLive!.waitForEvents(n - liveCursor, CHANNEL, 20_000);
    // Give any stray duplicate a moment to show up before counting.
    expect((await early.request({ type: 'ping' })).type).toBe('pong');
    expect((await lateSince0!.request({ type: 'ping' })).type).toBe('pong');
    expect((await lateLive!.request({ type: 'ping' })).type).toBe('pong');
    expectContiguous(
      early.events(CHANNEL).map((e) => e.seq as number),
      1,
      n,
      'subscriber joined before the burst',
    );
    expectContiguous(
      lateSince0!.events(CHANNEL).map((e) => e.seq as number),
      1,
      n,
      'subscriber joined mid-way with since: 0',
    );
    expectContiguous(
      lateLive!.events(CHANNEL).map((e) => e.seq as number),
      liveCursor + 1,
      n,
      'live-only subscriber joined mid-way',
    );
    // The three saw the same events, byte for byte.
    expect(since0Events).toEqual(earlyEvents);
    expect(liveEvents).toEqual(earlyEvents.slice(liveCursor));

    // Each result names the event at its seq.
    const bySeq = new Map(earlyEvents.map((e) => [e.seq as number, e]));
    const byMid = new Map(sentOrder.map((m) => [m.mid, m]));
    for (const r of results.values()) {
      const event = bySeq.get(r.seq!)!;
      const m = byMid.get(r.mid)!;
      expect(event).toMatchObject({ collection: COLLECTION, id: m.id, op: m.op, version: r.version });
    }

    // Per record: versions 1..v in seq order, in the stream and in the stored history; the last
    // event's data is the record's current state.
    const rest = await srv.token('acme', 'auditor');
    for (const k of range(0, IDS - 1)) {
      const id = `r${k}`;
      const stream = earlyEvents.filter((e) => e.id === id);
      if (stream.length === 0) continue;
      expect(
        stream.map((e) => e.version),
        id,
      ).toEqual(range(1, stream.length));
      const history = await readHistory(srv.url, rest, COLLECTION, id);
      expect(
        history.map((h) => h.version),
        id,
      ).toEqual(range(1, stream.length));
      expect(history.map((h) => h.seq)).toEqual(stream.map((e) => e.seq));
      const last = stream[stream.length - 1]!;
      const res = await fetch(`${srv.url}/v1/records/${COLLECTION}/${id}`, {
        headers: { Authorization: `Bearer ${rest}` },
      });
      if (last.op === 'delete') expect(res.status).toBe(404);
      else {
        const record = (await res.json()) as Record<string, unknown>;
        expect(record).toMatchObject({ version: last.version, data: last.data, deleted: false });
      }
    }

    // The log read over REST is the same 1..N.
    const log = await readLog(srv.url, rest);
    expect(log.head).toBe(n);
    expect(log.events.map((e) => e.seq)).toEqual(range(1, n));
    const ids = await getJson<{ records: unknown[] }>(`${srv.url}/v1/records/${COLLECTION}?limit=100`, rest);
    expect(ids.records.length).toBeLessThanOrEqual(IDS);

    await Promise.all([early, lateSince0!, lateLive!, ...writers].map((c) => c.close()));
  });
});
