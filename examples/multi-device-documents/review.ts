/**
 * Multi-device documents, the review: a reviewer drafts on a branch while the author keeps editing the
 * document, then merges the draft back.
 *
 *   1. the author's laptop writes the shared document `proposal` (no `ownerId`: the whole tenant reads it)
 *   2. the reviewer forks it into the branch `review` (`documents.branch('review').fork(id)`) and drafts
 *      there: a new title and a sentence in the body, each a version of the branch only
 *   3. meanwhile the author appends to the body on the main line; the laptop, subscribed to `documents`,
 *      never sees the draft (it lives on `records:documents@review`)
 *   4. the reviewer compares the branch with the main line (`diff`) and merges it (`merge`): the
 *      collection's three-way merge keeps the reviewer's title and both body edits, character by character
 *   5. the laptop sees the merged version live; the merged branch is deleted
 *
 * `index.ts` runs it after the devices part; the client test suite runs it against a real server.
 */
import type { BranchDiffResponse, BranchMergeResponse } from '@syncbridge/client';
import { configureDocuments, type Doc, type DocumentsOptions, mintToken, openDevice } from './documents.ts';

export interface ReviewResult {
  /** What each side changed since the fork, as the reviewer saw it before merging. */
  diff: BranchDiffResponse;
  merge: BranchMergeResponse;
  /** Whether the author's laptop ever held the draft before the merge (it must not). */
  draftSeenOnMain: boolean;
  /** The document as the author's laptop has it at the end. */
  laptop: Doc | undefined;
  lines: string[];
}

async function until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function runReview(options: DocumentsOptions): Promise<ReviewResult> {
  const { url, adminKey } = options;
  const tenant = options.tenant ?? 'docs-demo';
  const user = options.user ?? 'alice';
  const docId = 'proposal';
  const timeoutMs = options.timeoutMs ?? 10_000;
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    options.log?.(line);
  };

  await configureDocuments(url, await mintToken(url, adminKey, tenant, 'setup', ['admin']));
  const laptop = openDevice({
    url,
    token: await mintToken(url, adminKey, tenant, user),
    deviceId: 'laptop',
    device: { type: 'desktop', name: 'Laptop', platform: process.platform, categories: ['documents'] },
  });
  const desk = openDevice({
    url,
    token: await mintToken(url, adminKey, tenant, 'reviewer'),
    deviceId: 'review-desk',
    device: { type: 'desktop', name: 'Review desk', platform: process.platform, categories: ['documents'] },
  });
  try {
    const docs = laptop.collection<Doc>('documents');
    const DRAFT_TITLE = 'Budget proposal (reviewed)';
    let draftSeenOnMain = false;
    let merging = false;
    docs.subscribe((records) => {
      const title = records.find((r) => r.id === docId)?.data.title;
      if (title === DRAFT_TITLE && !merging) draftSeenOnMain = true;
    });
    await Promise.all([laptop.whenOpen(timeoutMs), desk.whenOpen(timeoutMs)]);

    const review = desk.collection<Doc>('documents').branch('review');
    // A branch left by an earlier run of the example goes first.
    await review.deleteBranch(docId).catch(() => undefined);
    const created = await docs.put(docId, {
      title: 'Budget proposal',
      body: 'We ask for two people. We start in May.',
      tags: ['budget'],
    });
    log(`author's laptop put documents/${docId} -> version ${created.version}`);

    const fork = await review.fork(docId);
    log(`reviewer forks it into ${fork.branch.ref} at version ${fork.branch.forkVersion}`);
    // The desk syncs `documents` only (its categories): a branch of it is in that category.
    let refused: string | null = null;
    const offError = desk.on('error', (err) => {
      refused = err.code;
    });
    review.subscribe(() => undefined);
    await review.patch(docId, { title: DRAFT_TITLE });
    const draft = await review.patch(docId, { body: 'We ask for two people for a year. We start in May.' });
    log(`reviewer drafts on the branch: title and body -> branch version ${draft.version}`);
    await until(
      () => review.get(docId)?.version === draft.version && !review.get(docId)?.pending,
      "the desk's branch subscription to hold the draft",
      timeoutMs,
    );
    offError();
    if (refused) throw new Error(`the desk's branch subscription was refused: ${refused}`);

    const edit = await docs.patch(docId, { body: 'We ask for two people. We start in May. Budget: 90k.' });
    log(`meanwhile the author appends to the body on main -> version ${edit.version}`);

    const diff = await review.diff(docId);
    log(`diff: ${diff.changes.map((c) => `${c.path} (${c.changedOn})`).join(', ')}`);
    merging = true;
    const merge = await review.merge(docId);
    log(`reviewer merges the branch -> ${merge.status}, version ${merge.record.version}`);
    await until(
      () => docs.get(docId)?.version === merge.record.version,
      'the laptop to see the merge',
      timeoutMs,
    );
    const final = docs.get(docId)?.data;
    log(`laptop:  ${JSON.stringify(final)}`);
    await review.deleteBranch(docId);
    log(`the merged branch is deleted; the draft never reached the laptop: ${!draftSeenOnMain}`);
    return { diff, merge, draftSeenOnMain, laptop: final, lines };
  } finally {
    await Promise.all([laptop.close(), desk.close()]);
  }
}
