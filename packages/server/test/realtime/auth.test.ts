/**
 * Authentication of realtime connections, as a client sees it: a token at the upgrade (query or
 * header) gets `welcome` at once; a bad one is refused with HTTP 401 before the upgrade; without a token
 * the first message must be a valid `hello` in time, anything else ends the connection with 1008.
 * Forged tokens (tampered, expired, `alg: none`, another secret) are refused on both paths.
 */
import { createHmac } from 'node:crypto';
import { CLOSE_CODES } from '@syncbridge/protocol';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TokenService } from '../../src/auth/tokens.ts';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  TEST_JWT_SECRET,
  type TestServer,
} from '../helpers/server.ts';
import { TestWsClient, upgradeRefusal } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The forged tokens a client could try, each with what makes it invalid. */
async function forgedTokens(valid: string): Promise<Array<[string, string]>> {
  const [header, payload, signature] = valid.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  const secret = new TextEncoder().encode(TEST_JWT_SECRET);
  const expired = await new SignJWT({ tenant: 'acme', roles: [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('alice')
    .setIssuer('syncbridge')
    .setIssuedAt(now - 120)
    .setExpirationTime(now - 60)
    .sign(secret);
  const otherSecret = (
    await new TokenService({ jwtSecret: 'another-secret-0123456789abcdef0123456789abcdef' }).mint({
      tenant: 'acme',
      user: 'alice',
    })
  ).token;
  const wrongIssuer = await new SignJWT({ tenant: 'acme', roles: [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('alice')
    .setIssuer('someone-else')
    .setExpirationTime(now + 600)
    .sign(secret);
  const noTenant = await new SignJWT({ roles: [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('alice')
    .setIssuer('syncbridge')
    .setExpirationTime(now + 600)
    .sign(secret);
  const notYetValid = await new SignJWT({ tenant: 'acme', roles: [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject('alice')
    .setIssuer('syncbridge')
    .setNotBefore(now + 600)
    .setExpirationTime(now + 1200)
    .sign(secret);
  // Signed correctly by hand: what a verifier must refuse for its content alone.
  const hand = (h: unknown, p: unknown) => {
    const input = `${b64url(h)}.${b64url(p)}`;
    return `${input}.${createHmac('sha256', TEST_JWT_SECRET).update(input).digest('base64url')}`;
  };
  return [
    ['not valid yet (nbf in the future)', notYetValid],
    ['an unknown critical header', hand({ alg: 'HS256', crit: ['exp2'], exp2: 1 }, claims)],
    ['a payload that is a list', hand({ alg: 'HS256' }, [claims])],
    ['exp that is not a number', hand({ alg: 'HS256' }, { ...claims, exp: String(now + 600) })],
    ['tampered payload (tenant changed)', `${header}.${b64url({ ...claims, tenant: 'other' })}.${signature}`],
    ['tampered payload (user changed)', `${header}.${b64url({ ...claims, sub: 'root' })}.${signature}`],
    ['tampered signature', `${header}.${payload}.${signature.slice(0, -4)}AAAA`],
    ['expired', expired],
    ['alg none', `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...claims, tenant: 'other' })}.`],
    ['alg none, original payload', `${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.`],
    ['signed with another secret', otherSecret],
    ['wrong issuer', wrongIssuer],
    ['no tenant claim', noTenant],
    ['not a JWT at all', 'not-a-token'],
    ['garbage segments', 'a.b.c'],
  ];
}

describe.each(kinds)('realtime authentication (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  beforeAll(async () => {
    srv = await startTestServer(kind, { helloTimeoutMs: 300 });
    token = await srv.token('acme', 'alice', { roles: ['reader'] });
  });
  afterAll(async () => srv?.close());

  function expectWelcome(m: Record<string, unknown>): void {
    expect(m).toMatchObject({ type: 'welcome', tenant: 'acme', user: 'alice', heartbeatMs: 25_000 });
    expect(typeof m.connectionId).toBe('string');
    expect((m.connectionId as string).length).toBeGreaterThan(0);
    const serverTime = Date.parse(m.serverTime as string);
    expect(Number.isNaN(serverTime)).toBe(false);
    expect(Math.abs(serverTime - Date.now())).toBeLessThan(60_000);
  }

  it('sends welcome at once for a token in ?token=', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, token);
    expectWelcome(client.messages[0]!);
    const pong = await client.request({ type: 'ping' });
    expect(pong.type).toBe('pong');
    await client.close();
  });

  it('sends welcome at once for a token in Authorization: Bearer', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, undefined, { Authorization: `Bearer ${token}` });
    const welcome = await client.waitFor((m) => m.type === 'welcome');
    expectWelcome(welcome);
    expect((await client.request({ type: 'ping' })).type).toBe('pong');
    await client.close();
  });

  it('gives every connection its own connectionId', async () => {
    const a = await TestWsClient.connect(srv.wsUrl, token);
    const b = await TestWsClient.connect(srv.wsUrl, token);
    expect(a.messages[0]!.connectionId).not.toBe(b.messages[0]!.connectionId);
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a bad token at the upgrade with HTTP 401 and a JSON error, before any upgrade', async () => {
    const refusal = await upgradeRefusal(`${srv.wsUrl}?token=not-a-token`);
    expect(refusal?.status).toBe(401);
    expect(JSON.parse(refusal!.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    const header = await upgradeRefusal(srv.wsUrl, { Authorization: 'Bearer not-a-token' });
    expect(header?.status).toBe(401);
  });

  it('waits for hello when no token came with the upgrade, and answers it with welcome and the rid', async () => {
    const client = await TestWsClient.connect(srv.wsUrl);
    await new Promise((r) => setTimeout(r, 50));
    expect(client.messages).toEqual([]);
    const welcome = await client.request({ type: 'hello', token, protocol: 1 });
    expectWelcome(welcome);
    expect(welcome.rid).toBe('r1');
    expect((await client.request({ type: 'ping' })).type).toBe('pong');
    await client.close();
  });

  it('answers a bad token in hello with UNAUTHORIZED (and the rid), then closes with 1008', async () => {
    const client = await TestWsClient.connect(srv.wsUrl);
    client.send({ type: 'hello', rid: 'h1', token: 'not-a-token' });
    const error = await client.waitFor((m) => m.type === 'error');
    expect(error).toMatchObject({ type: 'error', rid: 'h1', code: 'UNAUTHORIZED' });
    expect(await client.waitForClose()).toBe(CLOSE_CODES.POLICY);
  });

  it.each([
    ['subscribe', { type: 'subscribe', rid: 'x1', channel: 'records:todos', since: 0 }],
    ['ping', { type: 'ping', rid: 'x1' }],
    ['ack', { type: 'ack', rid: 'x1', seq: 1 }],
    ['publish', { type: 'publish', rid: 'x1', event: { type: 'sneaky', payload: {} } }],
  ])('refuses %s as a first message with UNAUTHORIZED and close 1008', async (_name, message) => {
    const client = await TestWsClient.connect(srv.wsUrl);
    client.send(message);
    const error = await client.waitFor((m) => m.type === 'error');
    expect(error).toMatchObject({ rid: 'x1', code: 'UNAUTHORIZED' });
    expect(await client.waitForClose()).toBe(CLOSE_CODES.POLICY);
    expect(client.messages.filter((m) => m.type !== 'error')).toEqual([]);
  });

  it('does not apply a mutation sent before hello', async () => {
    const client = await TestWsClient.connect(srv.wsUrl);
    client.send({
      type: 'mutate',
      rid: 'x1',
      mutations: [{ mid: 'pre-hello', collection: 'secrets', id: 's1', op: 'put', data: { x: 1 } }],
    });
    expect(await client.waitFor((m) => m.type === 'error')).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(await client.waitForClose()).toBe(CLOSE_CODES.POLICY);
    const res = await fetch(`${srv.url}/v1/records/secrets/s1`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(404);
  });

  it('keeps the identity of a connection: a second hello for another user is FORBIDDEN', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, token);
    const bob = await srv.token('acme', 'bob');
    expect(await client.request({ type: 'hello', token: bob })).toMatchObject({
      type: 'error',
      code: 'FORBIDDEN',
    });
    const otherTenant = await srv.token('globex', 'alice');
    expect(await client.request({ type: 'hello', token: otherTenant })).toMatchObject({ code: 'FORBIDDEN' });
    // Still alice of acme: her own writes land in acme under her name.
    const reply = await client.request({
      type: 'mutate',
      mutations: [{ mid: 'who-am-i', collection: 'whoami', id: 'x', op: 'put', data: {} }],
    });
    expect((reply.results as Array<{ record: { updatedBy: string } }>)[0]!.record.updatedBy).toBe('alice');
    // The same user may renew the token on the connection.
    const renewed = await srv.token('acme', 'alice');
    expect(await client.request({ type: 'hello', token: renewed })).toMatchObject({
      type: 'welcome',
      tenant: 'acme',
      user: 'alice',
    });
    await client.close();
  });

  it('closes a connection that sends no hello within helloTimeoutMs, and not one that did', async () => {
    const client = await TestWsClient.connect(srv.wsUrl);
    const greeted = await TestWsClient.connect(srv.wsUrl);
    expect((await greeted.request({ type: 'hello', token })).type).toBe('welcome');
    const code = await client.waitForClose(3000);
    expect(code).toBe(CLOSE_CODES.HELLO_TIMEOUT);
    expect(client.messages.filter((m) => m.type !== 'error')).toEqual([]);
    expect(client.messages.every((m) => m.code === 'UNAUTHORIZED')).toBe(true);
    // The one that said hello in time is still there after the sweep that closed the other.
    expect((await greeted.request({ type: 'ping' })).type).toBe('pong');
    expect(greeted.closeCode).toBeNull();
    await greeted.close();
  });

  it('refuses every forged token at the upgrade (401) and in hello (UNAUTHORIZED, 1008)', async () => {
    for (const [what, forged] of await forgedTokens(token)) {
      const refusal = await upgradeRefusal(`${srv.wsUrl}?token=${encodeURIComponent(forged)}`);
      expect(refusal?.status, what).toBe(401);
      expect(JSON.parse(refusal!.body).error.code, what).toBe('UNAUTHORIZED');
      const viaHeader = await upgradeRefusal(srv.wsUrl, { Authorization: `Bearer ${forged}` });
      expect(viaHeader?.status, what).toBe(401);

      const client = await TestWsClient.connect(srv.wsUrl);
      client.send({ type: 'hello', rid: 'h', token: forged });
      const error = await client.waitFor((m) => m.type === 'error');
      expect(error, what).toMatchObject({ rid: 'h', code: 'UNAUTHORIZED' });
      expect(await client.waitForClose(), what).toBe(CLOSE_CODES.POLICY);
      expect(
        client.messages.some((m) => m.type === 'welcome'),
        what,
      ).toBe(false);
    }
  });

  it('says "token expired" for an expired token', async () => {
    const [, expired] = (await forgedTokens(token)).find(([what]) => what === 'expired')!;
    const refusal = await upgradeRefusal(`${srv.wsUrl}?token=${expired}`);
    expect(JSON.parse(refusal!.body).error.message).toMatch(/expired/);
  });

  it('closes a connection once its token expires', async () => {
    // ttlSeconds: 2 rather than 1: exp is whole seconds, and the token must still be valid at the upgrade.
    const shortLived = await srv.token('acme', 'alice', { ttlSeconds: 2 });
    const client = await TestWsClient.connect(srv.wsUrl, shortLived);
    expectWelcome(client.messages[0]!);
    const code = await client.waitForClose(4000);
    expect(code).toBe(CLOSE_CODES.POLICY);
    expect(client.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'UNAUTHORIZED' });
    // The same token is refused at a new upgrade now.
    expect((await upgradeRefusal(`${srv.wsUrl}?token=${shortLived}`))?.status).toBe(401);
  });
});

describe.each(kinds)('realtime origin allow-list (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  beforeAll(async () => {
    srv = await startTestServer(kind, { allowedOrigins: ['https://app.example'] });
    token = await srv.token('acme', 'alice');
  });
  afterAll(async () => srv?.close());

  it('refuses an upgrade from an origin not on the list with 403, even with a valid token', async () => {
    const refusal = await upgradeRefusal(`${srv.wsUrl}?token=${token}`, { Origin: 'https://evil.example' });
    expect(refusal?.status).toBe(403);
    expect(JSON.parse(refusal!.body)).toMatchObject({ error: { code: 'FORBIDDEN' } });
    const lookalike = await upgradeRefusal(`${srv.wsUrl}?token=${token}`, {
      Origin: 'https://app.example.evil.example',
    });
    expect(lookalike?.status).toBe(403);
  });

  it('accepts the allowed origin', async () => {
    const client = await TestWsClient.connect(srv.wsUrl, token, { Origin: 'https://app.example' });
    expect(client.messages[0]).toMatchObject({ type: 'welcome', tenant: 'acme' });
    await client.close();
  });

  it('accepts a non-browser client that sends no Origin', async () => {
    const ws = new WebSocket(`${srv.wsUrl}?token=${token}`);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(d.toString()));
      ws.once('error', reject);
    });
    expect(JSON.parse(first).type).toBe('welcome');
    ws.close();
  });
});
