/**
 * The two platforms of the bank-trading bridge as small local HTTP services: BFC (the bank) and Vyomo
 * (the trading engine). Each receives syncbridge's webhooks at POST /webhooks/syncbridge, checks both
 * signatures against the raw body (Standard Webhooks with the `standardwebhooks` library, and the hex
 * HMAC in X-Webhook-Signature), ignores a webhook-id it has already handled, and keeps what it received.
 * A platform can go down (stop listening) and come back on the same port.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedEvent {
  webhookId: string;
  type: string;
  seq: number;
  source?: string;
  data: Record<string, unknown>;
}

function hexMatches(secret: string, rawBody: string, header: string | string[] | undefined): boolean {
  const expected = Buffer.from(createHmac('sha256', secret).update(rawBody).digest('hex'));
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  return value.split(',').some((sig) => {
    const given = Buffer.from(sig.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export class Platform {
  /** Events handled, in the order they arrived, each once. */
  readonly received: ReceivedEvent[] = [];
  /** Requests refused because a signature did not verify. */
  refused = 0;
  /** Requests for a webhook-id handled before (a retry after a lost answer). */
  duplicates = 0;
  private secret: string | null = null;
  private server: Server | null = null;
  private port = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly name: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/webhooks/syncbridge`;
  }

  /** The endpoint's secret, as syncbridge showed it at registration. */
  useSecret(secret: string): void {
    this.secret = secret;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = this.handle(Buffer.concat(chunks).toString('utf8'), req.headers);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Goes down: stops listening and drops every open connection. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(rawBody: string, headers: IncomingHttpHeaders): number {
    const secret = this.secret;
    if (!secret) return 503;
    let event: ReceivedEvent & { id: string };
    try {
      const format = secret.startsWith('whsec_') ? undefined : ({ format: 'raw' } as const);
      event = new Webhook(secret, format).verify(rawBody, headers as Record<string, string>) as typeof event;
    } catch {
      this.refused += 1;
      return 401;
    }
    if (!hexMatches(secret, rawBody, headers['x-webhook-signature'])) {
      this.refused += 1;
      return 401;
    }
    const webhookId = String(headers['webhook-id']);
    if (this.received.some((e) => e.webhookId === webhookId)) {
      this.duplicates += 1;
      return 204;
    }
    this.received.push({
      webhookId,
      type: event.type,
      seq: event.seq,
      ...(event.source ? { source: event.source } : {}),
      data: event.data,
    });
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w();
    return 204;
  }

  /** Resolves once `n` events have been handled, or fails after `ms`. */
  async waitFor(n: number, ms = 10_000): Promise<ReceivedEvent[]> {
    const deadline = Date.now() + ms;
    while (this.received.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name} received ${this.received.length} of ${n} events`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received.slice(0, n);
  }
}
