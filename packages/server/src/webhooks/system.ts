/**
 * The webhook subsystem as the composition root sees it: the outbox hook for the log writer, the
 * delivery worker, the REST-facing services and the inbound receiver, built from the config.
 */
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/config.ts';
import type { LogWriter } from '../log/log-writer.ts';
import type { Store } from '../store/types.ts';
import { type AttemptObservation, WebhookDispatcher } from './dispatcher.ts';
import { SyncHealth } from './health.ts';
import { type InboundMapper, InboundReceiver } from './inbound.ts';
import { WebhookLedger } from './ledger.ts';
import { WebhookRegistry } from './registry.ts';
import { parseSchedule } from './retry.ts';
import { WebhookSender } from './sender.ts';
import { WebhookService } from './service.ts';
import { AddressPolicy } from './ssrf.ts';
import type { NewDelivery, Outbox } from './types.ts';

export class WebhookSystem {
  readonly registry: WebhookRegistry;
  readonly dispatcher: WebhookDispatcher;
  readonly service: WebhookService;
  readonly health: SyncHealth;
  readonly outbox: Outbox;
  private readonly sender: WebhookSender;
  private inboundReceiver: InboundReceiver | null = null;

  constructor(
    private readonly config: ServerConfig,
    store: Store,
    logger: Logger,
    observer: { attempted?: (attempt: AttemptObservation) => void } = {},
  ) {
    const policy = new AddressPolicy(config.webhookAllowPrivate);
    this.registry = new WebhookRegistry(store.webhooks);
    this.sender = new WebhookSender(policy, config.webhookTimeoutMs);
    this.dispatcher = new WebhookDispatcher({
      ledger: new WebhookLedger(store.webhooks),
      registry: this.registry,
      sender: this.sender,
      logger,
      node: config.nodeId,
      schedule: parseSchedule(config.webhookRetrySchedule),
      timeoutMs: config.webhookTimeoutMs,
      disableAfter: config.webhookDisableAfterFailures,
      pollMs: config.webhookPollMs,
      leaseMs: config.webhookLeaseMs,
      onAttempt: observer.attempted,
    });
    this.service = new WebhookService({
      store,
      registry: this.registry,
      dispatcher: this.dispatcher,
      policy,
      defaultConcurrency: config.webhookConcurrency,
    });
    this.health = new SyncHealth(store, this.registry, this.dispatcher);
    this.outbox = {
      sync: (tenant, hooksVersion) => this.registry.sync(tenant, hooksVersion),
      plan: (tenant, events) => {
        const deliveries = this.registry.plan(tenant, events);
        this.dispatcher.reserve(deliveries);
        return deliveries;
      },
      committed: (deliveries: NewDelivery[]) => this.dispatcher.notify(deliveries),
      abandoned: (deliveries: NewDelivery[]) => this.dispatcher.abandon(deliveries),
    };
  }

  /** Loads the endpoints (the outbox needs them before the first write) and starts the worker. */
  async start(): Promise<void> {
    await this.registry.load();
    await this.dispatcher.start();
  }

  /** The inbound receiver, publishing through the writer. */
  inbound(writer: LogWriter, mappers: Record<string, InboundMapper> = {}): InboundReceiver {
    this.inboundReceiver ??= new InboundReceiver(this.config.inbound, writer, mappers);
    return this.inboundReceiver;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
    await this.sender.close();
  }
}
