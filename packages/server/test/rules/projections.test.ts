/**
 * Projections under access rules, on both stores: a projection folds every record change of the tenant
 * whatever the rules, so while a read rule applies to the caller its state is for tenant admins (403 for
 * other users), unless the projection is marked `public`; without read rules every user reads it, as
 * before rules existed.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Projection } from '../../src/plugins/types.ts';
import {
  createTestStorage,
  type StoreKind,
  startTestServer,
  storeKinds,
  type TestServer,
} from '../helpers/server.ts';
import { expectError, restClient } from '../http/rest.ts';

const kinds = await storeKinds();

/** Every document title of the tenant: what the read rule protects. */
const titles: Projection<string[]> = {
  name: 'titles',
  initial: () => [],
  apply: (state, event: LogEvent) =>
    event.kind === 'record' && event.collection === 'documents' && event.data
      ? [...state, String(event.data.title)]
      : state,
};
/** How many changes the tenant made: nothing the rules protect. */
const changes: Projection<number> = {
  name: 'changes',
  public: true,
  initial: () => 0,
  apply: (state, event: LogEvent) => (event.kind === 'record' ? state + 1 : state),
};

describe.each(kinds)('projections under access rules (%s)', (kind: StoreKind) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(kind, {}, createTestStorage(kind), { projections: [titles, changes] });
  });
  afterAll(async () => srv?.close());

  it('shows a projection to every user without read rules, and only to admins with them', async () => {
    const T = 'proj-docs';
    const admin = restClient(srv.url, { token: await srv.token(T, 'root', { roles: ['admin'] }) });
    const alice = restClient(srv.url, { token: await srv.token(T, 'alice') });
    const bob = restClient(srv.url, { token: await srv.token(T, 'bob') });
    await alice.put('/v1/records/documents/a1', { json: { ownerId: 'alice', title: 'alice-secret' } });
    expect((await bob.get('/v1/projections/titles')).body.state).toEqual(['alice-secret']);

    const rules = { read: 'record.ownerId == auth.user' };
    expect((await admin.put('/v1/collections/documents', { json: { rules } })).status).toBe(200);
    const refused = await bob.get('/v1/projections/titles');
    expectError(refused, 403, 'FORBIDDEN');
    expect(refused.text).not.toContain('alice-secret');
    expect((await admin.get('/v1/projections/titles')).body.state).toEqual(['alice-secret']);
    // A projection marked public stays readable by every user; an unknown one is 404 as before.
    expect((await bob.get('/v1/projections/changes')).body.state).toBe(1);
    expectError(await bob.get('/v1/projections/nope'), 404, 'NOT_FOUND');
  });
});
