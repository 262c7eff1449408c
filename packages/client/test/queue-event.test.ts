/**
 * The `queue` event: every change of `pendingCount()` is reported, so a screen can show "3 unsaved"
 * without polling: a write queued offline, the writes a new client restores from its FileStorage, and
 * each result that empties the queue once the server is reachable.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { FileStorage, SyncClient } from '../src/index.ts';
import { deadPort, FAST_BACKOFF, mintToken, waitFor } from './helpers.ts';

/** Whether the storage file holds these texts (read as text: whatever the file's layout). */
function fileHolds(path: string, ...texts: string[]): boolean {
  if (!existsSync(path)) return false;
  const content = readFileSync(path, 'utf8');
  return texts.every((text) => content.includes(text));
}

describe('the queue event', () => {
  const dir = mkdtempSync(join(tmpdir(), 'syncbridge-queue-event-'));
  const clients: SyncClient[] = [];
  let srv: TestServer | null = null;
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports each change of the pending count: queued offline, restored from storage, answered', async () => {
    const path = join(dir, 'queue.json');
    const offline = new SyncClient({
      url: `ws://127.0.0.1:${await deadPort()}/v1/realtime`,
      token: 'unused',
      storage: new FileStorage(path),
      backoff: FAST_BACKOFF,
    });
    clients.push(offline);
    const seen: number[] = [];
    offline.on('queue', ({ pendingCount }) => seen.push(pendingCount));
    const notes = offline.collection('notes');
    void notes.put('n1', { text: 'one' }).catch(() => undefined);
    void notes.put('n2', { text: 'two' }).catch(() => undefined);
    expect(seen).toEqual([1, 2]);
    // Both stored in the file before the client closes.
    await waitFor(() => fileHolds(path, '"text":"one"', '"text":"two"'), 'both writes to be in the file');
    await offline.close();

    srv = await startTestServer('sqlite');
    const token = await mintToken(srv.url, 'queue-event', 'alice');
    const next = new SyncClient({
      url: srv.wsUrl,
      token,
      storage: new FileStorage(path),
      backoff: FAST_BACKOFF,
    });
    clients.push(next);
    const counts: number[] = [];
    next.on('queue', ({ pendingCount }) => counts.push(pendingCount));
    await waitFor(() => counts.at(-1) === 0, 'the restored writes to be answered');
    expect(counts).toEqual([2, 1, 0]);
    expect(next.collection('notes').get('n2')?.data).toEqual({ text: 'two' });
  });
});
