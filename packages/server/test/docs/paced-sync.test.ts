/**
 * docs/protocol.md's "Paced sync" section against the server: the page's `hello` (budget, priorities,
 * conflation) passes the server's validation and is the hello a device sends here, the field bounds the
 * page gives are those REST enforces, and with it a device that missed many changes gets what the page
 * promises: the higher-priority collection's backlog first, one `conflated` frame per channel shaped as
 * the page shows it, only each record's latest change, and an exact resume from its cursor.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClientFrame } from '../../src/realtime/validate.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { rest } from '../http/rest.ts';

const ROOT = resolve(import.meta.dirname, '../../../..');
const PAGE = readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8');
const kinds = await storeKinds();

type Msg = Record<string, unknown>;

/** The json blocks of the page's paced-sync section, parsed whole. */
function sectionFrames(): Msg[] {
  const start = PAGE.indexOf('### Paced sync');
  expect(start, 'the paced sync section of docs/protocol.md').toBeGreaterThan(0);
  const end = PAGE.indexOf('\n## ', start);
  const section = PAGE.slice(start, end);
  return [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Msg);
}

const frames = sectionFrames();
const HELLO = frames.find((f) => f.type === 'hello')!;
const CONFLATED = frames.find((f) => f.type === 'conflated')!;

/** The record events of a client, `events` batches unpacked, in arrival order. */
function recordEvents(client: TestWsClient): Msg[] {
  const out: Msg[] = [];
  for (const m of client.messages as Msg[]) {
    if (m.type === 'event') out.push(m);
    if (m.type === 'events') for (const e of m.events as Msg[]) out.push({ ...e, channel: m.channel });
  }
  return out;
}

async function until(test: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('docs/protocol.md paced sync examples', () => {
  it('shows a hello and a conflated frame, and the hello passes the server’s validation', () => {
    expect(frames.map((f) => f.type)).toEqual(['hello', 'conflated']);
    const parsed = parseClientFrame(JSON.stringify({ ...HELLO, token: 'a-token' }));
    expect(parsed.ok, parsed.ok ? '' : parsed.error.message).toBe(true);
    expect(HELLO.device).toEqual({
      bandwidth: { bytesPerSecond: 65536 },
      priorities: { settings: 10, documents: 1 },
      conflate: true,
    });
    expect(Object.keys(CONFLATED).sort()).toEqual(['after', 'channel', 'skipped', 'through', 'type']);
  });
});

describe.each(kinds)('docs/protocol.md paced sync behaviours (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('refuses what the page says is out of bounds: a budget under 1024 or over 10^9, a priority past ±1000', async () => {
    const tenant = `paced-doc-bounds-${kind}`;
    const token = await srv.token(tenant, 'alice');
    const register = (body: Msg) => rest(srv.url, 'POST', '/v1/devices', { token, json: body });
    for (const bytesPerSecond of [1023, 1_000_000_001]) {
      const res = await register({ id: 'phone', bandwidth: { bytesPerSecond } });
      expect(res.status, `${bytesPerSecond}: ${res.text}`).toBe(400);
      expect(res.body.error.code).toBe('BAD_REQUEST');
    }
    expect((await register({ id: 'phone', priorities: { documents: 1001 } })).status).toBe(400);
    const ok = await register({ id: 'phone', ...(HELLO.device as Msg) });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body).toMatchObject(HELLO.device as Msg);
    // `null` clears the budget.
    const cleared = await rest(srv.url, 'PATCH', '/v1/devices/phone', { token, json: { bandwidth: null } });
    expect(cleared.status, cleared.text).toBe(200);
    expect(cleared.body.bandwidth ?? null).toBeNull();
  });

  it('the page’s hello: settings backlog first, one conflated frame per channel as shown, latest versions, exact resume', async () => {
    const tenant = `paced-doc-${kind}`;
    const token = await srv.token(tenant, 'alice');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'seed', collection: 'seed', id: 's', op: 'put', data: {} }],
    });
    const start = await srv.server.store.headSeq(tenant);
    // Offline, the device misses 5 versions of 4 documents, then 3 versions of 2 settings.
    const mutations: Msg[] = [];
    for (let v = 0; v < 5; v++)
      for (let d = 0; d < 4; d++)
        mutations.push({
          mid: `d${d}v${v}`,
          collection: 'documents',
          id: `doc-${d}`,
          op: 'put',
          data: { v },
        });
    for (let v = 0; v < 3; v++)
      for (let s = 0; s < 2; s++)
        mutations.push({ mid: `s${s}v${v}`, collection: 'settings', id: `set-${s}`, op: 'put', data: { v } });
    const written = await writer.request({ type: 'mutate', mutations }, 20_000);
    expect((written.results as Msg[]).every((r) => r.status === 'applied')).toBe(true);
    const head = await srv.server.store.headSeq(tenant);

    const device = await TestWsClient.connect(srv.wsUrl);
    const welcome = await device.request({ ...HELLO, token });
    expect(welcome.type).toBe('welcome');
    // Subscribed at once, as the page advises on reconnect: both frames in one write, documents first.
    const socket = (device.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.cork();
    device.send({ type: 'subscribe', channel: 'records:documents', since: start, rid: 's1' });
    device.send({ type: 'subscribe', channel: 'records:settings', since: start, rid: 's2' });
    socket.uncork();
    await until(() => recordEvents(device).length >= 6, 'the conflated backlogs');

    const markers = (device.messages as Msg[]).filter((m) => m.type === 'conflated');
    expect(markers.map((m) => Object.keys(m).sort())).toEqual([
      Object.keys(CONFLATED).sort(),
      Object.keys(CONFLATED).sort(),
    ]);
    expect(markers.map((m) => [m.channel, m.after, m.skipped]).sort()).toEqual([
      ['records:documents', start, 16],
      ['records:settings', start, 4],
    ]);
    for (const m of markers) expect(m.through).toBe(head);

    const events = recordEvents(device);
    expect(events).toHaveLength(6);
    // Priorities order channels: every settings event before the first documents event.
    expect(events.map((e) => e.channel)).toEqual([
      'records:settings',
      'records:settings',
      'records:documents',
      'records:documents',
      'records:documents',
      'records:documents',
    ]);
    // Only each record's latest change, in seq order within each channel.
    expect(events.map((e) => [e.id, (e.data as Msg).v])).toEqual([
      ['set-0', 2],
      ['set-1', 2],
      ['doc-0', 4],
      ['doc-1', 4],
      ['doc-2', 4],
      ['doc-3', 4],
    ]);
    for (const channel of ['records:settings', 'records:documents']) {
      const seqs = events.filter((e) => e.channel === channel).map((e) => e.seq as number);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    }
    await device.close();

    // Resuming from the seq of the last event received brings exactly what came after.
    const cursor = (channel: string) =>
      Math.max(...events.filter((e) => e.channel === channel).map((e) => e.seq as number));
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'later', collection: 'documents', id: 'doc-9', op: 'put', data: { v: 0 } }],
    });
    const again = await TestWsClient.connect(srv.wsUrl);
    await again.request({ ...HELLO, token });
    again.send({
      type: 'subscribe',
      channel: 'records:documents',
      since: cursor('records:documents'),
      rid: 's1',
    });
    again.send({
      type: 'subscribe',
      channel: 'records:settings',
      since: cursor('records:settings'),
      rid: 's2',
    });
    await until(() => recordEvents(again).length >= 1, 'the change made after');
    await again.waitFor((m) => m.rid === 's1');
    await again.waitFor((m) => m.rid === 's2');
    const resumed = recordEvents(again);
    expect(resumed.map((e) => e.id)).toEqual(['doc-9']);
    await Promise.all([again.close(), writer.close()]);
  }, 60_000);
});
