/**
 * The SDK under a change of access rules, against a real server on both stores: a subscribed
 * collection's cache drops the records the new read rule refuses (they were held under the old one) and
 * gets those it now allows, with no resubscribe by the app; a live change after it follows the new rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import { SyncClient } from '../src/index.ts';
import { cachedRecords, FAST_BACKOFF, waitFor } from './helpers.ts';

const kinds = await storeKinds();
const T = 'rules-sdk';

describe.each(kinds)('the SDK cache under a rule change (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  let client: SyncClient;
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => {
    await client?.close();
    await srv?.close();
  });

  it('drops what the new rule refuses and gets what it allows', async () => {
    const admin = await srv.token(T, 'root', { roles: ['admin'] });
    const call = (method: string, path: string, body: unknown) =>
      fetch(`${srv.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then((r) => expect(r.status).toBeLessThan(300));
    await call('PUT', '/v1/collections/stock', {
      rules: { read: 'record.locationId in auth.claims.locations' },
    });
    await call('PUT', '/v1/records/stock/a1', { locationId: 'wh-1' });
    await call('PUT', '/v1/records/stock/b1', { locationId: 'wh-2' });
    const token = await srv.token(T, 'clerk', { claims: { locations: ['wh-1'], audits: ['wh-2'] } });
    client = new SyncClient({ url: srv.wsUrl, token, deviceId: 'clerk-phone', backoff: FAST_BACKOFF });
    await client.whenOpen(5000);
    const stock = client.collection('stock');
    const off = stock.subscribe(() => undefined);
    await waitFor(() => Object.keys(cachedRecords(client, 'stock')).join() === 'a1', 'a1 cached');

    await call('PUT', '/v1/collections/stock', {
      rules: { read: 'record.locationId in auth.claims.audits' },
    });
    await waitFor(
      () => Object.keys(cachedRecords(client, 'stock')).sort().join() === 'b1',
      'the cache to hold b1 only',
      10_000,
      () => cachedRecords(client, 'stock'),
    );
    await call('PUT', '/v1/records/stock/a2', { locationId: 'wh-1' });
    await call('PUT', '/v1/records/stock/b2', { locationId: 'wh-2' });
    await waitFor(() => 'b2' in cachedRecords(client, 'stock'), 'b2 cached');
    expect(Object.keys(cachedRecords(client, 'stock')).sort()).toEqual(['b1', 'b2']);
    off();
  });
});
