/**
 * Paced device sync through the SDK against a real server: the device registers its bandwidth budget,
 * collection priorities and `conflate: true` from the client's options; after missing many changes, its
 * resumed catch-up is conflated (`client.conflated`, the `conflated` event) and the cache ends at the
 * latest version of each record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import { type ConflatedCatchUp, SyncClient } from '../src/index.ts';
import { FAST_BACKOFF, mintToken, waitFor } from './helpers.ts';

const kinds = await storeKinds();

describe.each(kinds)('paced sync through the SDK (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const clients: SyncClient[] = [];
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  it('registers the budget and priorities, and reports a conflated catch-up', async () => {
    const token = await mintToken(srv.url, `paced-sdk-${kind}`, 'alice');
    const phone = new SyncClient({
      url: srv.wsUrl,
      token,
      backoff: FAST_BACKOFF,
      deviceId: 'phone',
      device: {
        bandwidth: { bytesPerSecond: 256 * 1024 },
        priorities: { settings: 10, documents: 1 },
        conflate: true,
      },
    });
    const writer = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    clients.push(phone, writer);
    const reports: ConflatedCatchUp[] = [];
    phone.on('conflated', (r) => reports.push(r));
    const docs = phone.collection<{ n: number }>('documents');
    docs.subscribe(() => undefined);
    await phone.whenOpen(5000);
    await writer.collection('documents').put('d0', { n: -1 });
    await waitFor(() => docs.get('d0')?.data.n === -1, 'the first version');
    const device = (await (
      await fetch(`${srv.url}/v1/devices/phone`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as Record<string, unknown>;
    expect(device).toMatchObject({
      bandwidth: { bytesPerSecond: 256 * 1024 },
      priorities: { settings: 10, documents: 1 },
      conflate: true,
    });

    phone.disconnect();
    const writes = writer.collection<{ n: number }>('documents');
    await Promise.all(Array.from({ length: 200 }, (_, i) => writes.put(`d${i % 10}`, { n: i })));
    phone.connect();
    await waitFor(() => docs.get('d9')?.data.n === 199, 'the latest versions');
    expect(phone.conflated).toHaveLength(1);
    expect(phone.conflated[0]).toMatchObject({ channel: 'records:documents', skipped: 190 });
    expect(reports).toEqual(phone.conflated);
    for (let k = 0; k < 10; k++) expect(docs.get(`d${k}`)?.data.n).toBe(190 + k);
  }, 30_000);
});
