/**
 * `collection.branch(name)` against a real server, on both stores: a reviewer forks a document, drafts
 * on the branch with the collection API (optimistic writes, the branch's own channel and cache) while a
 * colleague edits the main line, compares and merges it back; clients of the main line never see the
 * draft, and a merged branch refuses further writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import { SyncClient, SyncClientError } from '../src/index.ts';
import { FAST_BACKOFF, mintToken, waitFor } from './helpers.ts';

interface Doc {
  title: string;
  body: string;
  status?: string;
}

const kinds = await storeKinds();

describe.each(kinds)('branches from the SDK (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const clients: SyncClient[] = [];

  beforeAll(async () => {
    srv = await startTestServer(kind, { collections: { docs: { strategy: 'merge', textFields: ['body'] } } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  async function client(user: string): Promise<SyncClient> {
    const c = new SyncClient({
      url: srv.wsUrl,
      token: await mintToken(srv.url, `sdk-branches-${kind}`, user),
      deviceId: `${user}-device`,
      backoff: FAST_BACKOFF,
    });
    clients.push(c);
    await c.whenOpen(10_000);
    return c;
  }

  it('forks, drafts on the branch, diffs and merges back with the same API as a collection', async () => {
    const editor = await client('editor');
    const reviewer = await client('reviewer');
    const docs = editor.collection<Doc>('docs');
    const mainSeen: { version: number | null; title: string }[] = [];
    docs.subscribe((_records, change) => {
      for (const c of change.changes)
        if (c.after) mainSeen.push({ version: c.after.version, title: c.after.data.title });
    });
    const created = await docs.put('plan', { title: 'Plan', body: 'Intro. Outro.' });
    expect(created.status).toBe('applied');

    const review = reviewer.collection<Doc>('docs').branch('review');
    expect(review.name).toBe('docs@review');
    const fork = await review.fork('plan');
    expect(fork.branch).toMatchObject({ ref: 'docs@review', forkVersion: 1 });
    const drafts: number[] = [];
    review.subscribe((records) => {
      const v = records.find((r) => r.id === 'plan')?.version;
      if (v != null) drafts.push(v);
    });
    await waitFor(() => review.get('plan')?.version === 1, 'the branch cache to hold the fork');

    const draft = await review.patch('plan', { title: 'Plan (reviewed)' });
    expect(draft).toMatchObject({ status: 'applied', version: 2 });
    expect(review.get('plan')?.data.title).toBe('Plan (reviewed)');
    await waitFor(() => drafts.includes(2), "the branch's subscriber to hear version 2");
    await docs.patch('plan', { body: 'Intro. Middle. Outro.' });

    const diff = await review.diff('plan');
    expect(diff.changes.map((c) => [c.path, c.changedOn])).toEqual([
      ['body', 'main'],
      ['title', 'branch'],
    ]);
    const merged = await review.merge('plan');
    expect(merged.status).toBe('merged');
    expect(merged.record.data).toEqual({ title: 'Plan (reviewed)', body: 'Intro. Middle. Outro.' });
    await waitFor(() => docs.get('plan')?.version === merged.record.version, 'the editor to see the merge');
    expect(docs.get('plan')?.data.title).toBe('Plan (reviewed)');
    // The editor's subscription to the main line never carried the draft: it arrived with the merge.
    const reviewed = mainSeen.filter((c) => c.title === 'Plan (reviewed)');
    expect(reviewed.length).toBeGreaterThan(0);
    expect(reviewed.every((c) => c.version === merged.record.version)).toBe(true);
    expect((await review.info('plan')).mergedVersion).toBe(merged.record.version);

    const late = await review.patch('plan', { title: 'too late' });
    expect(late).toMatchObject({ status: 'rejected', error: { code: 'CONFLICT' } });
    await review.deleteBranch('plan');
    await expect(review.info('plan')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a branch of a branch and a write to a branch never forked', async () => {
    const c = await client('someone');
    const ghost = c.collection<Doc>('docs').branch('ghost');
    expect(() => ghost.branch('x')).toThrow(SyncClientError);
    const result = await ghost.put('plan', { title: 't', body: 'b' });
    expect(result).toMatchObject({ status: 'rejected', error: { code: 'NOT_FOUND' } });
    await expect(ghost.fork('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
