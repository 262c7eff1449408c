/**
 * SQLite's commit thread as a writer sees it: writes go through it and are acknowledged in seq order,
 * a thread that dies while a write is in flight fails that write with UNAVAILABLE (never a hang), the
 * same mid then goes through on a new thread, and the log stays gap-free; many tenants written at
 * once all commit.
 */
import type { MutationResult } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestWsClient } from '../helpers/ws-client.ts';
import { readLog } from '../realtime/support.ts';

/** The commit thread's worker, as the store holds it (the only way a test can make it die). */
interface ThreadHandle {
  thread: { worker: { postMessage(message: unknown): void; terminate(): Promise<number> } | null } | null;
}

describe('SQLite commit thread', () => {
  let srv: TestServer;
  let token: string;
  let client: TestWsClient;
  beforeAll(async () => {
    srv = await startTestServer('sqlite', { sqliteCommitThread: 'on' });
    token = await srv.token('acme', 'alice');
    client = await TestWsClient.connect(srv.wsUrl, token);
  });
  afterAll(async () => {
    await client?.close();
    await srv?.close();
  });

  const put = (mid: string, id: string, n: number) => ({
    mid,
    collection: 'docs',
    id,
    op: 'put',
    data: { n },
  });

  async function send(...mutations: unknown[]): Promise<Record<string, unknown>> {
    return client.request({ type: 'mutate', mutations });
  }

  it('a thread dying with a write in flight fails it with UNAVAILABLE; the same mid then commits', async () => {
    for (let i = 1; i <= 3; i += 1) {
      const reply = await send(put(`m${i}`, 'a', i));
      expect((reply.results as MutationResult[])[0]).toMatchObject({ status: 'applied', seq: i });
    }
    const handle = srv.server.store as unknown as ThreadHandle;
    const worker = handle.thread?.worker;
    expect(worker, 'the commit thread runs after a few writes').toBeTruthy();
    // The next group is handed to the thread, which dies before it can answer.
    worker!.postMessage = () => void worker!.terminate();

    const failed = await send(put('m4', 'a', 4));
    expect(JSON.stringify(failed)).toContain('UNAVAILABLE');

    const retried = await send(put('m4', 'a', 4));
    expect((retried.results as MutationResult[])[0]).toMatchObject({ status: 'applied', seq: 4 });
    const next = await send(put('m5', 'b', 5));
    expect((next.results as MutationResult[])[0]).toMatchObject({ status: 'applied', seq: 5 });
    expect(handle.thread?.worker, 'a new thread').not.toBe(worker);

    const { events: log } = await readLog(srv.url, token);
    expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    const record = await client.request({ type: 'mutate', mutations: [put('m4', 'a', 4)] });
    expect((record.results as MutationResult[])[0]).toMatchObject({ status: 'duplicate', seq: 4 });
  });

  it('writers of many tenants at once are all acknowledged, each tenant gap-free', async () => {
    const tenants = Array.from({ length: 12 }, (_, i) => `t${i}`);
    const clients = await Promise.all(
      tenants.map(async (t) => TestWsClient.connect(srv.wsUrl, await srv.token(t, 'alice'))),
    );
    try {
      for (let round = 1; round <= 4; round += 1) {
        const replies = await Promise.all(
          clients.map((c, i) =>
            c.request({ type: 'mutate', mutations: [put(`${tenants[i]}-${round}`, `r${round}`, round)] }),
          ),
        );
        for (const reply of replies) {
          expect((reply.results as MutationResult[])[0]).toMatchObject({ status: 'applied', seq: round });
        }
      }
      for (const t of tenants) {
        const { events: log } = await readLog(srv.url, await srv.token(t, 'alice'));
        expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});
