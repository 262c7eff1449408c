/**
 * docs/sdk.md's paced sync example against a real server: the `device` options the page shows are
 * read from the page itself and given to a SyncClient, and what the page promises holds: the device is
 * registered with them, a long backlog missed offline arrives conflated (the `conflated` event with the
 * fields the page destructures, `client.conflated`), the cache ends at the same state, the changes of
 * the skipped versions never fire, and the next resume brings exactly what came after.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../../server/test/helpers/server.ts';
import { type ConflatedCatchUp, type DeviceInfo, SyncClient } from '../src/index.ts';
import { FAST_BACKOFF, mintToken, waitFor } from './helpers.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const PAGE = readFileSync(join(ROOT, 'docs/sdk.md'), 'utf8');
const kinds = await storeKinds();

/** The page's paced sync example, and the `device` object literal it gives the client. */
function example(): { block: string; device: DeviceInfo } {
  const block = [...PAGE.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((b) => b.includes('bytesPerSecond'));
  expect(block, 'the paced sync example of docs/sdk.md').toBeDefined();
  const literal = /device: (\{.*\}),\n/.exec(block!)?.[1];
  expect(literal, 'its device: { ... } line').toBeDefined();
  // The literal is plain data with arithmetic (64 * 1024): evaluated as such.
  expect(literal).toMatch(/^[\w\s{}:,*\d]+$/);
  const device = new Function(`return (${literal});`)() as DeviceInfo;
  return { block: block!, device };
}

describe.each(kinds)('docs/sdk.md paced sync example (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  const clients: SyncClient[] = [];
  beforeAll(async () => {
    srv = await startTestServer(kind);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await srv?.close();
  });

  it('registers the page’s settings and delivers a missed backlog conflated, as the page says', async () => {
    const { block, device } = example();
    expect(device).toEqual({
      bandwidth: { bytesPerSecond: 64 * 1024 },
      priorities: { settings: 10, documents: 1 },
      conflate: true,
    });
    expect(block).toContain("phone.on('conflated', ({ channel, after, through, skipped }) =>");
    expect(block).toContain('phone.conflated;');

    const token = await mintToken(srv.url, `paced-sdk-doc-${kind}`, 'alice');
    const phone = new SyncClient({
      url: srv.wsUrl,
      token,
      deviceId: 'phone-7f3a',
      device,
      backoff: FAST_BACKOFF,
    });
    const writer = new SyncClient({ url: srv.wsUrl, token, backoff: FAST_BACKOFF });
    clients.push(phone, writer);
    const reports: ConflatedCatchUp[] = [];
    phone.on('conflated', ({ channel, after, through, skipped }) => {
      reports.push({ channel, after, through, skipped });
    });
    const docs = phone.collection<{ n: number }>('documents');
    const seen: Array<[string, number]> = [];
    docs.subscribe((_records, change) => {
      for (const c of change.changes) if (c.after) seen.push([c.id, c.after.data.n]);
    });
    await phone.whenOpen(15_000);
    const writes = writer.collection<{ n: number }>('documents');
    await writes.put('d0', { n: -1 });
    await waitFor(() => docs.get('d0')?.data.n === -1, 'the first version', 15_000);
    expect(phone.conflated).toEqual([]);

    const registered = await fetch(`${srv.url}/v1/devices/phone-7f3a`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await registered.json()).toMatchObject(device);

    // Offline: 10 versions of each of 8 documents.
    phone.disconnect();
    for (let v = 0; v < 10; v++)
      await Promise.all(Array.from({ length: 8 }, (_, k) => writes.put(`d${k}`, { n: v * 10 + k })));
    seen.length = 0;
    phone.connect();
    await waitFor(() => docs.get('d7')?.data.n === 97, 'the latest versions', 15_000);
    // The same state as every version would have left, without the skipped versions' changes.
    for (let k = 0; k < 8; k++) expect(docs.get(`d${k}`)?.data.n).toBe(90 + k);
    expect(seen.sort()).toEqual(Array.from({ length: 8 }, (_, k) => [`d${k}`, 90 + k]).sort());
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ channel: 'records:documents', skipped: 72 });
    expect(reports[0]!.through).toBeGreaterThan(reports[0]!.after);
    expect(phone.conflated).toEqual(reports);

    // The cursor stays exact: the next resume brings exactly what came after, not conflated.
    phone.disconnect();
    await writes.put('d3', { n: 1000 });
    seen.length = 0;
    phone.connect();
    await waitFor(() => docs.get('d3')?.data.n === 1000, 'the change made after', 15_000);
    await phone.whenOpen(15_000);
    expect(seen).toEqual([['d3', 1000]]);
    expect(phone.conflated).toEqual([]);
  }, 60_000);
});
