/**
 * Retention of branches, on both stores: a branch (`docs@review`) has no settings of its own and its
 * superseded versions are dropped by its collection's `retention` as the collection's are; a branch of
 * a collection without retention keeps every version; the branch still merges back after compaction
 * (its fork point is kept apart from the log) and replay verification still holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyReplay } from '../../src/replay/verify.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { restClient } from '../http/rest.ts';

const kinds = await storeKinds();
const T = 'branch-retention';

describe.each(kinds)('retention of branches (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let alice: ReturnType<typeof restClient>;

  beforeAll(async () => {
    srv = await startTestServer(kind, {
      retentionIntervalMs: 0,
      collections: { docs: { strategy: 'merge', retention: { maxVersions: 2 } }, notes: {} },
    });
    alice = restClient(srv.url, { token: await srv.token(T, 'alice') });
  });
  afterAll(async () => srv?.close());

  /** Creates `collection/d1`, forks it as `review` and writes `edits` versions on the branch. */
  async function branchWithEdits(collection: string, edits: number): Promise<void> {
    expect((await alice.put(`/v1/records/${collection}/d1`, { json: { title: 'Plan' } })).status).toBe(201);
    const fork = await alice.post(`/v1/records/${collection}/d1/branches`, { json: { name: 'review' } });
    expect(fork.status, fork.text).toBe(201);
    for (let i = 1; i <= edits; i++) {
      const res = await alice.patch(`/v1/records/${collection}@review/d1`, { json: { edit: i } });
      expect(res.status, res.text).toBe(200);
    }
  }

  const versionsOf = async (ref: string) =>
    ((await alice.get(`/v1/records/${ref}/d1/history`)).body.versions as { version: number }[]).map(
      (v) => v.version,
    );

  it('drops a branch’s superseded versions by its collection’s retention, and keeps them without one', async () => {
    await branchWithEdits('docs', 5);
    await branchWithEdits('notes', 5);
    const before = await versionsOf('docs@review');
    expect(before.length).toBeGreaterThan(2);
    const kept = await versionsOf('notes@review');

    const report = await srv.server.runRetention();
    expect(report.events).toBeGreaterThanOrEqual(before.length - 2);
    expect(await versionsOf('docs@review')).toEqual(before.slice(-2));
    expect(await versionsOf('notes@review')).toEqual(kept);
    // The branch still reads at its current version, and merges back from its fork point.
    const current = await alice.get('/v1/records/docs@review/d1');
    expect(current.body).toMatchObject({ version: before.at(-1), data: { title: 'Plan', edit: 5 } });
    const merge = await alice.post('/v1/records/docs/d1/branches/review/merge');
    expect(merge.status, merge.text).toBe(200);
    expect(merge.body.record.data).toMatchObject({ title: 'Plan', edit: 5 });

    const replay = await verifyReplay(srv.server.store, { tenants: [T] });
    expect(replay.differences).toEqual([]);
  });
});
