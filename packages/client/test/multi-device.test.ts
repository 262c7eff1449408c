/**
 * The multi-device documents example (examples/multi-device-documents), its Node part run against a
 * real server: the phone's offline edit of a document the laptop edited meanwhile is merged, both
 * devices end with the server's document, the phone hears what waited for it, and may not sync a
 * collection outside its categories. Also the example's command, as its README shows it.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDocuments } from '../../../examples/multi-device-documents/documents.ts';
import { runReview } from '../../../examples/multi-device-documents/review.ts';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const kinds = await storeKinds();

describe.each(kinds)('multi-device documents example (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => srv?.close());

  it('merges the offline phone’s edit with the laptop’s, and every device ends with the server’s document', async () => {
    const result = await runDocuments({ url: srv.url, adminKey: srv.adminKey, tenant: `docs-${kind}` });
    expect(result.phoneEdit.status).toBe('merged');
    expect(result.server).toEqual({
      title: 'Trip plan (final)',
      body: 'Day 1: museum, then lunch. Day 2: beach. Day 3: hike.',
      tags: ['travel', 'food'],
      ownerId: 'alice',
    });
    expect(result.otherUserRead).toBe(404);
    expect(result.laptop.doc).toEqual(result.server);
    expect(result.phone.doc).toEqual(result.server);
    expect(result.laptop.version).toBe(4);
    expect(result.phone.version).toBe(4);
    // The laptop's two changes were waiting for the phone when it came back.
    expect(result.pendingOnReturn).toBe(2);
    expect(result.refused).toMatchObject({ code: 'FORBIDDEN' });
    expect(result.lines.at(-1)).toBe('phone subscribing to settings -> FORBIDDEN');
  });

  it('merges a reviewer’s branch back while the author edited the main line, the draft unseen until then', async () => {
    const result = await runReview({ url: srv.url, adminKey: srv.adminKey, tenant: `review-${kind}` });
    expect(result.diff.changes.map((c) => [c.path, c.changedOn])).toEqual([
      ['body', 'both'],
      ['title', 'branch'],
    ]);
    expect(result.merge.status).toBe('merged');
    const merged = {
      title: 'Budget proposal (reviewed)',
      body: 'We ask for two people for a year. We start in May. Budget: 90k.',
      tags: ['budget'],
    };
    expect(result.merge.record.data).toEqual(merged);
    expect(result.laptop).toEqual(merged);
    expect(result.draftSeenOnMain).toBe(false);
    expect(result.lines.at(-1)).toBe(
      'the merged branch is deleted; the draft never reached the laptop: true',
    );
  });

  // The command is the same code on any store: once is enough.
  it.runIf(kind === 'sqlite')('runs as the documented command and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/multi-device-documents/index.ts'], {
      cwd: ROOT,
      env: { ...process.env, SYNCBRIDGE_URL: srv.url, SYNCBRIDGE_ADMIN_KEY: srv.adminKey },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((res) => child.on('exit', res));
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain("phone's offline edit -> merged");
    expect(out).toContain('reviewer merges the branch -> merged');
    expect(out.trim().endsWith('ok')).toBe(true);
  });
});
