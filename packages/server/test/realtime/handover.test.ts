import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';

const kinds = await storeKinds();

describe.each(kinds)('backlog-to-live handover (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('delivers every event exactly once, in order, to a subscriber that joins mid-burst', async () => {
    const token = await srv.token('acme', 'writer');
    const writer = await TestWsClient.connect(srv.wsUrl, token);
    const total = 400;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      writes.push(
        writer.request({
          type: 'mutate',
          mutations: [
            { mid: `m${i}`, collection: 'items', id: `i${i % 17}`, op: 'increment', data: { n: 1 } },
          ],
        }),
      );
      if (i === 150) {
        const reader = await TestWsClient.connect(srv.wsUrl, await srv.token('acme', 'reader'));
        reader.send({ type: 'subscribe', rid: 's', channel: 'records:items', since: 0 });
        writes.push(
          (async () => {
            const events = await reader.waitForEvents(total, 'records:items', 20_000);
            expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
            await reader.close();
          })(),
        );
      }
    }
    await Promise.all(writes);
    await writer.close();
  });
});
