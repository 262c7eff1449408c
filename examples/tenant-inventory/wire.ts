/**
 * The two ways the inventory example talks to syncbridge, with nothing but `fetch` and `ws`:
 * a WebSocket client of the realtime protocol (docs/protocol.md) and a small REST helper (docs/rest.md).
 */
import type { LogEvent, SyncRecord } from '@syncbridge/protocol';
import WebSocket from 'ws';

export type Frame = { type: string; rid?: string | number } & Record<string, unknown>;

/** An `event` frame: a log entry plus the channel it was delivered on. */
export type EventFrame = LogEvent & { type: 'event'; channel: string };

/** One user's WebSocket connection: sends JSON frames, matches replies by `rid`, waits with a timeout. */
export class RealtimeClient {
  private readonly frames: Frame[] = [];
  private waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  private nextRid = 1;

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
    ws.on('error', () => undefined);
  }

  /** Connects with the token at the upgrade (`?token=`) and waits for `welcome`. */
  static async connect(
    name: string,
    wsUrl: string,
    token: string,
    timeoutMs: number,
  ): Promise<RealtimeClient> {
    const ws = new WebSocket(`${wsUrl}?token=${encodeURIComponent(token)}`);
    const client = new RealtimeClient(name, ws, timeoutMs);
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

  /** The first frame (already received or still to come) that passes `test`. */
  waitFor(test: (f: Frame) => boolean, what: string): Promise<Frame> {
    const seen = this.frames.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`${this.name}: no ${what} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const done = (f: Frame) => {
        clearTimeout(timer);
        resolve(f);
      };
      this.waiters.push({ test, resolve: done });
    });
  }

  /** Sends a message with a fresh `rid`; resolves with the reply carrying it (an `error` reply throws). */
  async request(message: Record<string, unknown>): Promise<Frame> {
    const rid = `${this.name}-${this.nextRid++}`;
    this.ws.send(JSON.stringify({ ...message, rid }));
    const reply = await this.waitFor((f) => f.rid === rid, `reply to ${message.type}`);
    if (reply.type === 'error') throw new Error(`${this.name}: ${reply.code}: ${reply.message}`);
    return reply;
  }

  /**
   * Subscribes with `snapshot: true` and collects the snapshot (it may come in several frames):
   * the current records of the channel, then live events from the snapshot's cursor on.
   */
  async subscribeWithSnapshot(channel: string): Promise<{ records: SyncRecord[]; cursor: number }> {
    await this.request({ type: 'subscribe', channel, snapshot: true });
    await this.waitFor((f) => f.type === 'snapshot' && f.channel === channel && f.done === true, 'snapshot');
    const parts = this.frames.filter((f) => f.type === 'snapshot' && f.channel === channel);
    return {
      records: parts.flatMap((f) => f.records as SyncRecord[]),
      cursor: parts[parts.length - 1]!.cursor as number,
    };
  }

  events(channel?: string): EventFrame[] {
    return this.frames.filter(
      (f) => f.type === 'event' && (channel === undefined || f.channel === channel),
    ) as unknown as EventFrame[];
  }

  /** Waits for the event with this seq on a channel. */
  waitForSeq(channel: string, seq: number): Promise<EventFrame> {
    return this.waitFor(
      (f) => f.type === 'event' && f.channel === channel && f.seq === seq,
      `event seq ${seq} on ${channel}`,
    ) as unknown as Promise<EventFrame>;
  }

  frameList(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((resolve) => this.ws.once('close', resolve));
    this.ws.close(1000, 'bye');
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    this.ws.terminate();
  }
}

export interface RestReply<T = Record<string, unknown>> {
  status: number;
  body: T;
}

/** REST calls with a user token (`Authorization: Bearer`) or the admin key for one tenant. */
export class Rest {
  constructor(
    private readonly url: string,
    private readonly auth: { token: string } | { adminKey: string; tenant: string },
  ) {}

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<RestReply<T>> {
    const headers: Record<string, string> =
      'token' in this.auth
        ? { Authorization: `Bearer ${this.auth.token}` }
        : { 'X-Api-Key': this.auth.adminKey, 'X-Tenant': this.auth.tenant };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as T };
  }

  /** Like `call`, but a status other than 2xx throws with the server's error. */
  async ok<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const reply = await this.call<T>(method, path, body);
    if (reply.status >= 300) {
      const error = (reply.body as { error?: { code: string; message: string } }).error;
      throw new Error(`${method} ${path}: HTTP ${reply.status} ${error?.code}: ${error?.message}`);
    }
    return reply.body;
  }
}

/** Mints a user token with the admin key (POST /v1/auth/token). */
export async function mintToken(
  url: string,
  adminKey: string,
  tenant: string,
  user: string,
  roles: string[] = [],
  claims?: Record<string, unknown>,
): Promise<string> {
  const res = await fetch(`${url}/v1/auth/token`, {
    method: 'POST',
    headers: { 'X-Api-Key': adminKey, 'Content-Type': 'application/json' },
    body: JSON.stringify({ tenant, user, roles, ...(claims ? { claims } : {}) }),
  });
  const body = (await res.json()) as { token?: string; error?: { code: string; message: string } };
  if (!res.ok || !body.token) {
    throw new Error(`minting a token failed: HTTP ${res.status} ${body.error?.code}: ${body.error?.message}`);
  }
  return body.token;
}
