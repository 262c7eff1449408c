/**
 * The syncbridge quickstart as a function: two WebSocket clients of one tenant see each other's writes
 * live, and a client that was away resumes from its last seq and gets exactly what it missed.
 *
 *   1. mint two user tokens over REST with the admin key (POST /v1/auth/token)
 *   2. open two WebSocket connections (A and B) to /v1/realtime
 *   3. B subscribes to records:todos; A writes with `mutate`; B prints the live event
 *   4. B disconnects; A writes twice more
 *   5. B reconnects and subscribes with `since` = the last seq it saw: it gets exactly the two it missed
 *
 * It uses nothing but `fetch` and the `ws` package, so it doubles as a reference for the wire protocol
 * (docs/protocol.md). `index.ts` runs it from the command line; the test suite runs it against a server.
 */
import { randomBytes } from 'node:crypto';
import type { MutationResult } from '@syncbridge/protocol';
import WebSocket from 'ws';

export interface QuickstartOptions {
  /** The server's base URL, e.g. http://127.0.0.1:4025 */
  url: string;
  /** The admin key the server printed on its first start (or SYNCBRIDGE_ADMIN_KEY). */
  adminKey: string;
  /** Receives one line of transcript at a time. */
  log?: (line: string) => void;
  /** Tenant to work in. Default: demo */
  tenant?: string;
  /** Longest wait for any one reply, in ms. Default: 5000 */
  timeoutMs?: number;
}

/** An `event` frame as the server sends it (the fields the quickstart reads). */
export interface EventFrame {
  type: 'event';
  channel: string;
  seq: number;
  kind: 'record' | 'event';
  collection?: string;
  id?: string;
  op?: string;
  version?: number;
  data?: Record<string, unknown> | null;
  actor: string;
}

export interface QuickstartResult {
  tenant: string;
  /** What A's three writes got back, in order. */
  writes: MutationResult[];
  /** The event B received live for A's first write. */
  live: EventFrame;
  /** The seq B remembered when it disconnected (the `since` it resumed from). */
  resumedFrom: number;
  /** Every event B received after it resumed. */
  missed: EventFrame[];
  /** The transcript, line by line. */
  lines: string[];
}

type Frame = { type: string; rid?: string | number } & Record<string, unknown>;

/** A minimal protocol client: sends JSON frames, matches replies by `rid`, waits with a timeout. */
class Client {
  private readonly frames: Frame[] = [];
  private waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  private nextRid = 1;
  private closedWith: number | null = null;

  private constructor(
    readonly name: string,
    private readonly ws: WebSocket,
    private readonly timeoutMs: number,
  ) {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      this.frames.push(frame);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(frame)) return true;
        w.resolve(frame);
        return false;
      });
    });
    ws.on('close', (code) => {
      this.closedWith = code;
    });
  }

  /** Connects with the token at the upgrade (`?token=`) and waits for `welcome`. */
  static async connect(name: string, wsUrl: string, token: string, timeoutMs: number): Promise<Client> {
    const ws = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`);
    const client = new Client(name, ws, timeoutMs);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`${name}: upgrade refused with HTTP ${res.statusCode}`)),
      );
      ws.once('error', reject);
    });
    await client.waitFor((f) => f.type === 'welcome', 'welcome');
    return client;
  }

  waitFor(test: (f: Frame) => boolean, what: string): Promise<Frame> {
    const seen = this.frames.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        const closed = this.closedWith === null ? '' : ` (connection closed with ${this.closedWith})`;
        reject(new Error(`${this.name}: no ${what} within ${this.timeoutMs} ms${closed}`));
      }, this.timeoutMs);
      const done = (f: Frame) => {
        clearTimeout(timer);
        resolve(f);
      };
      this.waiters.push({ test, resolve: done });
    });
  }

  /** Sends a message with a fresh `rid` and resolves with the reply that carries it. */
  async request(message: Record<string, unknown>): Promise<Frame> {
    const rid = `${this.name}-${this.nextRid++}`;
    this.ws.send(JSON.stringify({ ...message, rid }));
    const reply = await this.waitFor((f) => f.rid === rid, `reply to ${message.type}`);
    if (reply.type === 'error') throw new Error(`${this.name}: ${reply.code}: ${reply.message}`);
    return reply;
  }

  events(channel: string): EventFrame[] {
    return this.frames.filter((f) => f.type === 'event' && f.channel === channel) as unknown as EventFrame[];
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.ws.once('close', resolve));
    this.ws.close(1000, 'bye');
    await closed;
  }

  terminate(): void {
    this.ws.terminate();
  }
}

async function mintToken(url: string, adminKey: string, tenant: string, user: string): Promise<string> {
  const res = await fetch(`${url}/v1/auth/token`, {
    method: 'POST',
    headers: { 'X-Api-Key': adminKey, 'Content-Type': 'application/json' },
    body: JSON.stringify({ tenant, user }),
  });
  const body = (await res.json()) as { token?: string; error?: { code: string; message: string } };
  if (!res.ok || !body.token) {
    throw new Error(`minting a token failed: HTTP ${res.status} ${body.error?.code}: ${body.error?.message}`);
  }
  return body.token;
}

function describe(e: EventFrame): string {
  return `seq ${e.seq} ${e.op} ${e.collection}/${e.id} v${e.version} ${JSON.stringify(e.data)} by ${e.actor}`;
}

export async function runQuickstart(options: QuickstartOptions): Promise<QuickstartResult> {
  const url = options.url.replace(/\/+$/, '');
  const wsUrl = `${url.replace(/^http/, 'ws')}/v1/realtime`;
  const tenant = options.tenant ?? 'demo';
  const timeoutMs = options.timeoutMs ?? 5000;
  const lines: string[] = [];
  const log = (line: string) => {
    lines.push(line);
    options.log?.(line);
  };
  // A mid is an idempotency key: the server remembers it forever, so every run needs fresh ones.
  const run = randomBytes(4).toString('hex');
  const channel = 'records:todos';
  const clients: Client[] = [];

  try {
    // 1. Tokens: one per user, minted with the admin key.
    const tokenA = await mintToken(url, options.adminKey, tenant, 'alice');
    const tokenB = await mintToken(url, options.adminKey, tenant, 'bob');
    log(`minted tokens for alice and bob in tenant "${tenant}"`);

    // 2. Two connections.
    const a = await Client.connect('A', wsUrl, tokenA, timeoutMs);
    clients.push(a);
    let b = await Client.connect('B', wsUrl, tokenB, timeoutMs);
    clients.push(b);
    log('A and B connected');

    // 3. B subscribes (live only: no `since`), A writes, B sees it.
    const subscribed = await b.request({ type: 'subscribe', channel });
    log(`B subscribed to ${channel} at cursor ${subscribed.cursor}`);
    const write = async (mid: string, op: string, id: string, data: Record<string, unknown>) => {
      const reply = await a.request({
        type: 'mutate',
        mutations: [{ mid, collection: 'todos', id, op, data }],
      });
      const result = (reply.results as MutationResult[])[0]!;
      if (result.status !== 'applied') throw new Error(`A: ${op} ${id} was ${result.status}`);
      log(`A ${op} todos/${id} -> ${result.status}, version ${result.version}, seq ${result.seq}`);
      return result;
    };
    const writes: MutationResult[] = [];
    writes.push(await write(`${run}-1`, 'put', 'milk', { title: 'Buy milk', done: false }));
    const live = (await b.waitFor(
      (f) => f.type === 'event' && f.channel === channel && f.seq === writes[0]!.seq,
      'live event',
    )) as unknown as EventFrame;
    log(`B got live: ${describe(live)}`);

    // 4. B goes away, remembering the last seq it processed. A keeps writing.
    const resumedFrom = Math.max(...b.events(channel).map((e) => e.seq));
    await b.close();
    log(`B disconnected (last seq ${resumedFrom})`);
    writes.push(await write(`${run}-2`, 'patch', 'milk', { done: true }));
    writes.push(await write(`${run}-3`, 'put', 'bread', { title: 'Buy bread', done: false }));

    // 5. B comes back and resumes from its last seq: the backlog, then live, without gap or duplicate.
    b = await Client.connect('B', wsUrl, tokenB, timeoutMs);
    clients.push(b);
    const resumed = await b.request({ type: 'subscribe', channel, since: resumedFrom });
    log(`B reconnected and subscribed with since ${resumedFrom} (cursor ${resumed.cursor})`);
    const lastSeq = writes[writes.length - 1]!.seq!;
    await b.waitFor((f) => f.type === 'event' && f.channel === channel && f.seq === lastSeq, 'missed events');
    // A ping round trip: anything else the server had for B would have arrived before the pong.
    await b.request({ type: 'ping' });
    const missed = b.events(channel);
    for (const e of missed) log(`B caught up: ${describe(e)}`);
    log(`B received ${missed.length} missed event(s)`);
    return { tenant, writes, live, resumedFrom, missed, lines };
  } finally {
    await Promise.all(
      clients.map((c) =>
        Promise.race([c.close(), new Promise((r) => setTimeout(r, 1000))]).finally(() => c.terminate()),
      ),
    );
  }
}
