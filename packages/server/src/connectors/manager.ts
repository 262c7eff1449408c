/**
 * The connector manager: builds connectors from their definitions (config file, REST, code), starts and
 * stops them, hands each its context (its tenant's write path as `connector:<name>`, topics, state),
 * and answers for them: status, triggers, feed subscriptions. Connectors defined over REST are stored
 * and come back after a restart; those of the config file or code can be read, not changed, over REST.
 *
 * On several nodes each connector runs on the node holding its lease (leases.ts); on the others it
 * stands by (`role: standby`) and is started there when the lease comes free. A feed's topic values
 * reach the other nodes through the topic relay. REST definitions another node made, changed or removed
 * are read from the shared store on its bus notice and at every lease check: every node knows them all.
 *
 * A definition's templates get only what its origin allows (template-policy.ts): a config-file one the
 * environment variables `connectors.env` lists, any one its tenant's connector secrets. It must never
 * build a definition from REST whose templates name the server's environment.
 */
import type { LogEvent } from '@syncbridge/protocol';
import { SyncError } from '../core/errors.ts';
import type { TopicHub } from '../realtime/topic-hub.ts';
import { AddressPolicy } from '../webhooks/ssrf.ts';
import { CircuitRegistry } from './circuit-breaker.ts';
import { ConnectorBuilder } from './connector-builder.ts';
import { connectorContext } from './connector-context.ts';
import {
  type ConnectorOrigin,
  type ConnectorStatus,
  type Entry,
  notRunning,
  statusOf,
} from './connector-status.ts';
import { assertMutable, checkAddresses, checkSecrets } from './definition-checks.ts';
import { FeedSubscriptions } from './feed-subscriptions.ts';
import { canonicalJson } from './json-path.ts';
import type { ConnectorManagerDeps } from './manager-deps.ts';
import type { ConnectorSecrets } from './secrets.ts';
import { standBy } from './stand-by.ts';
import type { TickQuery } from './store.ts';
import { tickHistory } from './tick-history.ts';
import {
  type Connector,
  type ConnectorSpec,
  ConnectorSpecError,
  type Tick,
  type TriggerRequest,
  type TriggerResult,
} from './types.ts';

export type { ConnectorOrigin, ConnectorStatus } from './connector-status.ts';
export type { ConnectorManagerDeps } from './manager-deps.ts';

export class ConnectorManager {
  private readonly entries = new Map<string, Entry>();
  private readonly circuitRegistry: CircuitRegistry;
  private readonly builder: ConnectorBuilder;
  private readonly addresses: AddressPolicy;
  private closed = false;
  private leaseTimer: NodeJS.Timeout | null = null;
  private leaseRound: Promise<void> | null = null;
  /** Another round was asked for while one ran (a notice may have come after its read). */
  private recheck = false;
  /** Serializes changes of REST definitions: this node's REST calls and the reads of other nodes' changes. */
  private definitions: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ConnectorManagerDeps) {
    this.circuitRegistry = new CircuitRegistry(deps.logger);
    this.builder = new ConnectorBuilder(deps, this.circuitRegistry);
    this.addresses = new AddressPolicy(deps.allowPrivate ?? []);
    deps.leases.onLost(() => void this.leasesLost());
    deps.notices?.onChange(() => this.checkNow());
  }

  /**
   * Hands committed events of a tenant to its running connectors: this node's commits, and those of
   * other nodes as the bus brings them (a provider webhook may land on any node).
   */
  hear(tenant: string, events: readonly LogEvent[]): void {
    for (const entry of this.entries.values()) {
      const { connector } = entry;
      if (!entry.started || connector.tenant !== tenant || !connector.onEvent) continue;
      for (const event of events) {
        try {
          connector.onEvent(event);
        } catch (err) {
          this.deps.logger.warn({ err, connector: connector.name }, 'connector onEvent failed');
        }
      }
    }
  }

  /** True when a connector running here publishes the tenant's topic. */
  publishesHere(tenant: string, topic: string): boolean {
    for (const entry of this.entries.values()) {
      const { connector } = entry;
      if (entry.started && connector.tenant === tenant && connector.feed?.topic === topic) return true;
    }
    return false;
  }

  /** The topic hub its feeds publish to (latest values, depth, symbols). */
  get topics(): TopicHub {
    return this.deps.topics;
  }

  /** Every provider circuit, for metrics. */
  circuits(): Array<{ tenant: string; provider: string; state: string }> {
    return this.circuitRegistry.circuits();
  }

  private key(tenant: string, name: string): string {
    return `${tenant}\u0000${name}`;
  }

  /** The connector secrets of the tenants (REST: set, list, delete). */
  get secrets(): ConnectorSecrets {
    return this.deps.secrets;
  }

  private build(spec: ConnectorSpec, origin: 'config' | 'api'): Connector {
    return this.builder.build(spec, origin);
  }

  /** Starts the connectors of the config file, those stored from REST, and those given in code. */
  async start(): Promise<void> {
    const specs: Array<[ConnectorSpec, 'config' | 'api']> = this.deps.settings.instances.map((s) => [
      s,
      'config',
    ]);
    for (const stored of await this.deps.store.listConnectors()) specs.push([stored.spec, 'api']);
    for (const [spec, origin] of specs) {
      if (this.entries.has(this.key(spec.tenant, spec.name))) {
        this.deps.logger.warn(
          { tenant: spec.tenant, connector: spec.name },
          'connector defined twice; the first wins',
        );
        continue;
      }
      let connector: Connector;
      try {
        connector = this.build(spec, origin);
      } catch (err) {
        if (origin === 'config') throw err;
        this.deps.logger.error(
          { err, connector: spec.name },
          'stored connector definition is invalid; skipped',
        );
        continue;
      }
      await this.launch(this.add(connector, spec, origin));
    }
    for (const connector of this.deps.instances ?? []) {
      if (this.entries.has(this.key(connector.tenant, connector.name))) {
        throw new ConnectorSpecError([
          `connector ${connector.name} of tenant ${connector.tenant} is defined twice`,
        ]);
      }
      await this.launch(this.add(connector, null, 'code'));
    }
    this.leaseTimer = setInterval(() => this.checkNow(), this.deps.leaseCheckMs);
    this.leaseTimer.unref();
  }

  /** A lease check (and read of the stored definitions) now, or right after the one running. */
  private checkNow(): void {
    if (this.closed || !this.leaseTimer) return;
    if (this.leaseRound) {
      this.recheck = true;
      return;
    }
    this.recheck = false;
    this.leaseRound = this.leaseCheck().finally(() => {
      this.leaseRound = null;
      if (this.recheck) this.checkNow();
    });
  }

  /** Checks the held leases, then starts the standing-by connectors whose lease came free. */
  private async leaseCheck(): Promise<void> {
    try {
      await this.serialized(() => this.syncDefinitions());
      await this.deps.leases.check();
      for (const entry of this.entries.values()) {
        if (this.closed) return;
        if (!entry.leader) await this.launch(entry);
      }
    } catch (err) {
      this.deps.logger.warn({ err }, 'connector lease check failed; retrying');
    }
  }

  /** A change of this node's REST definitions, serialized, then told to the other nodes. */
  private async announced<T>(fn: () => Promise<T>): Promise<T> {
    const result = await this.serialized(fn);
    this.deps.notices?.announce();
    return result;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.definitions.then(fn, fn);
    this.definitions = run.catch(() => undefined);
    return run;
  }

  /**
   * Takes in the REST definitions other nodes made, changed or removed (the store is shared): a new or
   * changed one is built and launched here (it stands by while another node holds its lease), a removed
   * one is stopped. Config-file and code connectors of the same name keep precedence.
   */
  private async syncDefinitions(): Promise<void> {
    const stored = await this.deps.store.listConnectors();
    const present = new Set<string>();
    for (const { spec } of stored) {
      if (this.closed) return;
      const key = this.key(spec.tenant, spec.name);
      present.add(key);
      const entry = this.entries.get(key);
      if (entry && (entry.origin !== 'api' || canonicalJson(entry.spec) === canonicalJson(spec))) continue;
      let connector: Connector;
      try {
        connector = this.build(spec, 'api');
      } catch (err) {
        this.deps.logger.error(
          { err, connector: spec.name },
          'stored connector definition is invalid; skipped',
        );
        continue;
      }
      if (entry) await this.stopEntry(entry);
      await this.launch(this.add(connector, spec, 'api'));
    }
    for (const [key, entry] of [...this.entries]) {
      if (entry.origin !== 'api' || present.has(key)) continue;
      await this.stopEntry(entry);
      this.entries.delete(key);
    }
  }

  /** The database connection holding the leases dropped: another node may run them now. */
  private async leasesLost(): Promise<void> {
    const led = [...this.entries.values()].filter((e) => e.leader);
    if (led.length === 0) return;
    this.deps.logger.warn(
      { connectors: led.map((e) => e.connector.name) },
      'connector leases lost (database connection dropped); standing by',
    );
    for (const entry of led) {
      entry.leader = false;
      await this.stopEntry(entry, false);
    }
  }

  private add(connector: Connector, spec: ConnectorSpec | null, origin: ConnectorOrigin): Entry {
    const entry: Entry = { connector, spec, origin, started: false, subscriptions: null, leader: false };
    this.entries.set(this.key(connector.tenant, connector.name), entry);
    return entry;
  }

  private async launch(entry: Entry): Promise<void> {
    if (entry.spec?.enabled === false || this.closed || entry.started) return;
    const { connector } = entry;
    if (!entry.leader) {
      let acquired = false;
      try {
        acquired = await this.deps.leases.tryAcquire(connector.tenant, connector.name);
      } catch (err) {
        this.deps.logger.warn({ err, connector: connector.name }, 'could not ask for the connector lease');
      }
      if (this.closed || this.entries.get(this.key(connector.tenant, connector.name)) !== entry) {
        if (acquired) await this.deps.leases.release(connector.tenant, connector.name).catch(() => {});
        return;
      }
      if (!acquired) {
        await standBy(entry, this.deps);
        return;
      }
      entry.leader = true;
      entry.standingBy = false;
    }
    const ctx = connectorContext(connector, this.deps);
    entry.starting = true;
    try {
      await connector.start(ctx);
      entry.started = true;
      entry.startError = undefined;
      if (connector.feed) {
        entry.subscriptions = new FeedSubscriptions(connector.feed, ctx.state);
        await entry.subscriptions.load();
      }
    } catch (err) {
      entry.startError = (err as Error).message;
      this.deps.logger.error({ err, connector: connector.name }, 'connector failed to start');
    } finally {
      entry.starting = false;
    }
  }

  private entry(tenant: string, name: string): Entry {
    const entry = this.entries.get(this.key(tenant, name));
    if (!entry) throw new SyncError('NOT_FOUND', `no connector ${name}`);
    return entry;
  }

  private statusOf(entry: Entry): ConnectorStatus {
    return statusOf(entry, this.deps.topics);
  }

  list(tenant: string): ConnectorStatus[] {
    return [...this.entries.values()]
      .filter((e) => e.connector.tenant === tenant)
      .map((e) => this.statusOf(e))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Every connector of every tenant (metrics). */
  all(): ConnectorStatus[] {
    return [...this.entries.values()].map((e) => this.statusOf(e));
  }

  status(tenant: string, name: string): ConnectorStatus {
    return this.statusOf(this.entry(tenant, name));
  }

  /** Defines and starts a connector (REST); it is stored and comes back after a restart. */
  create(tenant: string, spec: Record<string, unknown>): Promise<ConnectorStatus> {
    return this.announced(() => this.createNow(tenant, spec));
  }

  private async createNow(tenant: string, spec: Record<string, unknown>): Promise<ConnectorStatus> {
    const name = String(spec.name ?? '');
    if (this.entries.has(this.key(tenant, name))) throw new SyncError('CONFLICT', `connector ${name} exists`);
    const full = this.builder.checkRest(tenant, name, spec);
    await checkSecrets(this.deps.secrets, full);
    await checkAddresses(this.addresses, full);
    await this.deps.store.putConnector(tenant, name, full);
    const entry = this.add(this.build(full, 'api'), full, 'api');
    await this.launch(entry);
    return this.statusOf(entry);
  }

  /** Replaces a REST-defined connector's definition and restarts it (its state, e.g. cursors, stays). */
  replace(tenant: string, name: string, spec: Record<string, unknown>): Promise<ConnectorStatus> {
    return this.announced(() => this.replaceNow(tenant, name, spec));
  }

  private async replaceNow(
    tenant: string,
    name: string,
    spec: Record<string, unknown>,
  ): Promise<ConnectorStatus> {
    const entry = this.entry(tenant, name);
    assertMutable(entry);
    const full = this.builder.checkRest(tenant, name, spec);
    await checkSecrets(this.deps.secrets, full);
    await checkAddresses(this.addresses, full);
    const next = this.build(full, 'api');
    await this.stopEntry(entry);
    await this.deps.store.putConnector(tenant, name, full);
    const fresh = this.add(next, full, 'api');
    await this.launch(fresh);
    return this.statusOf(fresh);
  }

  remove(tenant: string, name: string): Promise<void> {
    return this.announced(() => this.removeNow(tenant, name));
  }

  private async removeNow(tenant: string, name: string): Promise<void> {
    const entry = this.entry(tenant, name);
    assertMutable(entry);
    await this.stopEntry(entry);
    await entry.connector.remove?.().catch((err: unknown) => {
      this.deps.logger.warn({ err, connector: name }, 'connector could not free what it holds upstream');
    });
    this.entries.delete(this.key(tenant, name));
    await this.deps.store.deleteConnector(tenant, name);
    await this.deps.store.deleteState(tenant, name);
  }

  /** Stops it here; gives its lease up (unless `release` is false: the lease is gone already). */
  private async stopEntry(entry: Entry, release = true): Promise<void> {
    if (entry.started) {
      entry.started = false;
      try {
        await entry.connector.stop();
      } catch (err) {
        this.deps.logger.warn({ err, connector: entry.connector.name }, 'connector failed to stop cleanly');
      }
    }
    if (entry.leader && release) {
      entry.leader = false;
      const { tenant, name } = entry.connector;
      await this.deps.leases.release(tenant, name).catch((err: unknown) => {
        this.deps.logger.warn({ err, connector: name }, 'could not release the connector lease');
      });
    }
  }

  /**
   * Runs a connector now: for a provider webhook (call it from an inbound mapping) or
   * `POST /v1/connectors/{name}/trigger`. Resolves with the run reports.
   */
  async trigger(tenant: string, name: string, request: TriggerRequest = {}): Promise<TriggerResult> {
    const entry = this.entry(tenant, name);
    const { connector } = entry;
    if (!connector.trigger) {
      const why = `connector ${name} (${connector.kind}) streams continuously and cannot be triggered`;
      throw new SyncError('BAD_REQUEST', why);
    }
    if (!entry.started) throw new SyncError('UNAVAILABLE', notRunning(entry));
    try {
      return await connector.trigger(request);
    } catch (err) {
      if (err instanceof ConnectorSpecError) throw new SyncError('NOT_FOUND', err.message);
      throw err;
    }
  }

  /** The REST subscriptions of a feed connector. */
  subscriptions(
    tenant: string,
    name: string,
  ): { feed: NonNullable<Connector['feed']>; subs: FeedSubscriptions } {
    const entry = this.entry(tenant, name);
    const feed = entry.connector.feed;
    if (!feed) throw new SyncError('NOT_FOUND', `connector ${name} is not a feed (it has no symbols)`);
    if (!entry.subscriptions) throw new SyncError('UNAVAILABLE', notRunning(entry));
    return { feed, subs: entry.subscriptions };
  }

  /** The topic a feed connector publishes to. */
  topicOf(tenant: string, name: string): string {
    const feed = this.entry(tenant, name).connector.feed;
    if (!feed) throw new SyncError('NOT_FOUND', `connector ${name} is not a feed`);
    return feed.topic;
  }

  /** A feed symbol's ticks in a time range (see tickHistory). */
  history(tenant: string, name: string, symbol: string, query: TickQuery): Promise<Tick[]> {
    const { store, ticks, topics } = this.deps;
    return tickHistory({ store, ticks, topics }, tenant, this.topicOf(tenant, name), symbol, query);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    await this.leaseRound;
    await Promise.all([...this.entries.values()].map((e) => this.stopEntry(e)));
    await this.deps.leases.close();
    await this.deps.ticks.close();
    this.deps.topics.close();
  }
}
