/**
 * The SDK behind a proxy that refuses WebSocket upgrades, on SQLite and PostgreSQL: a small local HTTP
 * proxy (started by the test) answers every request carrying `Upgrade:` with 403 and relays the rest.
 * The client falls back to server-sent events by itself, writes over REST, subscribes, and when the
 * proxy drops every connection (several times, mid-burst) it resumes: each of its increments counts
 * exactly once, and it receives every domain event of the burst exactly once, in order.
 * Also: an upgrade the proxy holds unanswered moves the client to SSE after `fallbackTimeoutMs`,
 * `transports: ['sse']` goes straight to SSE, and a direct client stays on the WebSocket.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, storeKinds, type TestServer } from '../../server/test/helpers/server.ts';
import { type StatusChange, SyncClient } from '../src/index.ts';
import { FAST_BACKOFF, recordStatus, waitFor } from './helpers.ts';

const kinds = await storeKinds();

/** An HTTP proxy that refuses upgrades: each connection's first request head decides. */
class NoUpgradeProxy {
  readonly sockets = new Set<Socket>();
  refusedUpgrades = 0;
  /** Hold upgrades unanswered (a proxy that buffers them) instead of refusing them. */
  hold = false;
  private server: Server | null = null;
  port = 0;

  constructor(private readonly upstreamPort: number) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => client.destroy());
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        client.off('data', onData);
        if (/^upgrade:/im.test(head.subarray(0, end).toString('latin1'))) {
          this.refusedUpgrades += 1;
          if (this.hold) return;
          client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
          return;
        }
        const upstream = tcpConnect(this.upstreamPort, '127.0.0.1');
        this.sockets.add(upstream);
        upstream.on('close', () => {
          this.sockets.delete(upstream);
          client.destroy();
        });
        upstream.on('error', () => upstream.destroy());
        client.on('close', () => upstream.destroy());
        upstream.write(head);
        client.pipe(upstream);
        upstream.pipe(client);
      };
      client.on('data', onData);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
  }

  /** Drops every connection it carries, as a proxy restarting or timing out would. */
  dropAll(): number {
    const n = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return n;
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

describe.each(kinds)('the SDK behind a proxy that refuses WebSocket upgrades (%s)', (kind) => {
  let srv: TestServer;
  let proxy: NoUpgradeProxy;
  const clients: SyncClient[] = [];

  beforeAll(async () => {
    srv = await startTestServer(kind);
    proxy = new NoUpgradeProxy(srv.server.port);
    await proxy.start();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await proxy.stop();
    await srv.close();
  });

  const client = (token: string, extra: Partial<ConstructorParameters<typeof SyncClient>[0]> = {}) => {
    const c = new SyncClient({
      url: `ws://127.0.0.1:${proxy.port}/v1/realtime`,
      token,
      backoff: FAST_BACKOFF,
      fallbackTimeoutMs: 2000,
      ...extra,
    });
    clients.push(c);
    return c;
  };

  it('falls back to SSE, and writes, subscribes and resumes through dropped connections exactly once, in order', async () => {
    const token = await srv.token('proxied', 'alice');
    const a = client(token, { deviceId: 'behind-proxy' });
    const changes = recordStatus(a);
    const seen: number[] = [];
    a.events<{ n: number }>('burst').subscribe((e) => {
      seen.push(e.seq);
    });
    const stock = a.collection('stock');
    stock.subscribe(() => undefined);
    await waitFor(
      () => a.state === 'open',
      'the client to open over SSE',
      20_000,
      () => changes,
    );
    expect(a.transport).toBe('sse');
    expect(proxy.refusedUpgrades).toBeGreaterThan(0);
    expect(changes.find((c: StatusChange) => c.newState === 'open')?.transport).toBe('sse');

    // A writer beside the proxy publishes a burst; the proxied client increments meanwhile; the proxy
    // drops everything three times along the way.
    const writer = new SyncClient({
      url: srv.wsUrl,
      token,
      transports: ['websocket'],
      backoff: FAST_BACKOFF,
    });
    clients.push(writer);
    await waitFor(() => writer.state === 'open', 'the direct writer to open');
    expect(writer.transport).toBe('websocket');
    const published: number[] = [];
    const increments: Promise<unknown>[] = [];
    for (let i = 1; i <= 60; i++) {
      published.push((await writer.publish({ type: 'burst', payload: { n: i } })).seq);
      increments.push(stock.increment('sku-1', { qty: 1 }));
      if (i % 20 === 0) proxy.dropAll();
    }
    await Promise.all(increments);
    await waitFor(
      () => seen.length >= published.length,
      'every burst event over SSE',
      30_000,
      () => ({
        seen: seen.length,
        state: a.state,
      }),
    );
    expect(seen).toEqual(published);
    const res = await fetch(`${srv.url}/v1/records/stock/sku-1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(((await res.json()) as { data: { qty: number } }).data.qty).toBe(60);
    await waitFor(() => stock.get('sku-1')?.data.qty === 60, 'the proxied client to see the total');
    expect(changes.filter((c) => c.reason === 'transport_closed').length).toBeGreaterThan(0);
    expect(a.transport).toBe('sse');
  });

  it('moves on to SSE when the upgrade hangs past fallbackTimeoutMs', async () => {
    proxy.hold = true;
    try {
      const token = await srv.token('proxied', 'carol');
      const c = client(token, { fallbackTimeoutMs: 300 });
      const changes = recordStatus(c);
      await waitFor(
        () => c.state === 'open',
        'the client to open over SSE',
        20_000,
        () => changes,
      );
      expect(c.transport).toBe('sse');
      expect(changes).toContainEqual(
        expect.objectContaining({ newState: 'offline', reason: 'connect_timeout', transport: 'websocket' }),
      );
    } finally {
      proxy.hold = false;
    }
  });

  it("goes straight to SSE with transports: ['sse'], publishes with idempotency over REST", async () => {
    const token = await srv.token('proxied', 'bob');
    const refusedBefore = proxy.refusedUpgrades;
    const c = client(token, { transports: ['sse'] });
    await waitFor(() => c.state === 'open', 'the SSE client to open');
    expect(proxy.refusedUpgrades).toBe(refusedBefore);
    const first = await c.publish({ type: 'once', payload: {}, idempotencyKey: 'k-1' });
    const again = await c.publish({ type: 'once', payload: {}, idempotencyKey: 'k-1' });
    expect(again).toMatchObject({ seq: first.seq, duplicate: true });
  });
});
