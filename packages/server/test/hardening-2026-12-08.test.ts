/**
 * Hostile input found by an audit of 2026-12-08, as a client sees it. Realtime: a frame refused on a
 * connection that has not authenticated (a `hello` with an oversized token, a `protocol` below 1,
 * invalid JSON, a binary or oversized frame) ends it at once with 1008 instead of leaving it open until
 * the hello timeout; `protocol` above what the server speaks is answered with the highest it speaks.
 * Credentials: two that differ (Bearer and X-Api-Key, `?token=`/`?access_token=` and a different
 * Bearer) are refused 401 on every route and transport. Sockets: a peer that never answers the close
 * handshake is dropped, and a request body sent a byte at a time gets 408.
 */
import net from 'node:net';
import { CLOSE_CODES, MAX_TOKEN_LENGTH, PROTOCOL_VERSION } from '@syncbridge/protocol';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from './helpers/server.ts';
import { TestSseClient } from './helpers/sse-client.ts';
import { TestWsClient, upgradeRefusal } from './helpers/ws-client.ts';

let srv: TestServer;
let alice: string;
let bob: string;

beforeAll(async () => {
  // A hello timeout far past the test timeout: a connection left open until it fails the test.
  srv = await startTestServer('sqlite', {
    helloTimeoutMs: 120_000,
    headersTimeoutMs: 500,
    requestTimeoutMs: 1_000,
  });
  alice = await srv.token('ta', 'alice', { roles: ['admin'] });
  bob = await srv.token('tb', 'bob', { roles: ['admin'] });
});
afterAll(async () => {
  await srv?.close();
});

/** Opens a connection without a token, sends `frame`, and returns what came back and the close code. */
async function beforeHello(frame: string | Buffer): Promise<{ code: number; errors: unknown[] }> {
  const client = await TestWsClient.connect(srv.wsUrl);
  client.ws.send(frame);
  const code = await client.waitForClose(10_000);
  return { code, errors: client.messages.filter((m) => m.type === 'error') };
}

describe('a frame refused before authentication ends the connection', () => {
  it('a hello whose token is over the limit: BAD_REQUEST, then close 1008', async () => {
    const { code, errors } = await beforeHello(
      JSON.stringify({ type: 'hello', rid: 'h', token: 'x'.repeat(MAX_TOKEN_LENGTH + 1) }),
    );
    expect(errors).toEqual([expect.objectContaining({ code: 'BAD_REQUEST', rid: 'h' })]);
    expect(code).toBe(CLOSE_CODES.POLICY);
  });

  it('a bad token of 9 KB in hello: UNAUTHORIZED, then close 1008', async () => {
    const { code, errors } = await beforeHello(
      JSON.stringify({ type: 'hello', rid: 'h', token: 'x'.repeat(9000) }),
    );
    expect(errors).toEqual([expect.objectContaining({ code: 'UNAUTHORIZED', rid: 'h' })]);
    expect(code).toBe(CLOSE_CODES.POLICY);
  });

  it('invalid JSON, a binary frame and an unknown type: each answered, then close 1008', async () => {
    for (const frame of ['{{{', Buffer.from([1, 2, 3]), JSON.stringify({ type: 'nope' })]) {
      const { code, errors } = await beforeHello(frame);
      expect(errors).toEqual([expect.objectContaining({ code: 'BAD_REQUEST' })]);
      expect(code).toBe(CLOSE_CODES.POLICY);
    }
  });

  it('an oversized frame: PAYLOAD_TOO_LARGE, then close 1008', async () => {
    const { code, errors } = await beforeHello(JSON.stringify({ type: 'ping', pad: 'x'.repeat(1_100_000) }));
    expect(errors).toEqual([expect.objectContaining({ code: 'PAYLOAD_TOO_LARGE' })]);
    expect(code).toBe(CLOSE_CODES.POLICY);
  });

  it('a hello refused for something other than its token (a device without deviceId) closes too', async () => {
    const hello = { type: 'hello', rid: 'h', token: alice, device: { type: 'desktop', name: 'x' } };
    const { code, errors } = await beforeHello(JSON.stringify(hello));
    expect(errors).toEqual([expect.objectContaining({ code: 'BAD_REQUEST', rid: 'h' })]);
    expect(code).toBe(CLOSE_CODES.POLICY);
  });

  it('once authenticated, a bad frame is answered and the connection stays', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, alice);
    client.ws.send('{{{');
    client.ws.send(Buffer.from([1]));
    await client.waitFor((m) => m.type === 'error' && m.message.includes('binary'));
    expect((await client.request({ type: 'ping' })).type).toBe('pong');
    await client.close();
  });
});

describe('protocol negotiation in hello', () => {
  it('a protocol above the server’s is answered with the highest it speaks', async () => {
    const client = await TestWsClient.connect(srv.wsUrl);
    const welcome = await client.request({ type: 'hello', token: alice, protocol: 99 });
    expect(welcome).toMatchObject({ type: 'welcome', protocol: PROTOCOL_VERSION });
    await client.close();
  });

  it('a protocol below 1 is refused BAD_REQUEST with close 1008', async () => {
    for (const protocol of [0, -1]) {
      const { code, errors } = await beforeHello(JSON.stringify({ type: 'hello', token: alice, protocol }));
      expect(errors).toEqual([
        expect.objectContaining({ code: 'BAD_REQUEST', message: expect.stringContaining('/protocol') }),
      ]);
      expect(code).toBe(CLOSE_CODES.POLICY);
    }
  });
});

describe('token size', () => {
  it('a token minted with the most claims it may carry works in hello, as over REST', async () => {
    const claims = { locations: Array.from({ length: 880 }, (_, i) => `wh-${i}`) };
    expect(JSON.stringify(claims).length).toBeGreaterThan(7800);
    const res = await fetch(`${srv.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'x-api-key': srv.adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: 'ta', user: 'carol', claims }),
    });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    expect(token.length).toBeGreaterThan(8192);
    const client = await TestWsClient.connect(srv.wsUrl);
    expect(await client.request({ type: 'hello', token })).toMatchObject({ type: 'welcome', user: 'carol' });
    await client.close();
    const rest = await fetch(`${srv.url}/v1/records/notes/none`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(rest.status).toBe(404);
  });

  it('a token without an expiry is refused on every path', async () => {
    const forever = await new SignJWT({ tenant: 'ta', roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('alice')
      .setIssuer('syncbridge')
      .sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const res = await call('/v1/records/notes/none', { authorization: `Bearer ${forever}` });
    expect(res).toMatchObject({ status: 401, code: 'UNAUTHORIZED', message: 'token has no expiry (exp)' });
    expect((await upgradeRefusal(`${srv.wsUrl}?token=${forever}`))?.status).toBe(401);
    const { code, errors } = await beforeHello(JSON.stringify({ type: 'hello', token: forever }));
    expect(errors).toEqual([expect.objectContaining({ code: 'UNAUTHORIZED' })]);
    expect(code).toBe(CLOSE_CODES.POLICY);
  });

  it('a token naming a user longer than POST /v1/auth/token takes is refused', async () => {
    const long = await srv.server.tokens.mint({ tenant: 'ta', user: 'u'.repeat(300) });
    const res = await call('/v1/records/notes/none', { authorization: `Bearer ${long.token}` });
    expect(res).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });
});

/** A REST call with the given headers: status and error code. */
async function call(path: string, headers: Record<string, string>, init: RequestInit = {}) {
  const res = await fetch(`${srv.url}${path}`, { ...init, headers });
  const body = (await res.json()) as { error?: { code: string; message: string } };
  return { status: res.status, code: body.error?.code, message: body.error?.message };
}

describe('two credentials that differ are refused', () => {
  beforeAll(async () => {
    const res = await fetch(`${srv.url}/v1/records/notes/n1`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'tenant B' }),
    });
    expect(res.status).toBe(201);
  });

  it('REST: a valid Bearer with a wrong X-Api-Key, or with the admin key naming another tenant', async () => {
    const wrongKey = await call('/v1/records/notes/n1', {
      authorization: `Bearer ${bob}`,
      'x-api-key': 'not-a-key',
    });
    expect(wrongKey).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    const crossing = await call('/v1/records/notes/n1', {
      authorization: `Bearer ${alice}`,
      'x-api-key': srv.adminKey,
      'x-tenant': 'tb',
    });
    expect(crossing).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    // Each one alone still works.
    expect((await call('/v1/records/notes/n1', { authorization: `Bearer ${alice}` })).status).toBe(404);
    const byKey = await fetch(`${srv.url}/v1/records/notes/n1`, {
      headers: { 'x-api-key': srv.adminKey, 'x-tenant': 'tb' },
    });
    expect(byKey.status).toBe(200);
  });

  it('X-Tenant naming another tenant than a token or tenant key is refused, nothing written', async () => {
    const created = await fetch(`${srv.url}/v1/tenants/ta/api-keys`, {
      method: 'POST',
      headers: { 'x-api-key': srv.adminKey, 'content-type': 'application/json' },
      body: '{}',
    });
    const { key } = (await created.json()) as { key: string };
    const json = { 'content-type': 'application/json', 'x-tenant': 'tb' };
    const credentials: Record<string, string>[] = [
      { 'x-api-key': key },
      { authorization: `Bearer ${alice}` },
    ];
    for (const credential of credentials) {
      const res = await call(
        '/v1/records/misdirected/m1',
        { ...credential, ...json },
        { method: 'PUT', body: JSON.stringify({ meant: 'tb' }) },
      );
      expect(res).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    }
    const sse = await call('/v1/stream?channels=records:notes', {
      authorization: `Bearer ${alice}`,
      'x-tenant': 'tb',
    });
    expect(sse).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect((await call('/v1/records/misdirected/m1', { authorization: `Bearer ${alice}` })).status).toBe(404);
    // Naming the credential's own tenant is fine.
    const own = await fetch(`${srv.url}/v1/records/notes/none`, {
      headers: { authorization: `Bearer ${alice}`, 'x-tenant': 'ta' },
    });
    expect(own.status).toBe(404);
  });

  it('REST: an Authorization that is not Bearer is refused even with a valid key', async () => {
    const res = await call('/v1/records/notes/n1', {
      authorization: 'Basic YTpi',
      'x-api-key': srv.adminKey,
      'x-tenant': 'tb',
    });
    expect(res).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });

  it('POST /v1/auth/token: the admin key with a Bearer token beside it', async () => {
    const res = await call(
      '/v1/auth/token',
      { 'x-api-key': srv.adminKey, authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      { method: 'POST', body: JSON.stringify({ tenant: 'tb', user: 'mallory' }) },
    );
    expect(res).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
  });

  it('routes only a key may call check it before the body: no key, any body, is 401', async () => {
    for (const path of ['/v1/auth/token', '/v1/tenants/tb/api-keys']) {
      for (const headers of [{}, { 'x-api-key': 'not-a-key' }] as Record<string, string>[]) {
        const res = await call(
          path,
          { ...headers, 'content-type': 'application/json' },
          { method: 'POST', body: '[1]' },
        );
        expect(res, path).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
      }
    }
  });

  it('GET /metrics: the admin key and a metrics token together', async () => {
    const res = await fetch(`${srv.url}/metrics`, {
      headers: { 'x-api-key': srv.adminKey, authorization: 'Bearer whatever' },
    });
    expect(res.status).toBe(401);
  });

  it('SSE: ?access_token= for one tenant and a Bearer for another; a key beside a Bearer', async () => {
    const two = await call(`/v1/stream?channels=records:notes&access_token=${alice}`, {
      authorization: `Bearer ${bob}`,
    });
    expect(two).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    const keyAndToken = await call('/v1/stream?channels=records:notes', {
      authorization: `Bearer ${bob}`,
      'x-api-key': 'not-a-key',
    });
    expect(keyAndToken).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    // The same token in both places is one credential.
    const same = await TestSseClient.open(srv.url, `channels=records:notes&access_token=${bob}`, {
      authorization: `Bearer ${bob}`,
    });
    expect(same.status).toBe(200);
    await same.waitFor((e) => e.data.type === 'welcome');
    same.close();
  });

  it('WebSocket upgrade: ?token= and a different Bearer, or two different ?token=', async () => {
    const two = await upgradeRefusal(`${srv.wsUrl}?token=${alice}`, { authorization: `Bearer ${bob}` });
    expect(two?.status).toBe(401);
    expect(JSON.parse(two!.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    const twice = await upgradeRefusal(`${srv.wsUrl}?token=${alice}&token=${bob}`);
    expect(twice?.status).toBe(401);
    const same = await TestWsClient.connect(srv.wsUrl, bob, { authorization: `Bearer ${bob}` });
    expect(same.messages[0]).toMatchObject({ type: 'welcome', tenant: 'tb' });
    await same.close();
  });
});

/** Upgrades a raw socket to a WebSocket and never answers anything; resolves when the server drops it. */
function silentPeer(): Promise<{ sawUpgrade: boolean }> {
  const { port } = new URL(srv.url);
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect(Number(port), '127.0.0.1', () => {
      socket.write(
        'GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' +
          // A masked text frame "{": invalid JSON before hello, so the server closes at once.
          String.fromCharCode(0x81, 0x81, 0, 0, 0, 0, 0x7b),
        'latin1',
      );
    });
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ sawUpgrade: text.startsWith('HTTP/1.1 101') }));
  });
}

describe('sockets that do not play along', () => {
  it('a peer that never answers the close handshake is dropped (not held 30 s)', async () => {
    const { sawUpgrade } = await silentPeer();
    expect(sawUpgrade).toBe(true);
  }, 15_000);

  it('a request body sent a byte at a time gets 408 and the socket is closed', async () => {
    const { port } = new URL(srv.url);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      const socket = net.connect(Number(port), '127.0.0.1', () => {
        socket.write(
          'POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            `X-Api-Key: ${srv.adminKey}\r\n` +
            'Content-Length: 1000\r\n\r\n{"tenant":"',
        );
      });
      const drip = setInterval(() => socket.write('a'), 200);
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(drip);
        resolve(text);
      });
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  }, 15_000);

  it('the request timeout leaves WebSocket connections and SSE streams open', async () => {
    const ws = await TestWsClient.connect(srv.wsUrl, alice);
    const sse = await TestSseClient.open(srv.url, 'channels=records:notes', {
      authorization: `Bearer ${alice}`,
    });
    await sse.waitFor((e) => e.data.type === 'welcome');
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await ws.request({ type: 'ping' })).type).toBe('pong');
    expect(ws.ws.readyState).toBe(WebSocket.OPEN);
    const put = await fetch(`${srv.url}/v1/records/notes/n2`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'after the timeout' }),
    });
    expect(put.status).toBe(201);
    await sse.waitFor((e) => e.data.type === 'event' && e.data.id === 'n2');
    sse.close();
    await ws.close();
  }, 20_000);
});
