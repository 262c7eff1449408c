/**
 * PostgreSQL bus (LISTEN/NOTIFY on one channel), so a cluster can run on PostgreSQL alone. One
 * connection listens and publishes; like Redis pub/sub, notifications sent while a node is
 * disconnected are lost to it, and on reconnect the node resyncs from the store. NOTIFY refuses
 * payloads of 8000 bytes or more: a larger message goes as numbered parts in one transaction
 * (delivered together, in order) and is put back together by the receivers.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { BaseBus } from './base-bus.ts';

/** Bytes of one notification, header included; PostgreSQL's limit is 8000. */
export const NOTIFY_PART_BYTES = 7000;
/** Parts of a message not complete after this long are forgotten (their sender's connection broke). */
const PARTIAL_TTL_MS = 30_000;

/** Splits a wire message into `~node id index count ` headed parts of at most `max` UTF-8 bytes. */
export function splitForNotify(wire: string, node: string, max = NOTIFY_PART_BYTES): string[] {
  const bytes = Buffer.from(wire);
  if (bytes.length <= max) return [wire];
  const header = (i: number, n: number, id: string) => `~${node} ${id} ${i} ${n} `;
  const id = randomUUID();
  const room = max - Buffer.byteLength(header(9999, 9999, id));
  const slices: Buffer[] = [];
  for (let start = 0; start < bytes.length; ) {
    let end = Math.min(start + room, bytes.length);
    // Never cut inside a character: back off past UTF-8 continuation bytes (10xxxxxx).
    while (end < bytes.length && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
    slices.push(bytes.subarray(start, end));
    start = end;
  }
  return slices.map((slice, i) => header(i, slices.length, id) + slice.toString());
}

export class PostgresBus extends BaseBus {
  readonly kind = 'postgres';
  private client: pg.Client | null = null;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Queries go one after another on the connection (in publish order; pg's own queue is deprecated). */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly partial = new Map<string, { parts: string[]; left: number; at: number }>();

  private constructor(
    private readonly url: string,
    private readonly channel: string,
    node: string,
    logger?: Logger,
  ) {
    super(node, logger);
  }

  /** Connects and listens; rejects when the first connection fails (the caller retries the start). */
  static async connect(
    url: string,
    node: string,
    logger?: Logger,
    channel = 'syncbridge',
  ): Promise<PostgresBus> {
    const bus = new PostgresBus(url, channel, node, logger);
    bus.client = await bus.open();
    return bus;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.url,
      // Names the channel, so an operator (or a test) can find this node's bus connections.
      application_name: `syncbridge-bus ${this.channel}`.slice(0, 63),
      connectionTimeoutMillis: 5_000,
    });
    client.on('notification', (n) => n.channel === this.channel && n.payload && this.arrived(n.payload));
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
      return client;
    } catch (err) {
      client.removeAllListeners();
      client.on('error', () => {});
      await client.end().catch(() => {});
      throw err;
    }
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = null;
    client.end().catch(() => {});
    if (this.closed) return;
    this.logger?.warn({ err: err?.message }, 'postgres bus: connection lost; reconnecting');
    this.retry(250);
  }

  private retry(delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      this.open().then(
        (client) => {
          if (this.closed) return void client.end().catch(() => {});
          this.client = client;
          this.logger?.info('postgres bus: reconnected');
          this.reconnected();
        },
        () => this.retry(Math.min(delayMs * 2, 5_000)),
      );
    }, delayMs);
    this.retryTimer.unref();
  }

  protected async send(wire: string): Promise<void> {
    // Disconnected: the message is lost, as on any broker; receivers resync from the store.
    const client = this.client;
    if (!client) return;
    const parts = splitForNotify(wire, this.nodeId);
    await this.serially(() =>
      parts.length === 1
        ? client.query('SELECT pg_notify($1, $2)', [this.channel, wire])
        : client.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [this.channel, parts]),
    );
  }

  private serially<T>(query: () => Promise<T>): Promise<T> {
    const next = this.queue.then(query);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private arrived(payload: string): void {
    if (!payload.startsWith('~')) {
      this.receive(payload);
      return;
    }
    const [node, id, index, count] = payload.slice(1).split(' ', 4);
    if (node === this.nodeId || !id || index === undefined || count === undefined) return;
    const text = payload.slice(1 + node!.length + id.length + index.length + count.length + 4);
    const now = Date.now();
    let set = this.partial.get(id);
    if (!set) {
      const n = Number(count);
      if (!Number.isInteger(n) || n < 1 || n > 1024) return;
      for (const [key, old] of this.partial) if (now - old.at > PARTIAL_TTL_MS) this.partial.delete(key);
      set = { parts: new Array<string>(n), left: n, at: now };
      this.partial.set(id, set);
    }
    const i = Number(index);
    if (!(i >= 0 && i < set.parts.length) || set.parts[i] !== undefined) return;
    set.parts[i] = text;
    if (--set.left > 0) return;
    this.partial.delete(id);
    this.receive(set.parts.join(''));
  }

  async ping(): Promise<boolean> {
    const client = this.client;
    if (!client) return false;
    try {
      await this.serially(() => client.query('SELECT 1'));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = null;
    this.forgetSubscribers();
    await client?.end().catch(() => {});
  }
}

/** Whether a failed first connection may succeed later (refused, starting up), rather than a bad setting. */
export function postgresFailureIsTransient(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    (typeof code === 'string' &&
      [
        'ECONNREFUSED',
        'ETIMEDOUT',
        'ECONNRESET',
        'EHOSTUNREACH',
        'EAI_AGAIN',
        '57P01',
        '57P03',
        '53300',
      ].includes(code)) ||
    (err instanceof Error && /timeout|Connection terminated/i.test(err.message))
  );
}
