/**
 * docs/rest.md and docs/configuration.md against the server: the statuses, headers and bodies the REST
 * page promises (on both stores), and the configuration page's examples and error messages.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const kinds = await storeKinds();

describe.each(kinds)('docs/rest.md (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  const tenant = 'rest-docs';
  beforeAll(async () => {
    srv = await startTestServer(kind);
    token = await srv.token(tenant, 'alice');
  });
  afterAll(async () => srv?.close());

  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${srv.url}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('writes answer the record with ETag and X-Seq; If-None-Match gives 304', async () => {
    const created = await call('PUT', '/v1/records/todos/t1', { title: 'Buy milk', done: false });
    expect(created.status).toBe(201);
    const seq = Number(created.headers.get('x-seq'));
    const updated = await call(
      'PUT',
      '/v1/records/todos/t1',
      { title: 'Buy milk', done: true },
      { 'If-Match': '"1"' },
    );
    expect(updated.status).toBe(200);
    expect(updated.headers.get('etag')).toBe('"2"');
    expect(Number(updated.headers.get('x-seq'))).toBe(seq + 1);
    const weak = await call('PATCH', '/v1/records/todos/t1', { note: 'x' }, { 'If-Match': 'W/"2"' });
    expect(weak.status).toBe(200);
    const notModified = await call('GET', '/v1/records/todos/t1', undefined, { 'If-None-Match': '"3"' });
    expect(notModified.status).toBe(304);
    expect(await notModified.text()).toBe('');
    const badIfMatch = await call('PUT', '/v1/records/todos/t1', {}, { 'If-Match': 'abc' });
    expect(badIfMatch.status).toBe(400);
  });

  it('an Idempotency-Key replays the first answer, a refusal included, with Idempotent-Replayed', async () => {
    const first = await call('PUT', '/v1/records/todos/k1', { title: 'once' }, { 'Idempotency-Key': 'k-1' });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const body = await first.json();
    const replay = await call(
      'PUT',
      '/v1/records/todos/k1',
      { title: 'twice' },
      { 'Idempotency-Key': 'k-1' },
    );
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('x-seq')).toBe(first.headers.get('x-seq'));
    expect(await replay.json()).toEqual(body);

    const refused = await call('DELETE', '/v1/records/todos/nope', undefined, { 'Idempotency-Key': 'k-2' });
    expect(refused.status).toBe(404);
    const refusedAgain = await call('DELETE', '/v1/records/todos/nope', undefined, {
      'Idempotency-Key': 'k-2',
    });
    expect(refusedAgain.status).toBe(404);
    expect(refusedAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(await refusedAgain.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'record does not exist' },
    });
  });

  it('PATCH creates a missing record; DELETE leaves a tombstone that GET hides and listings show on request', async () => {
    const patched = await call(
      'PATCH',
      '/v1/records/todos/p1',
      { title: 'Walk', tags: { a: 1 } },
      {
        'Content-Type': 'application/merge-patch+json',
      },
    );
    expect(patched.status).toBe(201);
    const deleted = await call('DELETE', '/v1/records/todos/p1');
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toMatchObject({
      version: 2,
      deleted: true,
      data: { title: 'Walk', tags: { a: 1 } },
    });
    expect((await call('GET', '/v1/records/todos/p1')).status).toBe(404);
    expect((await call('DELETE', '/v1/records/todos/p1')).status).toBe(404);
    const listed = (await (await call('GET', '/v1/records/todos?includeDeleted=true&title=Walk')).json()) as {
      records: { id: string; deleted: boolean }[];
    };
    expect(listed.records.map((r) => [r.id, r.deleted])).toEqual([['p1', true]]);
    const history = (await (await call('GET', '/v1/records/todos/p1/history')).json()) as {
      versions: { version: number; op: string; data: unknown }[];
    };
    expect(history.versions.map((v) => [v.version, v.op, v.data === null])).toEqual([
      [1, 'patch', false],
      [2, 'delete', true],
    ]);
    const revived = await call('PUT', '/v1/records/todos/p1', { title: 'Walk again' });
    expect(revived.status).toBe(200);
    expect(revived.headers.get('etag')).toBe('"3"');
  });

  it('a strategy refusal is 409 with the current record; a schema failure is 400 with the problems', async () => {
    const settings = await fetch(`${srv.url}/v1/collections/accounts`, {
      method: 'PUT',
      headers: { 'X-Api-Key': srv.adminKey, 'X-Tenant': tenant, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        strategy: 'server_wins',
        schema: { type: 'object', required: ['balance'], properties: { balance: { type: 'number' } } },
      }),
    });
    expect(settings.status).toBe(200);
    expect((await call('PUT', '/v1/collections/accounts', { strategy: 'lww' })).status).toBe(403);
    await call('PUT', '/v1/records/accounts/a1', { balance: 10 });
    await call('PUT', '/v1/records/accounts/a1', { balance: 11 });
    const conflict = await call('PUT', '/v1/records/accounts/a1', { balance: 12 }, { 'If-Match': '"1"' });
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toMatchObject({
      error: { code: 'CONFLICT', details: { record: { id: 'a1', version: 2, data: { balance: 11 } } } },
    });
    const invalid = await call('PUT', '/v1/records/accounts/a2', { balance: 'x' });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toEqual({
      error: {
        code: 'BAD_REQUEST',
        message: 'data does not match the collection schema',
        details: { problems: [{ path: '/balance', message: 'must be number' }] },
      },
    });
  });

  it('events: 201 then 200 duplicate; the log lists record changes and domain events with head', async () => {
    const event = {
      type: 'trade_closed',
      payload: { id: 'T-1' },
      target: 'bfc',
      priority: 5,
      idempotencyKey: 'T-1',
    };
    const first = await call('POST', '/v1/events', event);
    expect(first.status).toBe(201);
    const { seq, eventId } = (await first.json()) as { seq: number; eventId: string };
    const again = await call('POST', '/v1/events', event);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ seq, eventId, duplicate: true });
    const log = (await (await call('GET', `/v1/events?after=${seq - 1}`)).json()) as {
      events: Record<string, unknown>[];
      head: number;
    };
    expect(log.head).toBe(seq);
    expect(log.events).toHaveLength(1);
    expect(log.events[0]).toMatchObject({
      seq,
      kind: 'event',
      type: 'trade_closed',
      target: 'bfc',
      priority: 5,
    });
    const all = (await (await call('GET', '/v1/events?limit=1000')).json()) as { events: { kind: string }[] };
    expect(new Set(all.events.map((e) => e.kind))).toEqual(new Set(['record', 'event']));
  });

  it('authentication: the admin key needs X-Tenant; tenant keys act in their tenant; bodies must be JSON', async () => {
    const noTenant = await fetch(`${srv.url}/v1/records/todos`, { headers: { 'X-Api-Key': srv.adminKey } });
    expect(noTenant.status).toBe(400);
    const created = await fetch(`${srv.url}/v1/tenants/${tenant}/api-keys`, {
      method: 'POST',
      headers: { 'X-Api-Key': srv.adminKey, 'Content-Type': 'application/json' },
      body: JSON.stringify({ label: 'backend' }),
    });
    expect(created.status).toBe(201);
    const { key } = (await created.json()) as { key: string };
    expect(key.startsWith('sb_tenant_')).toBe(true);
    const write = await fetch(`${srv.url}/v1/records/todos/by-key`, {
      method: 'PUT',
      headers: { 'X-Api-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ a: 1 }),
    });
    expect(write.status).toBe(201);
    expect(((await write.json()) as { updatedBy: string }).updatedBy).toMatch(/^apikey:/);
    const otherTenant = await fetch(`${srv.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'X-Api-Key': key, 'Content-Type': 'application/json' },
      body: JSON.stringify({ tenant: 'someone-else', user: 'x' }),
    });
    expect(otherTenant.status).toBe(403);
    const text = await call('PUT', '/v1/records/todos/x', undefined, { 'Content-Type': 'text/plain' });
    expect(text.status).toBe(415);
  });
});

describe('docs/configuration.md', () => {
  const page = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-config-docs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the YAML and JSON examples load', () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(page)![1]!;
    writeFileSync(join(dir, 'syncbridge.yaml'), yaml);
    const fromYaml = loadConfig({ env: {}, file: join(dir, 'syncbridge.yaml') });
    expect(fromYaml.collections.accounts).toMatchObject({ strategy: 'server_wins' });
    expect(fromYaml.allowedOrigins).toEqual(['https://app.example.com']);
    const json = /```json\n([\s\S]*?)```/.exec(page)![1]!;
    writeFileSync(join(dir, 'syncbridge.json'), json);
    expect(loadConfig({ env: {}, file: join(dir, 'syncbridge.json') }).collections.accounts?.strategy).toBe(
      'server_wins',
    );
  });

  it('reports every wrong value as the page shows', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'port: 99999\ncolections: {}\ncollections:\n  todos:\n    strategy: nope\n');
    let problems: string[] = [];
    try {
      loadConfig({ env: { SYNCBRIDGE_HEARTBEAT_MS: 'abc', SYNCBRIDGE_SQLITE_SYNCHRONOUS: 'OFF' }, file });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems.length).toBe(5);
    for (const problem of problems)
      expect(page).toContain(`  - ${problem.replaceAll(file, '/etc/syncbridge.yaml')}`);
  });

  it('an invalid collection schema stops the start', async () => {
    const storage = createTestStorage('sqlite');
    try {
      await expect(
        startTestServer('sqlite', { collections: { x: { schema: { type: 'nope' } } } }, storage),
      ).rejects.toThrow(/collections\.x: schema is not a valid JSON schema/);
    } finally {
      await storage.cleanup();
    }
  });

  it('with an audience configured, the server’s own tokens are accepted', async () => {
    const srv = await startTestServer('sqlite', { jwtAudience: 'my-app' });
    try {
      const res = await fetch(`${srv.url}/v1/records/todos`, {
        headers: { Authorization: `Bearer ${await srv.token('aud', 'alice')}` },
      });
      expect(res.status).toBe(200);
    } finally {
      await srv.close();
    }
  });
});
