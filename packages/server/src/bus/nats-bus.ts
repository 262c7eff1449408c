/**
 * NATS bus (core pub/sub on one subject). Like Redis pub/sub, messages published while a node is
 * disconnected are lost to it; on reconnect the node resyncs from the store.
 */
import { connect, type NatsConnection, StringCodec } from 'nats';
import type { Logger } from 'pino';
import { BaseBus } from './base-bus.ts';

const codec = StringCodec();

export class NatsBus extends BaseBus {
  readonly kind = 'nats';

  private constructor(
    private readonly nc: NatsConnection,
    node: string,
    logger: Logger,
    private readonly subject: string,
  ) {
    super(node, logger);
  }

  static async connect(
    url: string,
    node: string,
    logger: Logger,
    subject = 'syncbridge.events',
  ): Promise<NatsBus> {
    const parsed = new URL(url);
    const nc = await connect({
      servers: `${parsed.hostname}:${parsed.port || 4222}`,
      user: parsed.username || undefined,
      pass: parsed.password || undefined,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // The first connection: a start retries it (startup/reach.ts), so one attempt must not take long.
      timeout: 5_000,
    });
    const bus = new NatsBus(nc, node, logger, subject);
    bus.listen();
    return bus;
  }

  private listen(): void {
    const subscription = this.nc.subscribe(this.subject);
    void (async () => {
      for await (const msg of subscription) this.receive(codec.decode(msg.data));
    })();
    void (async () => {
      for await (const status of this.nc.status()) {
        if (status.type === 'reconnect') this.reconnected();
        else if (status.type === 'disconnect') this.logger?.warn('nats bus: disconnected');
      }
    })();
  }

  protected send(wire: string): void {
    this.nc.publish(this.subject, codec.encode(wire));
  }

  async ping(): Promise<boolean> {
    try {
      await this.nc.flush();
      return !this.nc.isClosed();
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}

/** Whether a failed first connection may succeed later (refused, timed out), rather than a bad setting. */
export function natsFailureIsTransient(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    (typeof code === 'string' &&
      ['CONNECTION_REFUSED', 'CONNECTION_TIMEOUT', 'TIMEOUT', 'CONNECTION_DRAINING', 'DISCONNECT'].includes(
        code,
      )) ||
    (err instanceof Error && /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN/.test(err.message))
  );
}
