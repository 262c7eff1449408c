/**
 * Write groups through the connector API (`ctx.groups`), on every store: groups commit in order in one
 * transaction, each with consecutive seqs; a group given again under the same marker (a redelivery after
 * a crash) writes nothing and says it is a duplicate, alone or beside new groups; a group holding a value
 * that cannot be stored is refused whole before anything is written; a client mid starting with `grp:`
 * cannot collide with a group's marker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connector, ConnectorContext } from '../../src/connectors/types.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { readLog } from '../realtime/support.ts';

const kinds = await storeKinds();

class Holder implements Connector {
  readonly kind = 'holder';
  readonly name = 'holder';
  readonly tenant = 'acme';
  ctx: ConnectorContext | null = null;
  start(ctx: ConnectorContext): void {
    this.ctx = ctx;
  }
  stop(): void {}
  health() {
    return {
      state: 'running' as const,
      lastSuccessAt: null,
      lastError: null,
      stalenessMs: null,
      stale: false,
    };
  }
}

const put = (mid: string, id: string, n: number) => ({
  mid,
  collection: 'things',
  id,
  op: 'put' as const,
  data: { n },
});

describe.each(kinds)('write groups (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const holder = new Holder();
  beforeAll(async () => {
    srv = await startTestServer(kind, {}, undefined, { connectors: [holder] });
  });
  afterAll(async () => srv?.close());

  it('commits each group once, in order, with consecutive seqs', async () => {
    const ctx = holder.ctx!;
    const first = await ctx.groups([
      { marker: 'm1', mutations: [put('m1:0', 'a', 1), put('m1:1', 'b', 1)], events: [{ type: 'did.one' }] },
      { marker: 'm2', mutations: [put('m2:0', 'a', 2)], events: [] },
    ]);
    expect(first.map((r) => [r.duplicate, r.seq])).toEqual([
      [false, 3],
      [false, 4],
    ]);
    const again = await ctx.groups([
      { marker: 'm2', mutations: [put('m2:0', 'a', 2)], events: [] },
      { marker: 'm3', mutations: [], events: [{ type: 'did.three' }] },
    ]);
    expect(again.map((r) => [r.duplicate, r.seq])).toEqual([
      [true, 4],
      [false, 5],
    ]);
    await expect(
      ctx.groups([{ marker: 'm4', mutations: [put('m4:0', 'c', Number.POSITIVE_INFINITY)], events: [] }]),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    // A client's mid that spells a marker's key is its own idempotency key, not the group's.
    await ctx.mutate([put('grp:m1', 'z', 1)]);
    const token = await srv.token('acme', 'reader');
    const { events } = await readLog(srv.url, token);
    expect(
      events.map((e) => `${e.seq}:${e.kind === 'event' ? e.type : `${e.id}=${(e.data as { n: number }).n}`}`),
    ).toEqual(['1:a=1', '2:b=1', '3:did.one', '4:a=2', '5:did.three', '6:z=1']);
  });
});
