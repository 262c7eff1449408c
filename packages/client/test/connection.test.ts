/**
 * The connection state machine against real servers: every transition is emitted with a reason,
 * a dead first URL fails over to the next, a graceful shutdown (1001) and a frozen server (SIGSTOP:
 * the socket stays up but nothing arrives) both lead to a reconnect, a server behind the client's seq
 * makes it reload from a snapshot, an expired token is refreshed
 * through the provider, and a refused token stops the client for good.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestStorage,
  type ServerProcess,
  spawnServerProcess,
  startTestServer,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import { type StatusChange, SyncClient, type SyncClientError } from '../src/index.ts';
import { deadPort, FAST_BACKOFF, mintToken, recordStatus, waitFor } from './helpers.ts';

const steps = (changes: StatusChange[]) => changes.map((c) => `${c.oldState}>${c.newState}:${c.reason}`);

describe('connection lifecycle', () => {
  const servers: TestServer[] = [];
  const procs: ServerProcess[] = [];
  const clients: SyncClient[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const proc of procs.splice(0)) {
      proc.child.kill('SIGCONT');
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
  });

  function client(options: ConstructorParameters<typeof SyncClient>[0]): SyncClient {
    const c = new SyncClient({ backoff: FAST_BACKOFF, ...options });
    clients.push(c);
    return c;
  }

  async function server(overrides = {}): Promise<TestServer> {
    const srv = await startTestServer('sqlite', overrides);
    servers.push(srv);
    return srv;
  }

  it('emits every transition with its reason, from connect to close', async () => {
    const srv = await server();
    const c = client({ url: srv.wsUrl, token: await srv.token('acme', 'alice') });
    const changes = recordStatus(c);
    await c.whenOpen(5000);
    await c.close();
    expect(steps(changes)).toEqual([
      'offline>connecting:connect_called',
      'connecting>syncing:authenticated',
      'syncing>open:synced',
      'open>closed:client_closed',
    ]);
    expect(changes.every((s) => s.url === srv.wsUrl)).toBe(true);
  });

  it('fails over to the next URL when the first one is dead', async () => {
    const srv = await server();
    const dead = `ws://127.0.0.1:${await deadPort()}/v1/realtime`;
    const c = client({ url: [dead, srv.wsUrl], token: await srv.token('acme', 'alice') });
    const changes = recordStatus(c);
    await c.whenOpen(5000);
    expect(changes.map((s) => [s.newState, s.reason, s.url])).toEqual([
      ['connecting', 'connect_called', dead],
      ['offline', 'connect_failed', dead],
      ['connecting', 'reconnect', srv.wsUrl],
      ['syncing', 'authenticated', srv.wsUrl],
      ['open', 'synced', srv.wsUrl],
    ]);
    expect((await c.collection('todos').put('t1', { ok: true })).status).toBe('applied');
  });

  it('reconnects with backoff after a graceful shutdown (1001) and resumes', async () => {
    const first = await server();
    const token = await first.token('acme', 'alice');
    const c = client({ url: first.wsUrl, token });
    const received: number[] = [];
    c.events('ping').subscribe((e) => received.push(e.seq));
    await c.whenOpen(5000);
    const changes = recordStatus(c);
    const port = Number(new URL(first.url).port);
    await first.close({ keepData: true });
    servers.splice(servers.indexOf(first), 1);
    await waitFor(
      () => changes.filter((s) => s.reason === 'connect_failed').length >= 2,
      'two failed attempts',
    );
    await expect(c.publish({ type: 'ping' })).rejects.toMatchObject({ code: 'DISCONNECTED' });
    const second = await server({ port, ...first.storage.config });
    await c.whenOpen(10_000);
    const { seq } = await c.publish({ type: 'ping' });
    await waitFor(() => received.includes(seq), 'the event after the restart');
    expect(changes[0]).toMatchObject({
      oldState: 'open',
      newState: 'offline',
      reason: 'transport_closed',
      closeCode: 1001,
    });
    expect(changes.filter((s) => s.newState === 'connecting').every((s) => s.reason === 'reconnect')).toBe(
      true,
    );
    expect(changes.at(-1)).toMatchObject({ newState: 'open', reason: 'synced' });
    void second;
  });

  it('reloads a channel from a snapshot when the server cannot resume from the client’s seq (reset)', async () => {
    const old = await server();
    const fresh = await server();
    const token = await old.token('acme', 'alice');
    const c = client({ url: [old.wsUrl, fresh.wsUrl], token });
    const todos = c.collection<{ title: string }>('todos');
    const resets: { channel: string; reason: string }[] = [];
    c.on('reset', (r) => resets.push(r));
    todos.subscribe(() => undefined);
    await c.whenOpen(5000);
    await todos.put('t1', { title: 'only on the old server' });
    await todos.put('t2', { title: 'also old' });
    // The client fails over to a server whose log is behind its seq (restored from an older backup, say).
    await old.close();
    servers.splice(servers.indexOf(old), 1);
    await waitFor(() => resets.length === 1 && todos.list().length === 0, 'the reset and the new snapshot');
    expect(resets[0]!.channel).toBe('records:todos');
    await c.whenOpen(5000);
    const res = await fetch(`${fresh.url}/v1/records/todos/t9`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'written on the new server' }),
    });
    expect(res.status).toBe(201);
    // Seq 1 on the new server is below the old seq 2: it still arrives, because the reset lowered the cursor.
    await waitFor(() => todos.get('t9') !== undefined, 'the new server’s first event');
    expect(todos.list().map((r) => r.id)).toEqual(['t9']);
  });

  it('detects a server that stops answering (SIGSTOP) and reconnects once it answers again', async () => {
    const storage = createTestStorage('sqlite');
    const proc = await spawnServerProcess(storage, { SYNCBRIDGE_HEARTBEAT_MS: '200' });
    procs.push(proc);
    try {
      const token = await mintToken(proc.url, 'acme', 'alice');
      const c = client({ url: proc.wsUrl, token, connectTimeoutMs: 500 });
      await c.whenOpen(5000);
      const changes = recordStatus(c);
      proc.child.kill('SIGSTOP');
      await waitFor(() => c.state !== 'open', 'the client to give up on the frozen connection', 5000);
      expect(['no_message_timeout', 'pong_timeout']).toContain(changes[0]!.reason);
      expect(changes[0]).toMatchObject({ oldState: 'open', newState: 'offline' });
      await waitFor(
        () => changes.some((s) => s.reason === 'connect_timeout'),
        'an attempt to time out',
        5000,
      );
      proc.child.kill('SIGCONT');
      await c.whenOpen(10_000);
      expect((await c.collection('todos').put('t1', { ok: true })).status).toBe('applied');
    } finally {
      proc.child.kill('SIGCONT');
      proc.child.kill('SIGKILL');
      await proc.exited;
      await storage.cleanup();
    }
  });

  it('stops for good when the server refuses the token', async () => {
    const srv = await server();
    const c = client({ url: srv.wsUrl, token: 'not-a-token' });
    const changes = recordStatus(c);
    const errors: SyncClientError[] = [];
    c.on('error', (e) => errors.push(e));
    const write = c.collection('todos').put('t1', { a: 1 });
    await waitFor(() => c.state === 'closed', 'the client to stop');
    expect(changes.at(-1)).toMatchObject({
      newState: 'closed',
      reason: 'unauthorized',
      closeCode: 1008,
      message: 'invalid token',
    });
    expect(errors).toMatchObject([{ code: 'UNAUTHORIZED' }]);
    await expect(write).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(c.whenOpen()).rejects.toMatchObject({ code: 'CLOSED' });
    await new Promise((r) => setTimeout(r, 200));
    expect(changes.filter((s) => s.newState === 'connecting')).toHaveLength(1);
  });

  it('fetches a fresh token from the provider when the server says it expired', async () => {
    const srv = await server();
    let calls = 0;
    const c = client({
      url: srv.wsUrl,
      token: async () => srv.token('acme', 'alice', { ttlSeconds: ++calls === 1 ? 1 : 3600 }),
    });
    const changes = recordStatus(c);
    await c.whenOpen(5000);
    await waitFor(() => changes.some((s) => s.reason === 'token_expired'), 'the token to expire', 5000);
    await c.whenOpen(5000);
    expect(calls).toBe(2);
    expect(steps(changes).slice(3)).toEqual([
      'open>offline:token_expired',
      'offline>connecting:reconnect',
      'connecting>syncing:authenticated',
      'syncing>open:synced',
    ]);
    expect((await c.collection('todos').put('t1', { ok: true })).status).toBe('applied');
  });

  it('asks the provider once more after a refused token, then gives up', async () => {
    const srv = await server();
    let calls = 0;
    const c = client({
      url: srv.wsUrl,
      token: () => {
        calls += 1;
        return 'still-not-a-token';
      },
    });
    const changes = recordStatus(c);
    await waitFor(() => c.state === 'closed', 'the client to stop');
    expect(calls).toBe(2);
    expect(steps(changes)).toEqual([
      'offline>connecting:connect_called',
      'connecting>offline:token_refresh',
      'offline>connecting:reconnect',
      'connecting>closed:unauthorized',
    ]);
  });
});
