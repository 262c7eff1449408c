/**
 * Reading one version of a record with a long history, on every store: `GET …/versions/{v}` and
 * `GET …/{id}?version=N` answer any kept version of a document with 1,200 versions (more than any page
 * of the log), between other records' writes, the same before and after its history is compacted, a
 * delete as `op: "delete"` with `data: null`, and 404 NOT_FOUND for a version never written or
 * removed by retention.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { adminClient } from '../webhooks/support.ts';

const kinds = await storeKinds();
const VERSIONS = 1200;

describe.each(kinds)('version reads of a long history (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let api: ReturnType<typeof adminClient>;
  const read = async (path: string) => {
    const res = await api.get(path);
    return { status: res.status, body: res.body as Record<string, unknown> };
  };

  beforeAll(async () => {
    srv = await startTestServer(kind, {
      retentionIntervalMs: 0,
      collections: { docs: { retention: { maxVersions: 1000 } } },
    });
    api = adminClient(srv, 'versions');
    // d1 gets VERSIONS versions; every batch also writes other records, so its entries are spread out.
    for (let batch = 0; batch < VERSIONS / 100; batch++) {
      const mutations = [];
      for (let i = 0; i < 100; i++) {
        const n = batch * 100 + i + 1;
        mutations.push({
          mid: `d1-${n}`,
          collection: 'docs',
          id: 'd1',
          op: 'put',
          data: { n, text: `v${n}` },
        });
        mutations.push({ mid: `o-${n}`, collection: 'docs', id: `other${i % 7}`, op: 'put', data: { n } });
      }
      const res = await api.post('/v1/mutations', { json: { mutations } });
      expect(res.status, res.text).toBe(200);
    }
    const res = await api.post('/v1/mutations', {
      json: { mutations: [{ mid: 'd2-1', collection: 'docs', id: 'd2', op: 'put', data: { a: 1 } }] },
    });
    expect(res.status, res.text).toBe(200);
    await api.delete('/v1/records/docs/d2');
  }, 120_000);
  afterAll(async () => srv?.close());

  const sampled = [1, 2, 499, 500, 501, 777, 1000, 1199, 1200];

  async function answers(): Promise<Record<number, unknown>> {
    const out: Record<number, unknown> = {};
    for (const v of sampled) {
      const got = await read(`/v1/records/docs/d1/versions/${v}`);
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      expect((await read(`/v1/records/docs/d1?version=${v}`)).body).toEqual(got.body);
      out[v] = got.body;
    }
    return out;
  }

  it('serves any version, and 404 NOT_FOUND for one never written', async () => {
    const all = await answers();
    for (const v of sampled) {
      expect(all[v]).toMatchObject({
        collection: 'docs',
        id: 'd1',
        version: v,
        op: 'put',
        data: { n: v, text: `v${v}` },
      });
    }
    // Versions grow with the log: each later version is at a later seq.
    const seqs = sampled.map((v) => (all[v] as { seq: number }).seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    for (const path of [
      '/v1/records/docs/d1/versions/1201',
      '/v1/records/docs/d1?version=1201',
      '/v1/records/docs/nobody/versions/1',
    ]) {
      const missing = await read(path);
      expect(missing.status).toBe(404);
      expect((missing.body.error as { code: string }).code).toBe('NOT_FOUND');
    }
    expect((await read('/v1/records/docs/d1/versions/0')).status).toBe(400);
    expect((await read('/v1/records/docs/d2/versions/2')).body).toMatchObject({
      version: 2,
      op: 'delete',
      data: null,
    });
  });

  it('answers the same once the history is compacted, and 404 for versions retention removed', async () => {
    const before = await answers();
    const progress = await srv.server.compactHistory(Date.now() + 30 * 86_400_000);
    const packed = progress.find((p) => p.tenant === 'versions')?.packed ?? 0;
    expect(packed).toBeGreaterThan(VERSIONS - 10);
    expect(await answers()).toEqual(before);

    await srv.server.runRetention();
    for (const v of [1, 2, 199, 200]) {
      const gone = await read(`/v1/records/docs/d1/versions/${v}`);
      expect(gone.status, `version ${v}`).toBe(404);
      expect((gone.body.error as { code: string }).code).toBe('NOT_FOUND');
      expect((await read(`/v1/records/docs/d1?version=${v}`)).status).toBe(404);
    }
    for (const v of sampled.filter((v) => v > 200)) {
      expect((await read(`/v1/records/docs/d1/versions/${v}`)).body).toEqual(before[v]);
      expect((await read(`/v1/records/docs/d1?version=${v}`)).body).toEqual(before[v]);
    }
    expect((await read('/v1/records/docs/d1/versions/201')).body).toMatchObject({
      version: 201,
      data: { n: 201, text: 'v201' },
    });
  }, 60_000);
});
