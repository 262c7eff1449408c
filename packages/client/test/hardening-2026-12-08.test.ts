/**
 * A `hello` the server refuses for something other than a bad token (here a token over the
 * 16384-character limit, refused BAD_REQUEST by the schema) closes the connection with 1008 since the
 * audit of 2026-12-08; the client's final `unauthorized` status carries the server's own reason, not
 * the close frame's generic "not authenticated". And a token minted with nearly the most claims a
 * token may carry (over 8192 characters, which `hello` used to refuse) connects.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/server.ts';
import { SyncClient } from '../src/index.ts';
import { FAST_BACKOFF, recordStatus, waitFor } from './helpers.ts';

describe('a refused hello', () => {
  let srv: TestServer | undefined;
  let client: SyncClient | undefined;
  afterEach(async () => {
    await client?.close();
    await srv?.close();
  });

  it('stops the client with the server’s reason', async () => {
    srv = await startTestServer('sqlite');
    client = new SyncClient({ url: srv.wsUrl, token: 'x'.repeat(20_000), backoff: FAST_BACKOFF });
    const changes = recordStatus(client);
    await waitFor(() => client!.state === 'closed', 'the client to stop', 5000);
    expect(changes.at(-1)).toMatchObject({
      newState: 'closed',
      reason: 'unauthorized',
      closeCode: 1008,
      message: expect.stringContaining('/token'),
    });
  });

  it('a token with 7.8 KB of claims connects', async () => {
    srv = await startTestServer('sqlite');
    const claims = { locations: Array.from({ length: 880 }, (_, i) => `wh-${i}`) };
    const token = await srv.token('acme', 'alice', { claims });
    expect(token.length).toBeGreaterThan(8192);
    client = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    await client.whenOpen(5000);
    const result = await client.collection('notes').put('n1', { text: 'hi' });
    expect(result.status).toBe('applied');
  });
});
