/**
 * A device that falls back to server-sent events is paced as on the WebSocket, on SQLite and
 * PostgreSQL: the SDK registers the client's `device` options over REST before each stream, so the
 * server applies the budget, priorities and conflation to `GET /v1/stream`. Also: a server shutdown
 * completes with such a client connected and writing (its idle HTTP connections kept alive for minutes,
 * as a browser keeps them), `client.close()` leaves no stream open on the server (its
 * `syncbridge_connections` gauge, which counts SSE streams, goes back to 0), and the last `ack` it
 * flushes on close still reaches the server.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, storeKinds, type TestServer } from '../../server/test/helpers/server.ts';
import { type ConflatedCatchUp, type StatusChange, SyncClient } from '../src/index.ts';
import type { WebSocketLike } from '../src/transport.ts';
import { FAST_BACKOFF, mintToken, waitFor } from './helpers.ts';

const kinds = await storeKinds();

/** A WebSocket whose upgrade a proxy refuses: it errors and closes (1006) as soon as it is made. */
class RefusedWebSocket implements WebSocketLike {
  readyState = 0;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  constructor(_url: string) {
    setTimeout(() => {
      this.readyState = 3;
      this.onerror?.({});
      this.onclose?.({ code: 1006, reason: '' });
    }, 0);
  }
  send(): void {
    throw new Error('not open');
  }
  close(): void {}
}

const PACED = {
  bandwidth: { bytesPerSecond: 256 * 1024 },
  priorities: { settings: 10, documents: 1 },
  conflate: true,
};

async function openConnections(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('syncbridge_connections '));
  return Number(line?.split(' ')[1]);
}

describe.each(kinds)('a paced device over SSE (%s)', (kind) => {
  let srv: TestServer;
  const clients: SyncClient[] = [];
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  it('falls back to SSE, registers its budget and priorities, and gets a conflated catch-up', async () => {
    const token = await mintToken(srv.url, `sse-device-${kind}`, 'alice');
    const statuses: StatusChange[] = [];
    const phone = new SyncClient({
      url: srv.wsUrl,
      token,
      backoff: FAST_BACKOFF,
      WebSocket: RefusedWebSocket,
      deviceId: 'phone',
      device: { name: 'Phone', ...PACED },
    });
    const writer = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    clients.push(phone, writer);
    phone.on('status', (s) => statuses.push(s));
    const reports: ConflatedCatchUp[] = [];
    phone.on('conflated', (r) => reports.push(r));
    const docs = phone.collection<{ n: number }>('documents');
    docs.subscribe(() => undefined);
    await phone.whenOpen(10_000);
    expect(statuses.at(-1)?.transport).toBe('sse');

    const device = (await (
      await fetch(`${srv.url}/v1/devices/phone`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Record<string, unknown>;
    expect(device).toMatchObject({ name: 'Phone', ...PACED });

    await writer.collection('documents').put('d0', { n: -1 });
    await waitFor(() => docs.get('d0')?.data.n === -1, 'the first version over SSE');
    phone.disconnect();
    const writes = writer.collection<{ n: number }>('documents');
    await Promise.all(Array.from({ length: 200 }, (_, i) => writes.put(`d${i % 10}`, { n: i })));
    phone.connect();
    await waitFor(() => docs.get('d9')?.data.n === 199, 'the latest versions');
    expect(phone.conflated).toHaveLength(1);
    expect(phone.conflated[0]).toMatchObject({ channel: 'records:documents', skipped: 190 });
    expect(reports).toEqual(phone.conflated);
    for (let k = 0; k < 10; k++) expect(docs.get(`d${k}`)?.data.n).toBe(190 + k);
  }, 30_000);

  it('a device registration the server refuses is reported, and the client keeps trying', async () => {
    const token = await mintToken(srv.url, `sse-device-bad-${kind}`, 'alice');
    const statuses: StatusChange[] = [];
    const client = new SyncClient({
      url: srv.wsUrl,
      token,
      backoff: FAST_BACKOFF,
      transports: ['sse'],
      deviceId: 'tablet',
      // Over the server's 100-character limit: the registration is answered 400.
      device: { platform: 'x'.repeat(150) },
    });
    clients.push(client);
    client.on('status', (s) => statuses.push(s));
    client.connect();
    await waitFor(
      () =>
        statuses.filter((s) => s.newState === 'offline' && /registering the device/.test(s.message ?? ''))
          .length >= 2,
      'the refused registration, twice',
    );
    expect(client.state).not.toBe('open');
    await client.close();
    expect(client.state).toBe('closed');
  }, 20_000);

  it("close() right after changes arrive still saves the device's cursor", async () => {
    const token = await mintToken(srv.url, `sse-device-ack-${kind}`, 'alice');
    const reader = new SyncClient({
      url: srv.wsUrl,
      token,
      backoff: FAST_BACKOFF,
      transports: ['sse'],
      deviceId: 'reader',
      device: PACED,
    });
    const writer = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    clients.push(writer);
    const docs = reader.collection<{ n: number }>('documents');
    docs.subscribe(() => undefined);
    await reader.whenOpen(10_000);
    const writes = writer.collection<{ n: number }>('documents');
    await Promise.all(Array.from({ length: 5 }, (_, i) => writes.put(`c${i}`, { n: i })));
    await waitFor(() => docs.get('c4')?.data.n === 4, 'the five changes');
    // The debounced ack has not gone yet: close() sends it, and lets it be answered.
    await reader.close();
    const head = Number(
      (
        (await (
          await fetch(`${srv.url}/v1/events?after=0&limit=1000`, {
            headers: { authorization: `Bearer ${token}` },
          })
        ).json()) as { events: { seq: number }[] }
      ).events.at(-1)?.seq,
    );
    const device = (await (
      await fetch(`${srv.url}/v1/devices/reader`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { pending?: { cursor: number } };
    expect(device.pending?.cursor).toBe(head);
  }, 20_000);

  it('client.close() ends its stream on the server', async () => {
    const token = await mintToken(srv.url, `sse-device-close-${kind}`, 'alice');
    const before = await openConnections(srv.url);
    const client = new SyncClient({
      url: srv.wsUrl,
      token,
      backoff: FAST_BACKOFF,
      transports: ['sse'],
      deviceId: 'laptop',
      device: PACED,
    });
    client.collection('documents').subscribe(() => undefined);
    await client.whenOpen(10_000);
    expect(await openConnections(srv.url)).toBe(before + 1);
    await client.close();
    let now = -1;
    for (let i = 0; i < 500 && now !== before; i++) {
      now = await openConnections(srv.url);
      if (now !== before) await new Promise((r) => setTimeout(r, 10));
    }
    expect(now).toBe(before);
  }, 20_000);
});

describe.each(kinds)('server shutdown with an SSE device client connected (%s)', (kind) => {
  // As a browser does, the client keeps its idle HTTP connections for minutes (the server's keep-alive
  // timeout, 72 s, decides): the shutdown must close them itself once their requests are answered.
  const agent = new Agent({ keepAliveTimeout: 600_000, keepAliveMaxTimeout: 600_000 });
  const keepAliveFetch = ((url: string, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as typeof fetch;
  afterAll(() => agent.close());

  it('completes while the client is subscribed and writing', async () => {
    const srv = await startTestServer(kind);
    const token = await mintToken(srv.url, `sse-device-shutdown-${kind}`, 'alice');
    const client = new SyncClient({
      url: srv.wsUrl,
      token,
      backoff: FAST_BACKOFF,
      transports: ['sse'],
      deviceId: 'phone',
      device: PACED,
      fetch: keepAliveFetch,
    });
    try {
      const docs = client.collection<{ n: number }>('documents');
      docs.subscribe(() => undefined);
      await client.whenOpen(10_000);
      await docs.put('first', { n: 0 });
      // Writes keep going over REST while the server shuts down; the shutdown must not wait on them.
      let stop = false;
      const load = (async () => {
        for (let i = 0; !stop && i < 2000; i++) {
          docs.put(`k${i % 20}`, { n: i }).catch(() => undefined);
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      await waitFor(() => (docs.get('k19')?.data.n ?? -1) >= 0, 'writes under way');
      await srv.close();
      stop = true;
      await load;
      await waitFor(() => client.state === 'offline' || client.state === 'connecting', 'the client offline');
    } finally {
      await client.close();
    }
    expect(client.state).toBe('closed');
  }, 30_000);

  it('completes when a write still uploading as it begins is answered after, the client paused', async () => {
    const srv = await startTestServer(kind);
    const token = await mintToken(srv.url, `sse-device-paused-${kind}`, 'alice');
    // A slow upload: the body of the one write to `slow` arrives in two parts, the second on release.
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let uploading = false;
    const slowFetch = ((url: string, init?: RequestInit) => {
      const body = typeof init?.body === 'string' ? init.body : '';
      if (!url.endsWith('/v1/mutations') || !body.includes('"slow"')) return keepAliveFetch(url, init);
      uploading = true;
      const bytes = new TextEncoder().encode(body);
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(bytes.subarray(0, 10));
          await released;
          controller.enqueue(bytes.subarray(10));
          controller.close();
        },
      });
      const headers = {
        ...(init?.headers as Record<string, string>),
        'Content-Length': String(bytes.length),
      };
      return undiciFetch(url, {
        ...(init as object),
        headers,
        body: stream,
        duplex: 'half',
        dispatcher: agent,
      });
    }) as unknown as typeof fetch;
    const statuses: StatusChange[] = [];
    const client = new SyncClient({
      url: srv.wsUrl,
      token,
      backoff: FAST_BACKOFF,
      transports: ['sse'],
      deviceId: 'tablet',
      device: PACED,
      fetch: slowFetch,
    });
    client.on('status', (s) => statuses.push(s));
    try {
      await client.whenOpen(10_000);
      void client
        .collection('slow')
        .put('s1', { n: 1 })
        .catch(() => undefined);
      await waitFor(() => uploading, 'the upload to start');
      const closed = srv.close();
      await waitFor(() => statuses.some((s) => s.closeCode === 1001), 'the stream told the server goes away');
      // Paused: nothing more is sent. The write's connection is answered once the server's HTTP side is
      // closing (a moment later: its idle connections are already closed by then), then it is idle.
      client.disconnect();
      await new Promise((r) => setTimeout(r, 300));
      release();
      await closed;
      expect(client.state).toBe('offline');
    } finally {
      release();
      await client.close();
    }
  }, 30_000);
});
