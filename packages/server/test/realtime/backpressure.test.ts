/**
 * Backpressure: a subscriber that stops reading must not hold the server's memory hostage nor slow the
 * others. Once its outbound buffer passes maxBufferedBytes the server closes it with 4001
 * (SLOW_CONSUMER), after the events it had already queued, with no gap among them; a healthy subscriber
 * meanwhile gets everything; and the slow one resumes from its last seq and gets the rest exactly once.
 */
import type { Socket } from 'node:net';
import { CLOSE_CODES, RESUMABLE_CLOSE_CODES } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { expectContiguous } from './support.ts';

const kinds = await storeKinds();

// Enough data to fill the kernel's socket buffers on loopback (a few MB) several times over, so the
// server's own buffer for the paused reader must pass the 64 KiB limit.
const EVENTS = 600;
const PAD = 'x'.repeat(16 * 1024);
// A backlog larger than the kernel's buffers, so the server has to wait for the reader.
const BACKLOG = 400;

function tcp(client: TestWsClient): Socket {
  return (client.ws as unknown as { _socket: Socket })._socket;
}

describe.each(kinds)('backpressure (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind, { maxBufferedBytes: 65_536 });
  });
  afterAll(async () => srv?.close());

  async function publishBurst(writer: TestWsClient, from: number, count: number): Promise<number[]> {
    const seqs: number[] = [];
    for (let i = from; i < from + count; i += 50) {
      const replies = await Promise.all(
        Array.from({ length: Math.min(50, from + count - i) }, (_, k) =>
          writer.request(
            { type: 'publish', event: { type: 'bulk', payload: { i: i + k, pad: PAD } } },
            15_000,
          ),
        ),
      );
      for (const r of replies) {
        expect(r.type).toBe('ok');
        seqs.push(r.seq as number);
      }
    }
    return seqs;
  }

  async function resumeAndCollect(
    tenant: string,
    since: number,
    untilSeq: number,
  ): Promise<{ client: TestWsClient; seqs: number[] }> {
    const client = await TestWsClient.connect(srv.wsUrl, await srv.token(tenant, 'slow'));
    await client.request({ type: 'subscribe', channel: 'events:bulk', since });
    await client.waitFor((m) => m.type === 'event' && m.seq === untilSeq, 20_000);
    expect((await client.request({ type: 'ping' })).type).toBe('pong');
    return { client, seqs: client.events('events:bulk').map((e) => e.seq as number) };
  }

  it('closes a live subscriber that stops reading with 4001, while a healthy one gets everything', async () => {
    const tenant = 'live-slow';
    const token = await srv.token(tenant, 'u');
    const slow = await TestWsClient.connect(srv.wsUrl, token);
    const healthy = await TestWsClient.connect(srv.wsUrl, token);
    await slow.request({ type: 'subscribe', channel: 'events:bulk' });
    await healthy.request({ type: 'subscribe', channel: 'events:bulk' });
    tcp(slow).pause();

    const writer = await TestWsClient.connect(srv.wsUrl, token);
    const seqs = await publishBurst(writer, 0, EVENTS);
    expect(seqs).toEqual(Array.from({ length: EVENTS }, (_, k) => k + 1));

    // The healthy subscriber got every event, in order, and is still connected.
    await healthy.waitForEvents(EVENTS, 'events:bulk', 20_000);
    expect((await healthy.request({ type: 'ping' })).type).toBe('pong');
    expectContiguous(
      healthy.events('events:bulk').map((e) => e.seq as number),
      1,
      EVENTS,
      'healthy subscriber',
    );
    expect(healthy.closeCode).toBeNull();

    // The slow one reads what was queued for it, then the close: 4001, a code that says "resume".
    tcp(slow).resume();
    expect(await slow.waitForClose(15_000)).toBe(CLOSE_CODES.SLOW_CONSUMER);
    expect(RESUMABLE_CLOSE_CODES).toContain(slow.closeCode);
    const before = slow.events('events:bulk').map((e) => e.seq as number);
    expect(before.length).toBeLessThan(EVENTS);
    expectContiguous(before, 1, before.length, 'slow subscriber before the close');

    // Resuming from its last seq gives exactly the rest.
    const last = before.length > 0 ? before[before.length - 1]! : 0;
    const resumed = await resumeAndCollect(tenant, last, EVENTS);
    expectContiguous(resumed.seqs, last + 1, EVENTS, 'slow subscriber after resuming');
    await Promise.all([resumed.client.close(), healthy.close(), writer.close()]);
  });

  it('paces a backlog by the reader instead of dropping it: a reader that pauses mid-catch-up gets it all', async () => {
    const tenant = 'backlog-slow';
    const token = await srv.token(tenant, 'u');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    await publishBurst(writer, 0, BACKLOG);

    const slow = await TestWsClient.connect(srv.wsUrl, token);
    slow.send({ type: 'subscribe', rid: 's', channel: 'events:bulk', since: 0 });
    tcp(slow).pause();
    // Other clients keep being served meanwhile, and writes go on.
    const other = await TestWsClient.connect(srv.wsUrl, token);
    await other.request({ type: 'subscribe', channel: 'events:bulk', since: BACKLOG - 5 });
    await other.waitForEvents(5, 'events:bulk');
    const extra = await publishBurst(writer, BACKLOG, 20);
    await other.waitForEvents(25, 'events:bulk');
    expect(other.events('events:bulk').map((e) => e.seq)).toEqual([
      ...Array.from({ length: 5 }, (_, k) => BACKLOG - 4 + k),
      ...extra,
    ]);

    tcp(slow).resume();
    await slow.waitForEvents(BACKLOG + 20, 'events:bulk', 20_000);
    expect((await slow.request({ type: 'ping' })).type).toBe('pong');
    expectContiguous(
      slow.events('events:bulk').map((e) => e.seq as number),
      1,
      BACKLOG + 20,
      'paused reader catching up',
    );
    expect(slow.closeCode).toBeNull();
    await Promise.all([slow.close(), other.close(), writer.close()]);
  });

  it('does not drop a reader that keeps up with a large backlog or snapshot of big records', async () => {
    const tenant = 'big-catch-up';
    const token = await srv.token(tenant, 'u');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    for (let b = 0; b < 6; b++) {
      const reply = await writer.request({
        type: 'mutate',
        mutations: Array.from({ length: 50 }, (_, i) => ({
          mid: `d${b}-${i}`,
          collection: 'docs',
          id: `doc-${b}-${i}`,
          op: 'put',
          data: { pad: PAD, n: i },
        })),
      });
      expect(reply.type).toBe('results');
    }
    // About 5 MB of backlog against a 64 KiB buffer limit.
    const backlog = await TestWsClient.connect(srv.wsUrl, token);
    backlog.send({ type: 'subscribe', rid: 's', channel: 'records:docs', since: 0 });
    await backlog.waitForEvents(300, 'records:docs', 20_000);
    expectContiguous(
      backlog.events('records:docs').map((e) => e.seq as number),
      1,
      300,
      'backlog of big records',
    );
    expect(backlog.closeCode).toBeNull();

    const snap = await TestWsClient.connect(srv.wsUrl, token);
    snap.send({ type: 'subscribe', rid: 's', channel: 'records:docs', snapshot: true });
    await snap.waitFor((m) => m.type === 'snapshot' && m.done === true, 20_000);
    const ids = snap.messages
      .filter((m) => m.type === 'snapshot')
      .flatMap((m) => (m.records as Array<{ id: string }>).map((r) => r.id));
    expect(new Set(ids).size).toBe(300);
    expect(ids).toHaveLength(300);
    expect(snap.closeCode).toBeNull();
    // Both are live afterwards.
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'after', collection: 'docs', id: 'doc-0-0', op: 'patch', data: { n: -1 } }],
    });
    await backlog.waitForEvents(301, 'records:docs');
    expect((await snap.waitForEvents(1, 'records:docs'))[0]).toMatchObject({ seq: 301 });
    await Promise.all([backlog.close(), snap.close(), writer.close()]);
  });
});
