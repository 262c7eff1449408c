/**
 * A simulated open-banking provider API (in the manner of Powens and its peers), for the example and its
 * tests: per bank connection, accounts and transactions that change over time, read as a delta since a
 * cursor or as a full snapshot, and webhooks sent when a connection's data changed.
 *
 * - `GET /connections/{id}/changes?cursor=N` -> `{"accounts":[...],"transactions":[...],
 *   "deleted":{"accounts":[ids],"transactions":[ids]},"cursor":"M","hasMore":bool}` (the current state
 *   of each item changed after N, `pageSize` changes per page)
 * - `GET /connections/{id}/snapshot` -> `{"accounts":[...],"transactions":[...]}`
 * - Every request needs `Authorization: Bearer <apiKey>` (401 otherwise).
 *
 * Test controls: `fail(status)` makes every request answer that status until `fail(null)`;
 * `ignoreCursor` replays every change whatever the cursor (a provider that re-sends); `delayMs` slows
 * each answer; `requests` logs what was asked, in order.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export interface Account {
  id: string;
  name: string;
  iban: string;
  balance: number;
  currency: string;
  version: number;
}

export interface Transaction {
  id: string;
  account_id: string;
  amount: number;
  label: string;
  date: string;
  version: number;
}

interface Change {
  seq: number;
  kind: 'accounts' | 'transactions';
  id: string;
}

interface Connection {
  accounts: Map<string, Account>;
  transactions: Map<string, Transaction>;
  changes: Change[];
}

export interface ProviderOptions {
  apiKey: string;
  pageSize?: number;
}

export interface WebhookTarget {
  url: string;
  secret: string;
}

export interface SimulatedProvider {
  url: string;
  requests: Array<{
    connection: string;
    kind: 'changes' | 'snapshot';
    cursor: string | null;
    status: number;
  }>;
  ignoreCursor: boolean;
  delayMs: number;
  /** Every request answers this HTTP status until `fail(null)`. */
  fail(status: number | null): void;
  upsertAccount(connection: string, account: Omit<Account, 'version'>): Account;
  upsertTransaction(connection: string, tx: Omit<Transaction, 'version'>): Transaction;
  deleteTransaction(connection: string, id: string): void;
  accounts(connection: string): Account[];
  transactions(connection: string): Transaction[];
  /** POSTs a signed `connection.synced` webhook for the connection; resolves with the HTTP status. */
  notify(target: WebhookTarget, connection: string, eventId?: string): Promise<number>;
  close(): Promise<void>;
}

export async function startSimulatedProvider(options: ProviderOptions): Promise<SimulatedProvider> {
  const connections = new Map<string, Connection>();
  let seq = 0;
  let failing: number | null = null;
  const pageSize = options.pageSize ?? 100;

  const conn = (id: string): Connection => {
    let c = connections.get(id);
    if (!c) {
      c = { accounts: new Map(), transactions: new Map(), changes: [] };
      connections.set(id, c);
    }
    return c;
  };

  const provider: SimulatedProvider = {
    url: '',
    requests: [],
    ignoreCursor: false,
    delayMs: 0,
    fail: (status) => {
      failing = status;
    },
    upsertAccount: (connection, account) => {
      const c = conn(connection);
      const next = { ...account, version: (c.accounts.get(account.id)?.version ?? 0) + 1 };
      c.accounts.set(account.id, next);
      c.changes.push({ seq: ++seq, kind: 'accounts', id: account.id });
      return next;
    },
    upsertTransaction: (connection, tx) => {
      const c = conn(connection);
      const next = { ...tx, version: (c.transactions.get(tx.id)?.version ?? 0) + 1 };
      c.transactions.set(tx.id, next);
      c.changes.push({ seq: ++seq, kind: 'transactions', id: tx.id });
      return next;
    },
    deleteTransaction: (connection, id) => {
      const c = conn(connection);
      c.transactions.delete(id);
      c.changes.push({ seq: ++seq, kind: 'transactions', id });
    },
    accounts: (connection) => [...conn(connection).accounts.values()],
    transactions: (connection) => [...conn(connection).transactions.values()],
    notify: async (target, connection, eventId = randomUUID()) => {
      const body = JSON.stringify({ type: 'connection.synced', id: eventId, connection_id: connection });
      const signature = createHmac('sha256', target.secret).update(body).digest('hex');
      const res = await fetch(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-webhook-signature': signature,
          'x-event-id': eventId,
        },
        body,
      });
      await res.arrayBuffer();
      return res.status;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };

  const answer = (status: number, body: unknown) => ({ status, body: JSON.stringify(body) });

  const handle = (path: string, query: URLSearchParams, auth: string | undefined) => {
    const m = /^\/connections\/([^/]+)\/(changes|snapshot)$/.exec(path);
    if (!m) return answer(404, { error: 'not found' });
    const [, id, kind] = m as unknown as [string, string, 'changes' | 'snapshot'];
    const cursor = query.get('cursor') || null;
    const log = (status: number) => provider.requests.push({ connection: id, kind, cursor, status });
    if (auth !== `Bearer ${options.apiKey}`) {
      log(401);
      return answer(401, { error: 'bad api key' });
    }
    if (failing !== null) {
      log(failing);
      return answer(failing, { error: 'provider unavailable' });
    }
    log(200);
    const c = conn(id);
    if (kind === 'snapshot') {
      return answer(200, { accounts: [...c.accounts.values()], transactions: [...c.transactions.values()] });
    }
    const after = provider.ignoreCursor || cursor === null ? 0 : Number(cursor);
    const page = c.changes.filter((ch) => ch.seq > after).slice(0, pageSize);
    const out = {
      accounts: [] as Account[],
      transactions: [] as Transaction[],
      deleted: { accounts: [] as string[], transactions: [] as string[] },
      cursor: String(page.length > 0 ? page[page.length - 1]!.seq : after),
      hasMore: c.changes.some((ch) => ch.seq > (page[page.length - 1]?.seq ?? after)),
    };
    const seen = new Set<string>();
    for (const ch of [...page].reverse()) {
      const key = `${ch.kind}:${ch.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const item = ch.kind === 'accounts' ? c.accounts.get(ch.id) : c.transactions.get(ch.id);
      if (item) (out[ch.kind] as unknown[]).unshift(item);
      else out.deleted[ch.kind].unshift(ch.id);
    }
    return answer(200, out);
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://provider');
    const { status, body } = handle(url.pathname, url.searchParams, req.headers.authorization);
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    }, provider.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  provider.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return provider;
}

/** The syncbridge pull connector definition for this provider (config file or `POST /v1/connectors`). */
export function providerPullSpec(options: {
  name: string;
  tenant: string;
  baseUrl: string;
  apiKey: string;
  connections: Array<{
    id: string;
    priority?: 'critical' | 'high' | 'normal' | 'low';
    stalenessLimitMs?: number;
  }>;
  [extra: string]: unknown;
}) {
  const { baseUrl, apiKey, ...rest } = options;
  return {
    kind: 'pull',
    http: {
      baseUrl,
      headers: { Authorization: `Bearer ${apiKey}` },
      changesPath: '/connections/{{connection}}/changes?cursor={{cursor}}',
      snapshotPath: '/connections/{{connection}}/snapshot',
    },
    ...rest,
  };
}
