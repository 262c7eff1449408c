/**
 * Devices and selective sync through the SDK against a real server: the device registered from the
 * client's options, its categories enforced (and changed under it), the server's pending count on
 * connect as `serverPending`, `events` batches unpacked in order, and permessage-deflate on request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import {
  type DomainEvent,
  type ServerPending,
  SyncClient,
  type SyncClientError,
  type SyncClientOptions,
  type WebSocketConstructor,
} from '../src/index.ts';
import { FAST_BACKOFF, mintToken, waitFor } from './helpers.ts';

const kinds = await storeKinds();

/** A `ws` WebSocket that remembers the URLs it opened and the type of every frame it received. */
function countingWebSocket(frames: string[], sockets: WebSocket[]): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
      this.on('message', (data) => frames.push((JSON.parse(data.toString()) as { type: string }).type));
    }
  } as unknown as WebSocketConstructor;
}

describe.each(kinds)('devices through the SDK (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const clients: SyncClient[] = [];
  let tenants = 0;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  function client(options: Partial<SyncClientOptions> & { token: string }): SyncClient {
    const c = new SyncClient({ url: srv.wsUrl, backoff: FAST_BACKOFF, ...options });
    clients.push(c);
    return c;
  }

  const rest = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return (await res.json()) as Record<string, unknown>;
  };

  it('registers the device from its options and syncs only its categories', async () => {
    const token = await mintToken(srv.url, `d${++tenants}-${kind}`, 'alice');
    const phone = client({
      token,
      deviceId: 'phone-1',
      device: {
        type: 'mobile',
        name: 'Phone',
        platform: 'Android 15',
        appVersion: '1.4.0',
        categories: ['documents'],
      },
    });
    const errors: SyncClientError[] = [];
    phone.on('error', (e) => errors.push(e));
    await phone.whenOpen(5000);
    expect(await rest('GET', '/v1/devices/phone-1', token)).toMatchObject({
      type: 'mobile',
      name: 'Phone',
      platform: 'Android 15',
      appVersion: '1.4.0',
      categories: ['documents'],
    });
    const docs: string[][] = [];
    phone.collection('documents').subscribe((records) => docs.push(records.map((r) => r.id)));
    phone.collection('photos').subscribe(() => undefined);
    await waitFor(() => errors.length === 1, 'the refused photos channel');
    expect(errors[0]).toMatchObject({ code: 'FORBIDDEN' });
    expect(errors[0]!.message).toContain('records:photos');
    await waitFor(() => docs.length > 0, 'the documents snapshot');

    // Another device writes both; the phone gets documents only.
    const laptop = client({ token, deviceId: 'laptop-1' });
    await laptop.collection('photos').put('p1', { src: 'x.png' });
    await laptop.collection('documents').put('d1', { title: 'hello' });
    await waitFor(() => phone.collection('documents').get('d1') !== undefined, 'the phone to get d1');
    expect(phone.collection('photos').list()).toEqual([]);

    // Dropping documents from its categories over REST ends the live subscription, with an error event.
    await rest('PATCH', '/v1/devices/phone-1', token, { categories: [] });
    await waitFor(() => errors.length === 2, 'the ended documents channel');
    expect(errors[1]).toMatchObject({ code: 'FORBIDDEN' });
    expect(errors[1]!.message).toContain('no longer syncs documents');
  });

  it('exposes what the server reports pending for the device as serverPending', async () => {
    const token = await mintToken(srv.url, `d${++tenants}-${kind}`, 'alice');
    const writer = client({ token, deviceId: 'laptop' });
    const phoneOptions = { token, deviceId: 'phone', device: { categories: ['documents'] } };
    const first = client(phoneOptions);
    const seen: string[] = [];
    first
      .collection('documents')
      .subscribe((records) => seen.splice(0, seen.length, ...records.map((r) => r.id)));
    await first.whenOpen(5000);
    expect(first.serverPending).toBe(0);
    await writer.collection('documents').put('d1', { v: 1 });
    await waitFor(() => seen.includes('d1'), 'the phone to process d1');
    await new Promise((r) => setTimeout(r, 300)); // acks are debounced by 200 ms
    await first.close();

    for (let i = 2; i <= 4; i++) await writer.collection('documents').put(`d${i}`, { v: i });
    await writer.collection('photos').put('p1', { v: 1 });
    const reports: ServerPending[] = [];
    const back = client({ ...phoneOptions, autoConnect: false });
    back.on('pending', (p) => reports.push(p));
    expect(back.serverPending).toBeNull();
    back.connect();
    await back.whenOpen(5000);
    expect(back.serverPending).toBe(3);
    expect(reports[0]).toMatchObject({ deviceId: 'phone', count: 3, collections: { documents: 3 } });
  });

  it('unpacks events batches in order, the same as single frames, and compresses on request', async () => {
    const token = await mintToken(srv.url, `d${++tenants}-${kind}`, 'alice');
    const writer = client({ token });
    await writer.whenOpen(5000);
    const seqs: number[] = [];
    for (let i = 0; i < 40; i++) seqs.push((await writer.publish({ type: 'tick', payload: { i } })).seq);

    const listen = async (options: Omit<Partial<SyncClientOptions>, 'token'>) => {
      const frames: string[] = [];
      const sockets: WebSocket[] = [];
      const c = client({ token, WebSocket: countingWebSocket(frames, sockets), ...options });
      const got: DomainEvent<{ i: number }>[] = [];
      c.events<{ i: number }>('tick').subscribe((e) => got.push(e), { since: 0 });
      await waitFor(
        () => got.length === 40,
        '40 replayed events',
        5000,
        () => got.length,
      );
      return { c, got, frames, sockets };
    };
    const batched = await listen({ compression: true });
    const single = await listen({ batch: false });
    expect(batched.got.map((e) => e.seq)).toEqual(seqs);
    expect(single.got.map((e) => e.seq)).toEqual(seqs);
    expect(batched.got[39]).toMatchObject({ type: 'tick', payload: { i: 39 } });
    expect(batched.frames.filter((t) => t === 'events').length).toBeGreaterThan(0);
    expect(batched.frames.filter((t) => t === 'event' || t === 'events').length).toBeLessThan(5);
    expect(single.frames.filter((t) => t === 'event').length).toBe(40);
    expect(single.frames).not.toContain('events');
    expect(batched.sockets[0]!.url).toContain('compress=1');
    expect(batched.sockets[0]!.extensions).toContain('permessage-deflate');
    expect(single.sockets[0]!.extensions).toBe('');

    // A large record arrives whole over the compressed connection.
    const body = 'all work and no play '.repeat(500);
    const docs = batched.c.collection('documents');
    docs.subscribe(() => undefined);
    await writer.collection('documents').put('big', { body });
    await waitFor(() => docs.get('big') !== undefined, 'the large record');
    expect(docs.get('big')?.data).toEqual({ body });
  });
});
