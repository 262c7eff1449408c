/**
 * The open-banking walkthrough against a syncbridge server with an inbound webhook source for the
 * provider: define a pull connector over REST, pull (critical connections first), watch a room of one
 * connection's transactions, a provider webhook pulling at once, a re-sent delta changing nothing, the
 * provider going down and the circuit opening and closing, a reconciliation repairing a difference,
 * and the connections' freshness.
 */
import WebSocket from 'ws';
import { providerPullSpec, type SimulatedProvider } from './provider.ts';

export interface OpenBankingOptions {
  url: string;
  adminKey: string;
  tenant: string;
  provider: SimulatedProvider;
  providerApiKey: string;
  /** The secret of the server's inbound webhook source `powens` (config `inbound`). */
  webhookSecret: string;
  log: (line: string) => void;
}

async function until<T>(
  read: () => Promise<T> | T,
  ok: (v: T) => boolean,
  what: string,
  ms = 5000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// biome-ignore lint/suspicious/noExplicitAny: REST answers are read field by field
type Json = any;

export async function runOpenBankingExample(o: OpenBankingOptions): Promise<void> {
  const call = async (method: string, path: string, body?: unknown): Promise<Json> => {
    const res = await fetch(`${o.url}${path}`, {
      method,
      headers: {
        'x-api-key': o.adminKey,
        'x-tenant': o.tenant,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const p = o.provider;
  p.upsertAccount('alice-bnp', {
    id: 'acc-1',
    name: 'Alice checking',
    iban: 'FR76 3000 4000',
    balance: 1250,
    currency: 'EUR',
  });
  p.upsertTransaction('alice-bnp', {
    id: 'tx-1',
    account_id: 'acc-1',
    amount: -42.5,
    label: 'Groceries',
    date: '2030-03-01',
  });
  p.upsertTransaction('alice-bnp', {
    id: 'tx-2',
    account_id: 'acc-1',
    amount: 2300,
    label: 'Salary',
    date: '2030-03-01',
  });
  p.upsertAccount('bob-sg', {
    id: 'acc-7',
    name: 'Bob savings',
    iban: 'FR76 3003 0000',
    balance: 9000,
    currency: 'EUR',
  });
  p.upsertTransaction('bob-sg', {
    id: 'tx-7',
    account_id: 'acc-7',
    amount: 150,
    label: 'Transfer',
    date: '2030-03-01',
  });

  // 1. The connector, defined at runtime: every 15 minutes, a reconciliation at night, pulled at once
  //    on the provider's `connection.synced` webhook (inbound source `powens` maps it to powens.synced).
  const spec = providerPullSpec({
    name: 'powens',
    tenant: o.tenant,
    baseUrl: p.url,
    apiKey: o.providerApiKey,
    schedule: '*/15 * * * *',
    reconcileSchedule: '0 3 * * *',
    pullOnStart: false,
    concurrency: 1,
    circuit: { failureThreshold: 3, openMs: 300 },
    retry: { initialMs: 60_000 },
    triggerOn: { type: 'powens.synced', connectionPath: 'connection_id' },
    connections: [
      { id: 'bob-sg', priority: 'normal' },
      { id: 'alice-bnp', priority: 'critical', stalenessLimitMs: 4 * 3600_000 },
    ],
  });
  const created = await call('POST', '/v1/connectors', spec);
  o.log(`defined connector ${created.name} (${created.kind}, schedule ${created.details.schedule})`);

  // 2. Pull now: critical connections first; accounts and transactions of a page in one transaction.
  const first = (await call('POST', '/v1/connectors/powens/trigger', {})).runs as Json[];
  const order = p.requests.map((r) => r.connection);
  first.sort((a, b) => order.indexOf(a.connection) - order.indexOf(b.connection));
  o.log(`pulled ${first.map((r) => `${r.connection}: ${r.applied} record(s)`).join(', then ')}`);

  // 3. Alice's app watches her connection's transactions (a filtered room).
  const token = (
    await fetch(`${o.url}/v1/auth/token`, {
      method: 'POST',
      headers: { 'x-api-key': o.adminKey, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: o.tenant, user: 'alice' }),
    }).then((r) => r.json() as Promise<{ token: string }>)
  ).token;
  const ws = new WebSocket(`${o.url.replace(/^http/, 'ws')}/v1/realtime?token=${encodeURIComponent(token)}`);
  const frames: Json[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(
    JSON.stringify({
      type: 'subscribe',
      rid: 1,
      channel: 'records:transactions?connectionId=alice-bnp',
      snapshot: true,
    }),
  );
  const snap: Json = await until(
    () => frames.find((f) => f.type === 'snapshot' && f.done),
    (f) => f !== undefined,
    'the snapshot',
  );
  o.log(
    `alice's app: ${snap.records.length} transactions (${snap.records.map((r: Json) => r.data.label).join(', ')})`,
  );

  // 4. The provider has a new transaction and says so by webhook: syncbridge pulls alice-bnp at once.
  p.upsertTransaction('alice-bnp', {
    id: 'tx-3',
    account_id: 'acc-1',
    amount: -18.9,
    label: 'Pharmacy',
    date: '2030-03-02',
  });
  const status = await p.notify(
    { url: `${o.url}/v1/inbound/powens`, secret: o.webhookSecret },
    'alice-bnp',
    'evt-100',
  );
  const live: Json = await until(
    () => frames.find((f) => f.type === 'event' && f.id === 'alice-bnp:tx-3'),
    (f) => f !== undefined,
    'the webhook-triggered pull',
  );
  o.log(
    `provider webhook (HTTP ${status}) -> pulled at once -> alice's app <- ${live.data.label} ${live.data.amount}`,
  );

  // 5. The provider re-sends everything: every change is a duplicate, nothing changes.
  p.ignoreCursor = true;
  const replay = (await call('POST', '/v1/connectors/powens/trigger', { connection: 'alice-bnp' })).runs[0];
  p.ignoreCursor = false;
  o.log(`provider re-sent alice-bnp: ${replay.applied} applied, ${replay.duplicates} duplicate(s)`);

  // 6. The provider goes down: three failures open the circuit; calls are skipped until a probe works.
  p.fail(503);
  for (let i = 0; i < 3; i++) await call('POST', '/v1/connectors/powens/trigger', { connection: 'bob-sg' });
  const open = await call('GET', '/v1/connectors/powens');
  o.log(`provider down: ${open.state} after ${open.details.circuit.consecutiveFailures} failures`);
  p.fail(null);
  const closed = await until(
    () => call('GET', '/v1/connectors/powens'),
    (s) => s.details.circuit.state === 'closed' && s.lastError === null,
    'the circuit to close',
  );
  o.log(`provider back: a half-open probe closed the circuit (${closed.state})`);

  // 7. Someone edited a synced transaction by hand: the reconciliation reports and repairs it.
  await call('PATCH', '/v1/records/transactions/alice-bnp:tx-1', { amount: -4250 });
  const report = (
    await call('POST', '/v1/connectors/powens/trigger', { connection: 'alice-bnp', reconcile: true })
  ).runs[0];
  const fixed = await call('GET', '/v1/records/transactions/alice-bnp:tx-1');
  o.log(
    `reconciliation: ${report.changed} changed (${report.differences.changed.join(', ')}), repaired; amount back to ${fixed.data.amount}`,
  );

  // 8. Freshness per connection (scenario 4: max 4 h staleness).
  const health = await call('GET', '/v1/connectors/powens');
  for (const c of health.details.connections) {
    o.log(
      `  ${c.id} (${c.priority}): ${c.stale ? 'STALE' : 'fresh'}, limit ${c.stalenessLimitMs / 3600_000} h`,
    );
  }
  ws.close();
  await call('DELETE', '/v1/connectors/powens');
  o.log('removed connector powens');
}
