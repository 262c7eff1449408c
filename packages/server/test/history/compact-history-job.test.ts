/**
 * The history compaction job on its timer, on every store: versions superseded long enough ago are
 * compacted without anyone asking, recent ones stay full, and retention dropping a record's oldest
 * versions afterwards leaves every kept version readable as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { adminClient } from '../webhooks/support.ts';

const kinds = await storeKinds();

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.each(kinds)('history compaction job (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let api: ReturnType<typeof adminClient>;

  beforeAll(async () => {
    srv = await startTestServer(kind, {
      historyCompaction: { intervalMs: 100, afterMs: 0, batchSize: 4 },
      retentionIntervalMs: 0,
      collections: { notes: { retention: { maxVersions: 5 } } },
    });
    api = adminClient(srv, 'job');
  });
  afterAll(async () => srv?.close());

  it('compacts superseded versions on its timer; retention afterwards keeps the rest readable', async () => {
    for (let i = 0; i < 12; i++) {
      const res = await api.put('/v1/records/notes/n1', { json: { text: `${'note '.repeat(100)}${i}`, i } });
      expect(res.status, res.text).toBeLessThan(300);
    }
    const history = async () => (await api.get('/v1/records/notes/n1/history')).body.versions as unknown[];
    const before = await history();
    expect(before).toHaveLength(12);
    // The job has run over all of it when its watermark reaches the record's last entry.
    const head = await srv.server.store.headSeq('job');
    await until('the job to reach the head', async () =>
      (await srv.server.store.history.watermark('job')) >= head ? true : undefined,
    );
    expect(await history()).toEqual(before);

    await srv.server.runRetention();
    // (The first kept version's `changes` now compare with nothing: its predecessor is gone.)
    const shown = (vs: unknown[]) => vs.map((v) => ({ ...(v as object), changes: undefined }));
    expect(shown(await history())).toEqual(shown(before.slice(-5)));
    for (let v = 8; v <= 12; v++) {
      const got = await api.get(`/v1/records/notes/n1/versions/${v}`);
      expect(got.status, got.text).toBe(200);
      expect({ v, data: got.body.data, version: got.body.version }).toEqual({
        v,
        data: { text: `${'note '.repeat(100)}${v - 1}`, i: v - 1 },
        version: v,
      });
    }
    expect((await api.get('/v1/records/notes/n1/versions/3')).status).toBe(404);
  }, 120_000);

  it('leaves versions superseded less than afterMs ago full', async () => {
    const recent = await startTestServer(kind, {
      historyCompaction: { intervalMs: 0, afterMs: 3_600_000, batchSize: 50 },
    });
    try {
      const a = adminClient(recent, 'fresh');
      for (let i = 0; i < 3; i++) await a.put('/v1/records/notes/n', { json: { i } });
      const [result] = await recent.server.compactHistory();
      expect(result?.packed ?? 0).toBe(0);
      expect(await recent.server.store.history.watermark('fresh')).toBe(0);
      // An hour later they are compacted.
      const [later] = await recent.server.compactHistory(Date.now() + 3_700_000);
      expect(later?.packed).toBe(2);
    } finally {
      await recent.close();
    }
  }, 60_000);
});
