/**
 * Every conflict strategy under the offline race it exists for: two devices read the same version of a
 * record, go offline, each change it from that version (`baseVersion`, with client HLCs the test
 * controls: A's change is older than B's), then come back and flush their queues, in both orders.
 * For each strategy and order the suite checks the documented statuses and final record, that every
 * subscriber of the collection (the two writers with their local caches, and an admin who stayed
 * online) converges to the record REST serves, and that no change vanishes without a trace: each one
 * is in the log, or was refused with the current record, or waits as a stored conflict.
 */
import type { MutationResult, SyncRecord } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countsAsDeltas } from '../../../../examples/tenant-inventory/plugins.ts';
import { SyncError } from '../../src/core/errors.ts';
import { deepEqual } from '../../src/core/merge.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

type Json = Record<string, unknown>;
type Order = 'AB' | 'BA';
type Who = 'A' | 'B';

interface Folded {
  version: number;
  data: Json;
  deleted: boolean;
}

/** `<15-digit wall ms>-<4 hex>-<node>`, the HLC format clients send. */
function hlcAt(ms: number, node: string): string {
  return `${String(ms).padStart(15, '0')}-0000-${node}`;
}

function hlcWall(hlc: string): number {
  return Number(hlc.slice(0, 15));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true, or fails with `describe()` after `timeoutMs`. */
async function eventually(check: () => boolean, describe: () => string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${describe()}`);
    await sleep(10);
  }
}

/**
 * A client device: one user's connection (replaced on every reconnect) and the local cache it folds
 * from the record events it receives, which survives its disconnects. It resumes from its last seq.
 */
class Device {
  readonly cache = new Map<string, Folded>();
  conn: TestWsClient | null = null;
  lastSeq = 0;

  constructor(
    readonly user: string,
    private readonly token: string,
    private readonly wsUrl: string,
    private readonly channel: string,
  ) {}

  async connect(): Promise<TestWsClient> {
    this.conn = await TestWsClient.connect(this.wsUrl, this.token);
    const reply = await this.conn.request({ type: 'subscribe', channel: this.channel, since: this.lastSeq });
    expect(reply.type).toBe('subscribed');
    return this.conn;
  }

  /** Folds what the current connection received so far into the cache, keeping the highest version. */
  sync(): void {
    for (const e of this.conn?.events(this.channel) ?? []) {
      this.lastSeq = Math.max(this.lastSeq, e.seq as number);
      if (e.kind !== 'record') continue;
      const id = e.id as string;
      const version = e.version as number;
      if ((this.cache.get(id)?.version ?? 0) >= version) continue;
      this.cache.set(id, { version, data: (e.data as Json) ?? {}, deleted: e.op === 'delete' });
    }
  }

  async goOffline(): Promise<void> {
    this.sync();
    await this.conn?.close();
    this.conn = null;
  }

  async mutate(mutation: Json): Promise<MutationResult> {
    const reply = await this.conn!.request({ type: 'mutate', mutations: [mutation] });
    expect(reply.type, JSON.stringify(reply)).toBe('results');
    return (reply.results as MutationResult[])[0]!;
  }
}

interface Change {
  op: 'put' | 'patch';
  data: Json;
}

interface CaseContext {
  order: Order;
  /** The record at the version both devices read (v). */
  base: SyncRecord;
  results: Record<Who, MutationResult>;
  changes: Record<Who, Change>;
  /** What each device meant to end with: its change applied to the base. */
  proposed: Record<Who, Json>;
  first: Who;
  second: Who;
  devices: Record<Who, Device> & { observer: Device };
  collection: string;
  id: string;
}

interface Scenario {
  title: string;
  collection: string;
  /** Creates the record (v1) and changes it once (v2): both devices start from v2. */
  seed: [Json, Json];
  a: Change;
  b: Change;
  /** The documented outcome: each device's status and the record's data after both flushed. */
  expected(order: Order, ctx: CaseContext): { status: Record<Who, MutationResult['status']>; final: Json };
  /** More checks and follow-up steps (conflict resolution) after the race. */
  followUp?(ctx: CaseContext): Promise<void>;
}

/** Whichever arrives first is applied as usual (its baseVersion is current); the second decides. */
const firstApplied = (
  order: Order,
  second: MutationResult['status'],
): Record<Who, MutationResult['status']> =>
  order === 'AB' ? { A: 'applied', B: second } : { A: second, B: 'applied' };

function applyChange(base: Json, change: Change): Json {
  if (change.op === 'put') return change.data;
  const out: Json = structuredClone(base);
  const patch = (target: Json, p: Json) => {
    for (const [k, v] of Object.entries(p)) {
      if (v === null) delete target[k];
      else if (typeof v === 'object' && !Array.isArray(v) && typeof target[k] === 'object' && target[k])
        patch(target[k] as Json, v as Json);
      else target[k] = structuredClone(v);
    }
  };
  patch(out, change.data);
  return out;
}

describe.each(kinds)('conflict strategies, two offline devices in both orders (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let adminToken: string;
  const tokens: Record<string, string> = {};

  const rest = async (
    method: string,
    path: string,
    token: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Json };
  };

  beforeAll(async () => {
    srv = await startTestServer(
      kind,
      {
        collections: {
          lww_tools: { strategy: 'lww' },
          sw_tools: { strategy: 'server_wins' },
          merge_lww: { strategy: 'merge', mergeFallback: 'lww' },
          merge_manual: { strategy: 'merge', mergeFallback: 'manual' },
          merge_text: { strategy: 'merge', textFields: ['body'] },
          manual_stock: { strategy: 'manual' },
          custom_counts: { strategy: 'custom', resolver: 'counts_as_deltas' },
          custom_locked: { strategy: 'custom', resolver: 'locked' },
        },
      },
      undefined,
      {
        resolvers: {
          counts_as_deltas: countsAsDeltas,
          locked: ({ current }) => {
            if (current.data.locked === true) throw new SyncError('FORBIDDEN', 'this record is locked');
            return { kind: 'apply' };
          },
        },
      },
    );
    adminToken = await srv.token('shop', 'carol', { roles: ['admin'] });
    tokens.alice = await srv.token('shop', 'alice');
    tokens.bob = await srv.token('shop', 'bob');
    // One collection configured over REST rather than in the config file.
    const put = await rest('PUT', '/v1/collections/cw_tools', adminToken, { strategy: 'client_wins' });
    expect(put.status).toBe(200);
  });
  afterAll(async () => srv?.close());

  /** The log entries of one record, oldest first. */
  async function recordLog(collection: string, id: string): Promise<Json[]> {
    const q = new URLSearchParams({ collection, id, kind: 'record', limit: '1000' });
    const res = await rest('GET', `/v1/events?${q}`, adminToken);
    return res.body.events as Json[];
  }

  async function currentRecord(collection: string, id: string): Promise<SyncRecord> {
    const res = await rest('GET', `/v1/records/${collection}/${id}`, adminToken);
    expect(res.status).toBe(200);
    return res.body as unknown as SyncRecord;
  }

  /** Every device's cache holds exactly the record REST serves. */
  async function expectConverged(devices: Device[], collection: string, id: string): Promise<SyncRecord> {
    const record = await currentRecord(collection, id);
    const want: Folded = { version: record.version, data: record.data, deleted: record.deleted };
    await eventually(
      () =>
        devices.every((d) => {
          d.sync();
          return deepEqual(d.cache.get(id), want);
        }),
      () =>
        `want ${JSON.stringify(want)}; ` +
        devices.map((d) => `${d.user}: ${JSON.stringify(d.cache.get(id))}`).join('; '),
    );
    return record;
  }

  /** Nobody's change disappears without a trace. */
  async function expectTraced(ctx: CaseContext, who: Who): Promise<void> {
    const result = ctx.results[who];
    const device = ctx.devices[who];
    const log = await recordLog(ctx.collection, ctx.id);
    if (result.status === 'applied' || result.status === 'merged') {
      const entry = log.find((e) => e.seq === result.seq);
      expect(entry, `${who}'s change is in the log`).toMatchObject({
        actor: device.user,
        version: result.version,
        data: result.record!.data,
      });
      if (result.status === 'applied') {
        // Applied as sent, to the record as it was when the change arrived.
        const firstResult = ctx.results[ctx.first];
        const before =
          who === ctx.first || !['applied', 'merged'].includes(firstResult.status)
            ? ctx.base.data
            : firstResult.record!.data;
        expect(result.record!.data).toEqual(applyChange(before, ctx.changes[who]));
      }
    } else if (result.status === 'rejected') {
      // Refused with the record as it was when the change arrived: the other device's version.
      expect(result.error?.code).toBe('CONFLICT');
      const other = ctx.results[who === 'A' ? 'B' : 'A'];
      expect(result.record).toMatchObject({ version: other.version, data: other.record!.data });
      expect(log.some((e) => e.actor === device.user)).toBe(false);
    } else if (result.status === 'conflict') {
      const res = await rest('GET', `/v1/conflicts/${result.conflictId}`, tokens[device.user]!);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        collection: ctx.collection,
        recordId: ctx.id,
        actor: device.user,
        baseVersion: ctx.base.version,
        base: ctx.base.data,
        client: ctx.proposed[who],
      });
      expect(result.record).toMatchObject({ version: ctx.base.version + 1 });
    } else {
      throw new Error(`unexpected status ${result.status}`);
    }
  }

  async function runCase(s: Scenario, order: Order): Promise<CaseContext> {
    const { collection } = s;
    const id = `${s.collection}-${order.toLowerCase()}`;
    const channel = `records:${collection}`;
    await rest('PUT', `/v1/records/${collection}/${id}`, adminToken, s.seed[0]);
    const seeded = await rest('PATCH', `/v1/records/${collection}/${id}`, adminToken, s.seed[1]);
    expect(seeded.status).toBe(200);
    const base = seeded.body as unknown as SyncRecord;
    expect(base.version).toBe(2);

    const observer = new Device('carol', adminToken, srv.wsUrl, channel);
    const A = new Device('alice', tokens.alice!, srv.wsUrl, channel);
    const B = new Device('bob', tokens.bob!, srv.wsUrl, channel);
    for (const d of [observer, A, B]) await d.connect();
    // Both devices read the record at v2, then go offline.
    await eventually(
      () =>
        [A, B].every((d) => {
          d.sync();
          return d.cache.get(id)?.version === 2;
        }),
      () => 'both devices read v2',
    );
    await A.goOffline();
    await B.goOffline();

    // Offline, each changes the record from v2: A first, B a little later (by their clocks).
    const wall = Math.max(Date.now(), hlcWall(base.hlc));
    const mutations: Record<Who, Json> = {
      A: { mid: `${id}-A`, collection, id, ...s.a, baseVersion: 2, hlc: hlcAt(wall + 100, 'devA') },
      B: { mid: `${id}-B`, collection, id, ...s.b, baseVersion: 2, hlc: hlcAt(wall + 200, 'devB') },
    };
    const devices = { A, B, observer };
    const results = {} as Record<Who, MutationResult>;
    for (const who of order.split('') as Who[]) {
      await devices[who].connect(); // resumes from its last seq
      results[who] = await devices[who].mutate(mutations[who]);
    }

    const ctx: CaseContext = {
      order,
      base,
      results,
      changes: { A: s.a, B: s.b },
      proposed: { A: applyChange(base.data, s.a), B: applyChange(base.data, s.b) },
      first: order[0] as Who,
      second: order[1] as Who,
      devices,
      collection,
      id,
    };
    const expected = s.expected(order, ctx);
    expect({ A: results.A.status, B: results.B.status }, JSON.stringify(results)).toEqual(expected.status);
    const record = await expectConverged([observer, A, B], collection, id);
    expect(record.data).toEqual(expected.final);
    await expectTraced(ctx, 'A');
    await expectTraced(ctx, 'B');
    await s.followUp?.(ctx);
    for (const d of [observer, A, B]) await d.goOffline();
    return ctx;
  }

  /** The second writer's conflict went to its connection and to the admin, not to the first writer. */
  async function expectConflictNotified(ctx: CaseContext): Promise<string> {
    const conflictId = ctx.results[ctx.second].conflictId!;
    expect(conflictId).toBeTruthy();
    const isIt = (m: Json) => m.type === 'conflict' && (m.conflict as Json).id === conflictId;
    const pushed = await ctx.devices[ctx.second].conn!.waitFor(isIt);
    expect(pushed.conflict).toMatchObject({ status: 'open', client: ctx.proposed[ctx.second] });
    await ctx.devices.observer.conn!.waitFor(isIt);
    const first = ctx.devices[ctx.first].conn!;
    await first.request({ type: 'ping' });
    expect(first.messages.some(isIt)).toBe(false);
    return conflictId;
  }

  async function expectResolvedEvent(conflictId: string, actor: string, resolution: string): Promise<void> {
    const res = await rest('GET', '/v1/events?type=syncbridge.conflict_resolved&limit=1000', adminToken);
    const events = res.body.events as Json[];
    expect(events.find((e) => (e.payload as Json).conflictId === conflictId)).toMatchObject({
      kind: 'event',
      actor,
      payload: { conflictId, resolution },
    });
    const conflict = await rest('GET', `/v1/conflicts/${conflictId}`, adminToken);
    expect(conflict.body).toMatchObject({ status: 'resolved', resolution, resolvedBy: actor });
  }

  const scenarios: Scenario[] = [
    {
      title: 'lww: the change with the later HLC wins the whole record, in either order',
      collection: 'lww_tools',
      seed: [{ name: 'Drill', qty: 1 }, { qty: 4 }],
      a: { op: 'put', data: { name: 'Drill', qty: 3, shelf: 'A1' } },
      b: { op: 'put', data: { name: 'Drill 18V', qty: 9 } },
      expected: (order, ctx) => ({
        // A arriving second is older than the record (B's): refused with the current record.
        status: order === 'AB' ? { A: 'applied', B: 'applied' } : { A: 'rejected', B: 'applied' },
        final: ctx.proposed.B,
      }),
      async followUp(ctx) {
        // The record carries the winner's own clock.
        expect((await currentRecord(ctx.collection, ctx.id)).hlc).toMatch(/-devB$/);
      },
    },
    {
      title: 'server_wins: the first to arrive stands, the second is refused with the current record',
      collection: 'sw_tools',
      seed: [{ name: 'Saw', qty: 1 }, { qty: 4 }],
      a: { op: 'patch', data: { qty: 3 } },
      b: { op: 'patch', data: { name: 'Saw XL' } },
      expected: (order, ctx) => ({ status: firstApplied(order, 'rejected'), final: ctx.proposed[ctx.first] }),
    },
    {
      title: 'client_wins: both changes are applied in arrival order',
      collection: 'cw_tools',
      seed: [{ name: 'Hammer', qty: 1 }, { qty: 4 }],
      a: { op: 'patch', data: { qty: 3 } },
      b: { op: 'patch', data: { name: 'Hammer 2kg' } },
      expected: () => ({
        status: { A: 'applied', B: 'applied' },
        final: { name: 'Hammer 2kg', qty: 3 },
      }),
      async followUp(ctx) {
        expect(ctx.results[ctx.second].version).toBe(4);
      },
    },
    {
      title: 'merge (fallback lww): one-sided fields from their side, nested by path, the clash by later HLC',
      collection: 'merge_lww',
      seed: [{ title: 'Plan', owner: 'ann', tags: { a: 1 } }, { notes: 'draft' }],
      a: { op: 'patch', data: { title: 'Plan A', tags: { b: 2 } } },
      b: { op: 'patch', data: { title: 'Plan B', owner: 'bob' } },
      expected: (order) => ({
        status: firstApplied(order, 'merged'),
        final: { title: 'Plan B', owner: 'bob', tags: { a: 1, b: 2 }, notes: 'draft' },
      }),
    },
    {
      title: 'merge (fallback manual): a field both changed stores a conflict, resolved by its writer',
      collection: 'merge_manual',
      seed: [{ title: 'Plan', owner: 'ann' }, { notes: 'draft' }],
      a: { op: 'patch', data: { title: 'Plan A' } },
      b: { op: 'patch', data: { title: 'Plan B', owner: 'bob' } },
      expected: (order, ctx) => ({ status: firstApplied(order, 'conflict'), final: ctx.proposed[ctx.first] }),
      async followUp(ctx) {
        const conflictId = await expectConflictNotified(ctx);
        const second = ctx.devices[ctx.second];
        const everyone = [ctx.devices.observer, ctx.devices.A, ctx.devices.B];
        if (ctx.order === 'AB') {
          // Over REST from a named device, with merged data.
          const merged = { title: 'Plan A/B', owner: 'bob', notes: 'draft' };
          const res = await rest(
            'POST',
            `/v1/conflicts/${conflictId}/resolve`,
            tokens[second.user]!,
            { resolution: 'merge', data: merged },
            { 'x-device-id': 'tablet-7' },
          );
          expect(res.status).toBe(200);
          expect(res.body.result).toMatchObject({ status: 'applied', version: 4, record: { data: merged } });
          const record = await expectConverged(everyone, ctx.collection, ctx.id);
          expect(record).toMatchObject({ version: 4, data: merged, updatedBy: second.user });
          // The history shows who resolved, from which device, and what the resolution changed (jsonb
          // may order keys differently, so the changes are compared by path).
          const history = await rest('GET', `/v1/records/${ctx.collection}/${ctx.id}/history`, adminToken);
          expect((history.body.versions as Json[]).at(-1)).toMatchObject({
            version: 4,
            op: 'put',
            actor: second.user,
            device: 'tablet-7',
          });
          const changes = (history.body.versions as Json[]).at(-1)!.changes as Json[];
          expect(changes.sort((x, y) => String(x.path).localeCompare(String(y.path)))).toEqual([
            { path: 'owner', from: 'ann', to: 'bob' },
            { path: 'title', from: 'Plan A', to: 'Plan A/B' },
          ]);
          const audit = await rest(
            'GET',
            `/v1/events?type=syncbridge.conflict_resolved&actor=${second.user}&limit=1000`,
            adminToken,
          );
          expect((audit.body.events as Json[]).at(-1)).toMatchObject({ device: 'tablet-7' });
          await expectResolvedEvent(conflictId, second.user, 'merge');
        } else {
          // Over WebSocket, keeping the server's version: no new record version, but an audit event.
          const reply = await second.conn!.request({
            type: 'resolve',
            conflictId,
            resolution: 'accept_server',
          });
          expect((reply.results as MutationResult[])[0]).toMatchObject({ status: 'applied', version: 3 });
          const record = await expectConverged(everyone, ctx.collection, ctx.id);
          expect(record).toMatchObject({ version: 3, data: ctx.proposed[ctx.first] });
          await expectResolvedEvent(conflictId, second.user, 'accept_server');
        }
      },
    },
    {
      title: 'merge with textFields: two offline edits of one body both survive, character-wise',
      collection: 'merge_text',
      seed: [{ title: 'Notes', body: 'The fox.' }, { body: 'The quick fox.' }],
      a: { op: 'patch', data: { body: 'The quick brown fox.' } },
      b: { op: 'patch', data: { body: 'The quick fox jumps.', title: 'Fox notes' } },
      expected: (order) => ({
        status: firstApplied(order, 'merged'),
        final: { title: 'Fox notes', body: 'The quick brown fox jumps.' },
      }),
    },
    {
      title: 'manual: the second change waits in the queue, then its writer accepts it',
      collection: 'manual_stock',
      seed: [{ sku: 'drill', qty: 1 }, { qty: 10 }],
      a: { op: 'put', data: { sku: 'drill', qty: 7 } },
      b: { op: 'put', data: { sku: 'drill', qty: 12 } },
      expected: (order, ctx) => ({ status: firstApplied(order, 'conflict'), final: ctx.proposed[ctx.first] }),
      async followUp(ctx) {
        const conflictId = await expectConflictNotified(ctx);
        const open = await rest('GET', '/v1/conflicts?collection=manual_stock', adminToken);
        expect((open.body.conflicts as Json[]).map((c) => c.id)).toContain(conflictId);
        const second = ctx.devices[ctx.second];
        const reply = await second.conn!.request({ type: 'resolve', conflictId, resolution: 'accept_local' });
        expect((reply.results as MutationResult[])[0]).toMatchObject({
          status: 'applied',
          conflictId,
          version: 4,
          record: { data: ctx.proposed[ctx.second] },
        });
        const record = await expectConverged(
          [ctx.devices.observer, ctx.devices.A, ctx.devices.B],
          ctx.collection,
          ctx.id,
        );
        expect(record).toMatchObject({ version: 4, data: ctx.proposed[ctx.second] });
        await expectResolvedEvent(conflictId, second.user, 'accept_local');
        // A second resolution of the same conflict is refused.
        const again = await rest('POST', `/v1/conflicts/${conflictId}/resolve`, adminToken, {
          resolution: 'accept_server',
        });
        expect(again.status).toBe(409);
      },
    },
    {
      title: 'custom resolver: two absolute counts from one base both count, as deltas',
      collection: 'custom_counts',
      seed: [{ sku: 'drill', qty: 1 }, { qty: 10 }],
      a: { op: 'put', data: { sku: 'drill', qty: 7 } },
      b: { op: 'put', data: { sku: 'drill', qty: 8 } },
      expected: (order) => ({ status: firstApplied(order, 'merged'), final: { sku: 'drill', qty: 5 } }),
    },
  ];

  for (const s of scenarios) {
    it(s.title, async () => {
      await runCase(s, 'AB');
      await runCase(s, 'BA');
    });
  }

  it('changes based on one version in the same commit merge against that version', async () => {
    // An offline queue holding two edits of one record, both made on v2, flushed in one message: the
    // second is stale once the first is applied, and must merge against v2 (not overwrite the first).
    const id = 'same-commit';
    await rest('PUT', `/v1/records/merge_lww/${id}`, adminToken, { title: 'Plan', owner: 'ann' });
    await rest('PATCH', `/v1/records/merge_lww/${id}`, adminToken, { notes: 'draft' });
    const ws = await TestWsClient.connect(srv.wsUrl, tokens.alice!);
    const reply = await ws.request({
      type: 'mutate',
      mutations: [
        {
          mid: `${id}-1`,
          collection: 'merge_lww',
          id,
          op: 'patch',
          data: { title: 'Plan X' },
          baseVersion: 2,
        },
        {
          mid: `${id}-2`,
          collection: 'merge_lww',
          id,
          op: 'put',
          data: { title: 'Plan', owner: 'zed', notes: 'draft' },
          baseVersion: 2,
        },
      ],
    });
    expect((reply.results as MutationResult[]).map((r) => r.status)).toEqual(['applied', 'merged']);
    expect((await currentRecord('merge_lww', id)).data).toEqual({
      title: 'Plan X',
      owner: 'zed',
      notes: 'draft',
    });

    // The same on a manual collection: the stored conflict shows the version both were based on.
    await rest('PUT', `/v1/records/manual_stock/${id}`, adminToken, { qty: 1 });
    const manual = await ws.request({
      type: 'mutate',
      mutations: [
        { mid: `${id}-3`, collection: 'manual_stock', id, op: 'put', data: { qty: 2 }, baseVersion: 1 },
        { mid: `${id}-4`, collection: 'manual_stock', id, op: 'put', data: { qty: 3 }, baseVersion: 1 },
      ],
    });
    const [, conflicted] = manual.results as MutationResult[];
    expect(conflicted!.status).toBe('conflict');
    const conflict = await rest('GET', `/v1/conflicts/${conflicted!.conflictId}`, tokens.alice!);
    expect(conflict.body).toMatchObject({ base: { qty: 1 }, server: { qty: 2 }, client: { qty: 3 } });
    await ws.close();
  });

  it('a custom resolver that throws a SyncError refuses that mutation only', async () => {
    await rest('PUT', '/v1/records/custom_locked/l1', adminToken, { locked: true });
    await rest('PUT', '/v1/records/custom_locked/l1', adminToken, { locked: true, n: 1 });
    const res = await rest('POST', '/v1/mutations', tokens.alice!, {
      mutations: [
        { mid: 'lock-1', collection: 'custom_locked', id: 'l1', op: 'put', data: { n: 2 }, baseVersion: 1 },
        { mid: 'lock-2', collection: 'custom_locked', id: 'l2', op: 'put', data: { n: 3 } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.results).toMatchObject([
      { mid: 'lock-1', status: 'rejected', error: { code: 'FORBIDDEN', message: 'this record is locked' } },
      { mid: 'lock-2', status: 'applied', version: 1 },
    ]);
    expect((await currentRecord('custom_locked', 'l1')).data).toEqual({ locked: true, n: 1 });
  });

  it('a stale resolve is detected: the record moved on after the conflict was stored', async () => {
    const id = 'manual_stock-stale';
    await rest('PUT', `/v1/records/manual_stock/${id}`, adminToken, { qty: 1 });
    await rest('PUT', `/v1/records/manual_stock/${id}`, adminToken, { qty: 2 });
    const watcher = await TestWsClient.connect(srv.wsUrl, adminToken);
    await watcher.request({ type: 'subscribe', channel: 'events:syncbridge.conflict_resolved' });
    const bob = await TestWsClient.connect(srv.wsUrl, tokens.bob!);
    const reply = await bob.request({
      type: 'mutate',
      mutations: [
        { mid: `${id}-b`, collection: 'manual_stock', id, op: 'put', data: { qty: 5 }, baseVersion: 1 },
      ],
    });
    const conflictId = (reply.results as MutationResult[])[0]!.conflictId!;
    await rest('PUT', `/v1/records/manual_stock/${id}`, adminToken, { qty: 3 });
    const stale = await bob.request({ type: 'resolve', conflictId, resolution: 'accept_local' });
    expect((stale.results as MutationResult[])[0]).toMatchObject({
      status: 'rejected',
      error: { code: 'CONFLICT' },
      record: { version: 3, data: { qty: 3 } },
    });
    const refreshed = await rest('GET', `/v1/conflicts/${conflictId}`, tokens.bob!);
    expect(refreshed.body).toMatchObject({ status: 'open', serverVersion: 3, server: { qty: 3 } });
    const ok = await bob.request({ type: 'resolve', conflictId, resolution: 'accept_local' });
    expect((ok.results as MutationResult[])[0]).toMatchObject({ status: 'applied', version: 4 });
    expect((await currentRecord('manual_stock', id)).data).toEqual({ qty: 5 });
    // Resolutions are log events: a subscriber of their type sees this one live, the stale try not.
    const live = await watcher.waitFor((m) => m.type === 'event');
    expect(live).toMatchObject({
      channel: 'events:syncbridge.conflict_resolved',
      actor: 'bob',
      payload: { conflictId, collection: 'manual_stock', id, resolution: 'accept_local', version: 4 },
    });
    await watcher.request({ type: 'ping' });
    expect(watcher.events()).toHaveLength(1);
    await bob.close();
    await watcher.close();
  });
});

describe.each(kinds)('HLC clamping (%s)', (kind: StoreKind) => {
  const DRIFT_MS = 300;
  let srv: TestServer;
  let token: string;
  beforeAll(async () => {
    srv = await startTestServer(kind, {
      hlcMaxDriftMs: DRIFT_MS,
      collections: { clocks: { strategy: 'lww' } },
    });
    token = await srv.token('shop', 'alice', { roles: ['admin'] });
  });
  afterAll(async () => srv?.close());

  it('a client HLC far in the future is clamped to now + drift, so a later honest write still wins', async () => {
    const ws = await TestWsClient.connect(srv.wsUrl, token);
    const send = async (m: Json) =>
      ((await ws.request({ type: 'mutate', mutations: [m] })).results as MutationResult[])[0]!;
    const created = await send({ mid: 'c1', collection: 'clocks', id: 'k', op: 'put', data: { by: 'init' } });
    expect(created.status).toBe('applied');
    // A device whose clock says the year 5138.
    const liar = await send({
      mid: 'c2',
      collection: 'clocks',
      id: 'k',
      op: 'put',
      data: { by: 'liar' },
      baseVersion: 1,
      hlc: hlcAt(99_999_999_999_999, 'liar'),
    });
    const after = Date.now();
    expect(liar.status).toBe('applied');
    const stored = liar.record!.hlc;
    expect(stored).toMatch(/-liar$/);
    expect(hlcWall(stored)).toBeLessThanOrEqual(after + DRIFT_MS);
    expect(hlcWall(stored)).toBeGreaterThan(after - 5000);

    // Once the drift window has passed, an honest device's change (made after the liar's, stale base)
    // carries a later clock and wins under lww.
    await sleep(Math.max(0, hlcWall(stored) - Date.now()) + 20);
    const honest = await send({
      mid: 'c3',
      collection: 'clocks',
      id: 'k',
      op: 'put',
      data: { by: 'honest' },
      baseVersion: 1,
      hlc: hlcAt(Date.now(), 'honest'),
    });
    expect(honest).toMatchObject({ status: 'applied', version: 3, record: { data: { by: 'honest' } } });
    await ws.close();
  });
});

describe.each(kinds)('merge once the base version is compacted away (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let token: string;
  beforeAll(async () => {
    srv = await startTestServer(kind, {
      retentionIntervalMs: 100,
      collections: {
        short_lww: { strategy: 'merge', retention: { maxVersions: 1 } },
        short_manual: { strategy: 'merge', mergeFallback: 'manual', retention: { maxVersions: 1 } },
      },
    });
    token = await srv.token('shop', 'alice', { roles: ['admin'] });
  });
  afterAll(async () => srv?.close());

  const mutate = async (m: Json) => {
    const res = await fetch(`${srv.url}/v1/mutations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ mutations: [m] }),
    });
    return ((await res.json()) as { results: MutationResult[] }).results[0]!;
  };

  /** Writes v1..v3 and waits until the retention job kept only v3. */
  async function compacted(collection: string, id: string): Promise<SyncRecord> {
    let record: MutationResult | undefined;
    for (const qty of [1, 2, 3])
      record = await mutate({
        mid: `${collection}-${id}-${qty}`,
        collection,
        id,
        op: 'put',
        data: { qty, note: 'n' },
      });
    let kept = 0;
    const deadline = Date.now() + 5000;
    for (;;) {
      const res = await fetch(`${srv.url}/v1/records/${collection}/${id}/history`, {
        headers: { authorization: `Bearer ${token}` },
      });
      kept = ((await res.json()) as { versions: unknown[] }).versions.length;
      if (kept === 1 || Date.now() > deadline) break;
      await sleep(50);
    }
    expect(kept).toBe(1);
    return record!.record!;
  }

  it('settles the whole record by the fallback: lww by HLC, manual as a conflict without a base', async () => {
    const current = await compacted('short_lww', 'r1');
    const wall = hlcWall(current.hlc);
    // Field-wise merge is impossible without v1; the later clock wins the whole change (a patch applies
    // to the record as it is), the earlier one is refused.
    const later = await mutate({
      mid: 'later',
      collection: 'short_lww',
      id: 'r1',
      op: 'patch',
      data: { note: 'mine' },
      baseVersion: 1,
      hlc: hlcAt(wall + 50, 'dev'),
    });
    expect(later).toMatchObject({
      status: 'applied',
      version: 4,
      record: { data: { qty: 3, note: 'mine' } },
    });
    const earlier = await mutate({
      mid: 'earlier',
      collection: 'short_lww',
      id: 'r1',
      op: 'patch',
      data: { qty: 9 },
      baseVersion: 1,
      hlc: hlcAt(wall - 5000, 'dev'),
    });
    expect(earlier).toMatchObject({
      status: 'rejected',
      error: { code: 'CONFLICT' },
      record: { version: 4 },
    });

    await compacted('short_manual', 'r2');
    const stored = await mutate({
      mid: 'queued',
      collection: 'short_manual',
      id: 'r2',
      op: 'patch',
      data: { note: 'mine' },
      baseVersion: 1,
    });
    expect(stored.status).toBe('conflict');
    const res = await fetch(`${srv.url}/v1/conflicts/${stored.conflictId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await res.json()).toMatchObject({
      base: null,
      server: { qty: 3, note: 'n' },
      client: { note: 'mine' },
    });
  });
});
