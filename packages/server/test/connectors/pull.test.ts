/**
 * The scheduled pull connector against a simulated open-banking provider (a real HTTP server started
 * here) and a real syncbridge server: delta sync from a stored cursor into accounts and transactions
 * (one transaction per page), re-pulls that change nothing, deletions, priorities, the circuit breaker
 * opening, probing and closing, staleness alerts raised and cleared, reconciliation repairing planted
 * differences, a provider webhook pulling at once, and the trigger route's refusals.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  providerPullSpec,
  type SimulatedProvider,
  startSimulatedProvider,
} from '../../../../examples/open-banking-pull/provider.ts';
import type { ServerConfig } from '../../src/config/config.ts';
import { type StoreKind, startTestServer, storeKinds, type TestServer } from '../helpers/server.ts';
import { type Json, rest } from '../http/rest.ts';
import { adminRest, metricValue, waitFor } from './support.ts';

const kinds = await storeKinds();
const API_KEY = 'provider-api-key';

describe.each(kinds)('scheduled pull connector (%s)', (kind: StoreKind) => {
  let provider: SimulatedProvider;
  let srv: TestServer;
  let admin: ReturnType<typeof adminRest>;

  const start = async (
    spec: Record<string, unknown>,
    extra: Partial<ServerConfig> = {},
    storage?: TestServer['storage'],
  ) => {
    srv = await startTestServer(
      kind,
      {
        connectors: {
          instances: [{ tenant: 'acme', ...spec } as { name: string; tenant: string; kind: string }],
        },
        ...extra,
      },
      storage,
    );
    admin = adminRest(srv.url, srv.adminKey, 'acme');
  };
  const bank = (extra: Record<string, unknown> = {}) =>
    providerPullSpec({
      name: 'bank',
      tenant: 'acme',
      baseUrl: provider.url,
      apiKey: API_KEY,
      pullOnStart: false,
      connections: [{ id: 'c1', priority: 'critical' }],
      ...extra,
    });
  const trigger = async (body: Record<string, unknown> = {}, name = 'bank') => {
    const res = await admin('POST', `/v1/connectors/${name}/trigger`, body);
    expect(res.status, res.text).toBe(200);
    return res.body.runs as Json[];
  };
  const status = async (name = 'bank') => (await admin('GET', `/v1/connectors/${name}`)).body;
  const records = async (collection: string) =>
    (await admin('GET', `/v1/records/${collection}?limit=1000`)).body.records as Json[];
  const events = async (type?: string) =>
    (await admin('GET', `/v1/events?limit=1000${type ? `&type=${type}` : ''}`)).body.events as Json[];

  const seed = () => {
    provider.upsertAccount('c1', {
      id: 'acc-1',
      name: 'Checking',
      iban: 'FR76 0001',
      balance: 1200,
      currency: 'EUR',
    });
    provider.upsertAccount('c1', {
      id: 'acc-2',
      name: 'Savings',
      iban: 'FR76 0002',
      balance: 5000,
      currency: 'EUR',
    });
    for (const [id, amount] of [
      ['tx-1', -42.5],
      ['tx-2', -12],
      ['tx-3', 2500],
    ] as const) {
      provider.upsertTransaction('c1', {
        id,
        account_id: 'acc-1',
        amount,
        label: `op ${id}`,
        date: '2030-01-02',
      });
    }
  };

  afterEach(async () => {
    await srv?.close();
    await provider?.close();
  });

  it('syncs deltas from a stored cursor in one transaction per page; re-pulls create no duplicates', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    seed();
    await start(bank());
    const [first] = await trigger();
    expect(first).toMatchObject({ connection: 'c1', kind: 'delta', status: 'ok', applied: 5, duplicates: 0 });
    const accounts = await records('accounts');
    expect(accounts.map((r) => r.id).sort()).toEqual(['c1:acc-1', 'c1:acc-2']);
    expect(accounts[0].data).toMatchObject({ connectionId: 'c1', currency: 'EUR' });
    expect(accounts[0].updatedBy).toBe('connector:bank');
    expect((await records('transactions')).length).toBe(3);
    // One page, one transaction: five consecutive seqs stamped with the same commit time.
    const log = await events();
    expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(log.map((e) => e.ts)).size).toBe(1);

    provider.upsertAccount('c1', {
      id: 'acc-1',
      name: 'Checking',
      iban: 'FR76 0001',
      balance: 1157.5,
      currency: 'EUR',
    });
    provider.upsertTransaction('c1', {
      id: 'tx-4',
      account_id: 'acc-1',
      amount: -30,
      label: 'op tx-4',
      date: '2030-01-03',
    });
    const [second] = await trigger({ connection: 'c1' });
    expect(second).toMatchObject({ status: 'ok', applied: 2, duplicates: 0 });
    expect(provider.requests.map((r) => r.cursor)).toEqual([null, first.cursor]);
    const acc1 = (await admin('GET', '/v1/records/accounts/c1:acc-1')).body;
    expect(acc1).toMatchObject({ version: 2, data: { balance: 1157.5 } });

    // The provider sends everything again: every change is acknowledged as a duplicate, nothing moves.
    const headBefore = (await events()).length;
    provider.ignoreCursor = true;
    const [replay] = await trigger();
    expect(replay).toMatchObject({ status: 'ok', applied: 0, duplicates: 6 });
    expect((await events()).length).toBe(headBefore);
    expect((await admin('GET', '/v1/records/accounts/c1:acc-1')).body.version).toBe(2);
    provider.ignoreCursor = false;

    provider.deleteTransaction('c1', 'tx-2');
    const [third] = await trigger();
    expect(third).toMatchObject({ status: 'ok', deleted: 1 });
    expect((await admin('GET', '/v1/records/transactions/c1:tx-2')).status).toBe(404);
    expect((await records('transactions')).length).toBe(3);

    // The cursor survives a restart: the next pull asks for what came after it.
    const cursor = (await status()).details.connections[0].cursor;
    const storage = srv.storage;
    await srv.close({ keepData: true });
    await start(bank(), {}, storage);
    expect((await status()).details.connections[0].cursor).toBe(cursor);
    await trigger();
    expect(provider.requests.at(-1)).toMatchObject({ connection: 'c1', cursor });
  });

  it('pulls on its cron schedule', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    seed();
    await start(bank({ schedule: '* * * * * *' }));
    expect((await status()).details.nextRunAt).toEqual(expect.any(String));
    const run = await waitFor(
      status,
      (s) => s.details.connections[0].lastRun !== null,
      'a scheduled run',
      3000,
    );
    expect(run.details.connections[0].lastRun).toMatchObject({
      reason: 'schedule',
      status: 'ok',
      applied: 5,
    });
    expect((await records('transactions')).length).toBe(3);
  });

  it('pulls critical connections first', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    provider.delayMs = 20;
    await start(
      bank({
        concurrency: 1,
        connections: [
          { id: 'low-1', priority: 'low' },
          { id: 'normal-1' },
          { id: 'crit-1', priority: 'critical' },
          { id: 'high-1', priority: 'high' },
          { id: 'crit-2', priority: 'critical' },
        ],
      }),
    );
    const runs = await trigger();
    expect(runs.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
    expect(provider.requests.map((r) => r.connection)).toEqual([
      'crit-1',
      'crit-2',
      'high-1',
      'normal-1',
      'low-1',
    ]);
  });

  it('opens the circuit after repeated failures, skips the provider, probes half-open, and closes on success', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    seed();
    await start(bank({ circuit: { failureThreshold: 3, openMs: 800 }, retry: { initialMs: 60_000 } }));
    provider.fail(503);
    for (let i = 1; i <= 3; i++) {
      const [run] = await trigger();
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(/HTTP 503/);
    }
    const open = await status();
    expect(open.state).toBe('circuit_open');
    expect(open.details.circuit).toMatchObject({ state: 'open', consecutiveFailures: 3, opened: 1 });
    expect(
      await metricValue(
        srv.url,
        srv.adminKey,
        'syncbridge_provider_circuit_state{tenant="acme",provider="bank"}',
      ),
    ).toBe(2);
    const calls = provider.requests.length;
    const [skipped] = await trigger();
    expect(skipped.status).toBe('skipped');
    expect(skipped.error).toMatch(/circuit open/);
    expect(provider.requests.length).toBe(calls);

    // The probe after openMs fails: the circuit opens again, for another openMs.
    const reopened = await waitFor(status, (s) => s.details.circuit.opened === 2, 'a failed probe', 5000);
    expect(reopened.details.circuit.state).toBe('open');
    expect(provider.requests.length).toBe(calls + 1);

    // The provider recovers: the next probe succeeds and closes the circuit.
    provider.fail(null);
    const closed = await waitFor(
      status,
      (s) => s.state === 'running' && s.details.connections[0].lastRun?.status === 'ok',
      'the circuit to close',
      5000,
    );
    expect(closed.details.circuit).toMatchObject({ state: 'closed', consecutiveFailures: 0 });
    expect(closed.lastError).toBeNull();
    expect((await records('accounts')).length).toBe(2);
    expect(
      await metricValue(
        srv.url,
        srv.adminKey,
        'syncbridge_provider_circuit_state{tenant="acme",provider="bank"}',
      ),
    ).toBe(0);
  });

  it('raises a staleness alert when a connection is older than its limit, and clears it on the next success', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    await start(
      bank({ staleCheckMs: 20, connections: [{ id: 'c1', stalenessLimitMs: 1000 }, { id: 'c2' }] }),
    );
    const fresh = await status();
    expect(fresh.stale).toBe(false);
    const stale = await waitFor(status, (s) => s.stale === true, 'the alert', 5000);
    expect(stale.details.connections).toEqual([
      expect.objectContaining({ id: 'c1', stale: true, stalenessLimitMs: 1000 }),
      expect.objectContaining({ id: 'c2', stale: false, stalenessLimitMs: 4 * 3600 * 1000 }),
    ]);
    const alerts = await waitFor(
      () => events('syncbridge.connector_stale'),
      (e) => e.length === 1,
      'the stale event',
    );
    expect(alerts[0]).toMatchObject({
      source: 'bank',
      payload: { connector: 'bank', connection: 'c1', lastSuccessAt: null, stalenessLimitMs: 1000 },
    });
    expect(
      await metricValue(srv.url, srv.adminKey, 'syncbridge_connector_stale{tenant="acme",connector="bank"}'),
    ).toBe(1);
    const sync = await rest(srv.url, 'GET', '/v1/sync/health', { token: await srv.token('acme', 'ops') });
    expect(sync.body.connectors).toEqual([
      {
        name: 'bank',
        kind: 'pull',
        state: 'running',
        lastSuccessAt: null,
        lastError: null,
        stalenessMs: expect.any(Number),
        stale: true,
      },
    ]);

    const [run] = await trigger({ connection: 'c1' });
    expect(run.status).toBe('ok');
    const cleared = await status();
    expect(cleared.details.connections[0]).toMatchObject({ id: 'c1', stale: false });
    // The status flips before the fresh event's commit is acknowledged: wait for the event itself.
    const recovered = await waitFor(
      () => events('syncbridge.connector_fresh'),
      (e) => e.length === 1,
      'the fresh event',
    );
    expect(recovered[0]).toMatchObject({ payload: { connector: 'bank', connection: 'c1' } });
    expect(recovered[0].seq).toBeGreaterThan(alerts[0].seq);
  });

  it('reconciles against the full snapshot: reports and repairs missing, changed and extra records', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    seed();
    await start(bank());
    await trigger();
    // Plant differences: a changed amount, a lost account, a record the provider never had.
    expect((await admin('PATCH', '/v1/records/transactions/c1:tx-1', { amount: -4250 })).status).toBe(200);
    expect((await admin('DELETE', '/v1/records/accounts/c1:acc-2')).status).toBe(200);
    const extra = await admin('PUT', '/v1/records/transactions/c1:tx-ghost', {
      id: 'tx-ghost',
      account_id: 'acc-1',
      amount: 1,
      connectionId: 'c1',
    });
    expect(extra.status, extra.text).toBeLessThan(300);

    const [report] = await trigger({ reconcile: true });
    expect(report).toMatchObject({
      kind: 'reconcile',
      status: 'ok',
      missing: 1,
      changed: 1,
      extra: 1,
      repaired: 3,
    });
    expect(report.differences).toEqual({
      missing: ['accounts/c1:acc-2'],
      changed: ['transactions/c1:tx-1'],
      extra: ['transactions/c1:tx-ghost'],
    });
    expect((await admin('GET', '/v1/records/transactions/c1:tx-1')).body.data.amount).toBe(-42.5);
    expect((await admin('GET', '/v1/records/accounts/c1:acc-2')).body.data.name).toBe('Savings');
    expect((await admin('GET', '/v1/records/transactions/c1:tx-ghost')).status).toBe(404);
    const reported = await events('syncbridge.connector_reconciled');
    expect(reported).toHaveLength(1);
    expect(reported[0].payload).toMatchObject({
      connector: 'bank',
      connection: 'c1',
      missing: 1,
      changed: 1,
      extra: 1,
    });
    expect((await status()).details.connections[0].lastReconciliation).toMatchObject({ repaired: 3 });

    const [clean] = await trigger({ reconcile: true });
    expect(clean).toMatchObject({ missing: 0, changed: 0, extra: 0, repaired: 0 });
    expect(await events('syncbridge.connector_reconciled')).toHaveLength(1);
  });

  it("pulls at once when the provider's webhook arrives", async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    const secret = 'provider-webhook-secret';
    await start(bank({ triggerOn: { type: 'bank.connection_synced', connectionPath: 'connection_id' } }), {
      inbound: {
        bank: {
          tenant: 'acme',
          platform: 'bank',
          scheme: 'hmac',
          secret,
          types: { 'connection.synced': 'bank.connection_synced' },
        },
      },
    });
    seed();
    expect(await provider.notify({ url: `${srv.url}/v1/inbound/bank`, secret }, 'c1', 'evt-1')).toBe(200);
    await waitFor(
      () => records('transactions'),
      (r) => r.length === 3,
      'the pull the webhook triggered',
    );
    const run = await waitFor(status, (s) => s.details.connections[0].lastRun !== null, 'the run report');
    expect(run.details.connections[0].lastRun.reason).toMatch(/bank.connection_synced/);
    const pulls = provider.requests.length;
    expect(pulls).toBe(1);
    // The provider retries its webhook: acknowledged as a duplicate, no second pull.
    const again = await rest(srv.url, 'POST', '/v1/inbound/bank', {});
    expect(again.status).toBe(401);
    expect(await provider.notify({ url: `${srv.url}/v1/inbound/bank`, secret }, 'c1', 'evt-1')).toBe(200);
    provider.upsertTransaction('c1', {
      id: 'tx-9',
      account_id: 'acc-1',
      amount: 9,
      label: 'op tx-9',
      date: '2030-01-04',
    });
    expect(await provider.notify({ url: `${srv.url}/v1/inbound/bank`, secret }, 'c1', 'evt-2')).toBe(200);
    await waitFor(
      () => records('transactions'),
      (r) => r.length === 4,
      'the second pull',
    );
    expect(provider.requests.length).toBe(pulls + 1);
  });

  it('trigger route: tenant admins only, known connectors and connections, 202 without waiting', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    await start(bank());
    const user = await srv.token('acme', 'alice');
    const asUser = await rest(srv.url, 'POST', '/v1/connectors/bank/trigger', { token: user, json: {} });
    expect(asUser.status).toBe(403);
    const other = await rest(srv.url, 'POST', '/v1/connectors/bank/trigger', {
      apiKey: srv.adminKey,
      tenant: 'globex',
      json: {},
    });
    expect(other.status).toBe(404);
    expect((await admin('POST', '/v1/connectors/nope/trigger', {})).status).toBe(404);
    const noConn = await admin('POST', '/v1/connectors/bank/trigger', { connection: 'zz' });
    expect(noConn.status).toBe(404);
    expect(noConn.body.error.message).toMatch(/no connection zz/);
    const queued = await admin('POST', '/v1/connectors/bank/trigger', { wait: false });
    expect(queued.status).toBe(202);
    await waitFor(
      () => provider.requests.length,
      (n) => n === 1,
      'the queued pull',
    );
    expect((await rest(srv.url, 'GET', '/v1/connectors', { token: user })).body.connectors).toEqual([
      expect.objectContaining({ name: 'bank', kind: 'pull', origin: 'config', state: 'running' }),
    ]);
  });

  it('defines, changes and removes connectors over REST (private addresses refused unless allowed); config-file ones are read-only', async () => {
    provider = await startSimulatedProvider({ apiKey: API_KEY });
    seed();
    await start(bank());
    const local = providerPullSpec({
      name: 'local',
      tenant: 'acme',
      baseUrl: provider.url,
      apiKey: API_KEY,
      connections: [],
    });
    const refused = await admin('POST', '/v1/connectors', local);
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/loopback/);
    await srv.close();
    await start(bank(), { webhookAllowPrivate: ['127.0.0.1/32'] });
    const spec = providerPullSpec({
      name: 'bank2',
      tenant: 'acme',
      baseUrl: provider.url,
      apiKey: API_KEY,
      pullOnStart: true,
      connections: [{ id: 'c1' }],
      resources: [{ collection: 'bank2_accounts', path: 'accounts', version: 'version' }],
    });
    const bad = await admin('POST', '/v1/connectors', { ...spec, schedule: 'every tuesday' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/schedule/);
    const created = await admin('POST', '/v1/connectors', spec);
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({ name: 'bank2', origin: 'api', kind: 'pull' });
    expect(created.body.spec.http.headers).toEqual({ Authorization: '***' });
    await waitFor(
      () => records('bank2_accounts'),
      (r) => r.length === 2,
      'the pull on start',
    );
    expect((await admin('POST', '/v1/connectors', spec)).status).toBe(409);
    const changed = await admin('PUT', '/v1/connectors/bank2', { ...spec, enabled: false });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ enabled: false, state: 'stopped' });

    // Kept across a restart, then removed.
    const storage = srv.storage;
    await srv.close({ keepData: true });
    await start(bank(), { webhookAllowPrivate: ['127.0.0.1/32'] }, storage);
    expect((await status('bank2')).enabled).toBe(false);
    expect((await admin('DELETE', '/v1/connectors/bank')).status).toBe(403);
    expect((await admin('DELETE', '/v1/connectors/bank2')).status).toBe(204);
    expect((await admin('GET', '/v1/connectors/bank2')).status).toBe(404);
  });
});
