import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

describe.each(kinds)('filtered rooms see records enter and leave (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('delivers a move between locations to both rooms, live and from the backlog', async () => {
    const token = await srv.token('inv', 'clerk');
    const wh1 = await TestWsClient.connect(srv.wsUrl, token);
    const wh2 = await TestWsClient.connect(srv.wsUrl, token);
    await wh1.request({ type: 'subscribe', channel: 'records:stock?locationId=wh-1' });
    await wh2.request({ type: 'subscribe', channel: 'records:stock?locationId=wh-2' });
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    const put = (mid: string, id: string, data: Record<string, unknown>) =>
      writer.request({ type: 'mutate', mutations: [{ mid, collection: 'stock', id, op: 'put', data }] });
    await put('m1', 's1', { locationId: 'wh-1', qty: 5 });
    await put('m2', 's3', { locationId: 'wh-3', qty: 1 });
    await writer.request({
      type: 'mutate',
      mutations: [{ mid: 'm3', collection: 'stock', id: 's1', op: 'patch', data: { locationId: 'wh-2' } }],
    });
    await put('m4', 's3', { locationId: 'wh-3', qty: 2 });
    await put('m5', 's1', { locationId: 'wh-2', qty: 6 });

    const left = await wh1.waitFor((m) => m.type === 'event' && m.version === 2);
    expect(left).toMatchObject({
      id: 's1',
      data: { locationId: 'wh-2', qty: 5 },
      previous: { locationId: 'wh-1' },
    });
    const entered = await wh2.waitFor((m) => m.type === 'event' && m.version === 2);
    expect(entered).toMatchObject({ id: 's1', data: { locationId: 'wh-2' } });
    await wh2.waitFor((m) => m.type === 'event' && m.version === 3);
    // wh-1 saw s1 arrive and leave, and nothing of s3 or of s1's later life in wh-2.
    expect(wh1.events().map((e) => [e.id, e.version])).toEqual([
      ['s1', 1],
      ['s1', 2],
    ]);
    expect(wh2.events().map((e) => [e.id, e.version])).toEqual([
      ['s1', 2],
      ['s1', 3],
    ]);

    const late = await TestWsClient.connect(srv.wsUrl, token);
    late.send({ type: 'subscribe', rid: 'late', channel: 'records:stock?locationId=wh-1', since: 0 });
    await late.waitForEvents(2);
    expect(late.events().map((e) => [e.id, e.version])).toEqual([
      ['s1', 1],
      ['s1', 2],
    ]);
    for (const c of [wh1, wh2, writer, late]) await c.close();
  });
});
