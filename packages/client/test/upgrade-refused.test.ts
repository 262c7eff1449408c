/**
 * A token the server refuses at the WebSocket upgrade (HTTP 401, before any frame: a bad `?token=` in
 * the URL) stops the client with an `unauthorized` status and error, as a refused `hello` does,
 * instead of reconnecting forever.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { SyncClient, type SyncClientError } from '../src/index.ts';
import { FAST_BACKOFF, recordStatus, waitFor } from './helpers.ts';

describe('a token refused at the upgrade', () => {
  let srv: TestServer | undefined;
  let client: SyncClient | undefined;
  afterEach(async () => {
    await client?.close();
    await srv?.close();
  });

  it('stops for good with an unauthorized status, after one attempt', async () => {
    srv = await startTestServer('sqlite');
    const good = await srv.token('acme', 'alice');
    client = new SyncClient({ url: `${srv.wsUrl}?token=expired-or-bad`, token: good, backoff: FAST_BACKOFF });
    const changes = recordStatus(client);
    const errors: SyncClientError[] = [];
    client.on('error', (e) => errors.push(e));
    await waitFor(() => client!.state === 'closed', 'the client to stop', 5000);
    expect(changes.at(-1)).toMatchObject({
      newState: 'closed',
      reason: 'unauthorized',
      message: 'the server refused the token at the upgrade (HTTP 401)',
    });
    expect(errors).toMatchObject([{ code: 'UNAUTHORIZED' }]);
    await new Promise((r) => setTimeout(r, 300));
    expect(changes.filter((s) => s.newState === 'connecting')).toHaveLength(1);
  });
});
