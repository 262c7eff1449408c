/**
 * Frames a client sends right behind `hello`, before the server has answered it (hello and subscribe
 * in one tick, as a client that does not wait would), wait for the token to be verified and are then
 * handled in order: none is refused UNAUTHORIZED, no connection is closed 1008. With a bad token they
 * are dropped with the connection; the same holds for frames behind a token given at the upgrade.
 */
import { CLOSE_CODES } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';

const kinds = await storeKinds();

interface Opened {
  messages: Record<string, unknown>[];
  closed: Promise<number>;
  ws: WebSocket;
}

/** Opens a socket and sends `frames` all at once, in one tick, as soon as it is open. */
function openAndPipeline(url: string, frames: unknown[]): Promise<Opened> {
  const ws = new WebSocket(url);
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString()) as Record<string, unknown>));
  ws.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      for (const f of frames) ws.send(JSON.stringify(f));
      resolve({ messages, closed, ws });
    });
    ws.once('unexpected-response', () => reject(new Error('upgrade refused')));
  });
}

async function until(test: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(kinds)('frames pipelined behind hello (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('are held until hello is answered, then handled in order on every connection', async () => {
    const token = await srv.token('acme', 'alice');
    const conns = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        openAndPipeline(srv.wsUrl, [
          { type: 'hello', rid: 'h', token, deviceId: `dev-${i}`, protocol: 1 },
          { type: 'subscribe', rid: 's', channel: 'records:todos' },
          {
            type: 'mutate',
            rid: 'm',
            mutations: [{ mid: `m${i}`, collection: 'todos', id: `t${i}`, op: 'put', data: { i } }],
          },
          { type: 'ping', rid: 'p' },
        ]),
      ),
    );
    for (const c of conns) {
      await until(() => c.messages.some((m) => m.rid === 'p'));
      await until(() => c.messages.some((m) => m.rid === 'm'));
      // Started in order; each is answered when done (a pong does not wait for a subscribe).
      const replies = c.messages.filter((m) => m.rid !== undefined).map((m) => `${m.rid}:${m.type}`);
      expect(replies[0]).toBe('h:welcome');
      expect(replies.sort()).toEqual(['h:welcome', 'm:results', 'p:pong', 's:subscribed']);
      expect(c.messages.some((m) => m.type === 'error')).toBe(false);
      c.ws.close();
    }
  });

  it('are held behind a token given at the upgrade too', async () => {
    const token = await srv.token('acme', 'alice');
    const c = await openAndPipeline(`${srv.wsUrl}?token=${token}&deviceId=up-1`, [
      { type: 'subscribe', rid: 's', channel: 'records:todos' },
      { type: 'ping', rid: 'p' },
    ]);
    await until(() => c.messages.some((m) => m.rid === 'p') && c.messages.some((m) => m.rid === 's'));
    expect(c.messages.slice(0, 2).map((m) => m.type)).toEqual(['welcome', 'pending']);
    expect(c.messages.map((m) => m.type).sort()).toEqual(['pending', 'pong', 'subscribed', 'welcome']);
    c.ws.close();
  });

  it('are dropped with the connection when the token is refused', async () => {
    const c = await openAndPipeline(srv.wsUrl, [
      { type: 'hello', rid: 'h', token: 'not-a-token', protocol: 1 },
      { type: 'subscribe', rid: 's', channel: 'records:todos' },
    ]);
    expect(await c.closed).toBe(CLOSE_CODES.POLICY);
    expect(c.messages.map((m) => `${m.rid}:${m.code}`)).toEqual(['h:UNAUTHORIZED']);
  });
});
