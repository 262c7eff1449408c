/**
 * Connection lifecycle: application-level ping/pong, heartbeats and the idle timeout (a client that
 * answers neither pings nor sends anything is closed with 4002, a live one stays), and graceful
 * shutdown (clients get 1001, and every write acknowledged as applied before it is in the store when
 * the server comes back on the same data).
 */
import { CLOSE_CODES, type LogEvent, type MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { postJson, range, readLog, sleep, startBurstWriter } from './support.ts';

const kinds = await storeKinds();

describe.each(kinds)('ping and idle timeout (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  beforeAll(async () => {
    srv = await startTestServer(kind, { idleTimeoutMs: 1000, heartbeatMs: 200 });
    token = await srv.token('acme', 'alice');
  });
  afterAll(async () => srv?.close());

  it('answers ping with pong, the rid and the server time', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, token);
    const before = Date.now();
    const pong = await client.request({ type: 'ping' });
    expect(pong).toMatchObject({ type: 'pong', rid: 'r1' });
    const serverTime = Date.parse(pong.serverTime as string);
    expect(serverTime).toBeGreaterThanOrEqual(before - 1000);
    expect(serverTime).toBeLessThanOrEqual(Date.now() + 1000);
    client.send({ type: 'ping', rid: 42 });
    expect(await client.waitFor((m) => m.type === 'pong' && m.rid === 42)).toBeDefined();
    client.send({ type: 'ping' });
    const bare = await client.waitFor((m) => m.type === 'pong' && m.rid === undefined);
    expect(bare).not.toHaveProperty('rid');
    await client.close();
  });

  it('closes a client that answers no pings and sends nothing (4002), and keeps a live one', async () => {
    const silent = new WebSocket(`${srv.wsUrl}?token=${token}`, { autoPong: false });
    silent.on('error', () => undefined);
    let pings = 0;
    silent.on('ping', () => {
      pings += 1;
    });
    const silentClosed = new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
    let welcomedAt = 0;
    const welcomed = new Promise<void>((resolve) =>
      silent.once('message', () => {
        welcomedAt = Date.now();
        resolve();
      }),
    );
    // Answers no pings either, but sends a message now and then: it is not idle.
    const chatty = new WebSocket(`${srv.wsUrl}?token=${token}`, { autoPong: false });
    chatty.on('error', () => undefined);
    let chattyClose: number | null = null;
    chatty.on('close', (code) => {
      chattyClose = code;
    });
    await new Promise<void>((resolve) => chatty.once('message', () => resolve()));
    const chatter = setInterval(() => chatty.send(JSON.stringify({ type: 'ping' })), 300);
    const live = await TestWsClient.connect(srv.wsUrl, token);
    await welcomed;

    const code = await Promise.race([silentClosed, sleep(5000).then(() => -1)]);
    expect(code).toBe(CLOSE_CODES.IDLE_TIMEOUT);
    expect(Date.now() - welcomedAt).toBeGreaterThanOrEqual(900);
    expect(pings).toBeGreaterThan(0);

    // The others are still connected well past the idle timeout.
    await sleep(1000);
    expect(live.closeCode).toBeNull();
    expect(chattyClose).toBeNull();
    expect((await live.request({ type: 'ping' })).type).toBe('pong');
    clearInterval(chatter);
    chatty.close();
    await live.close();
  });
});

describe.each(kinds)('graceful shutdown (%s)', (kind: StoreKind) => {
  let srv: TestServer | null = null;
  let restarted: TestServer | null = null;
  afterAll(async () => {
    await restarted?.close();
    if (!restarted) await srv?.close();
  });

  it('sends 1001 to every client and keeps every write it acknowledged', async () => {
    srv = await startTestServer(kind);
    const token = await srv.token('acme', 'writer');
    const watcher = await TestWsClient.connect(srv.wsUrl, token);
    await watcher.request({ type: 'subscribe', channel: 'records:counters' });
    const idle = await TestWsClient.connect(srv.wsUrl, token);
    const writers = await Promise.all(
      [0, 1, 2].map((w) =>
        startBurstWriter(srv!.wsUrl, token, (k) =>
          range(0, 2).map((j) => ({
            mid: `w${w}-${k}-${j}`,
            collection: 'counters',
            id: `c${(k + j) % 10}`,
            op: 'increment',
            data: { n: 1 },
          })),
        ),
      ),
    );
    // Close while the writers have mutations in flight.
    const deadline = Date.now() + 10_000;
    while (writers.reduce((n, w) => n + w.results.length, 0) < 300 && Date.now() < deadline) await sleep(5);
    await srv.close({ keepData: true });

    const codes = await Promise.all([...writers.map((w) => w.closed), watcher.closed, idle.closed]);
    expect(codes.every((c) => c === CLOSE_CODES.GOING_AWAY)).toBe(true);
    const applied = writers.flatMap((w) => w.results).filter((r) => r.status === 'applied');
    const sent = writers.reduce((n, w) => n + w.sent.length, 0);
    expect(applied.length).toBeGreaterThanOrEqual(300);
    expect(sent).toBeGreaterThan(applied.length);

    // Back on the same data: every acknowledged write is there, the log has no gap.
    restarted = await startTestServer(kind, {}, srv.storage);
    const rest = await restarted.token('acme', 'auditor');
    const log = await readLog(restarted.url, rest);
    expect(log.events.map((e) => e.seq)).toEqual(range(1, log.head));
    const bySeq = new Map(log.events.map((e: LogEvent) => [e.seq, e]));
    for (const r of applied) {
      expect(bySeq.get(r.seq!), `seq ${r.seq} of ${r.mid}`).toMatchObject({
        id: r.record!.id,
        version: r.version,
      });
    }
    // Replaying the acknowledged writes changes nothing: each is a duplicate of its first result.
    const mutationByMid = new Map(writers.flatMap((w) => w.sent).map((m) => [m.mid, m]));
    for (let i = 0; i < applied.length; i += 500) {
      const batch = applied.slice(i, i + 500);
      const replay = await postJson<{ results: MutationResult[] }>(`${restarted.url}/v1/mutations`, rest, {
        mutations: batch.map((r) => mutationByMid.get(r.mid)),
      });
      expect(replay.status).toBe(200);
      replay.body.results.forEach((r, k) => {
        expect(r).toMatchObject({ status: 'duplicate', seq: batch[k]!.seq, version: batch[k]!.version });
      });
    }
    expect((await readLog(restarted.url, rest)).head).toBe(log.head);
  });
});
