/**
 * The connector manager: builds connectors from their definitions (config file, REST, code), starts and
 * stops them, hands each its context (its tenant's write path as `connector:<name>`, topics, state),
 * and answers for them: status, triggers, feed subscriptions. Connectors defined over REST are stored
 * and come back after a restart; those of the config file or code can be read, not changed, over REST.
 *
 * On several nodes each connector runs on the node holding its lease (leases.ts); on the others it
 * stands by (`role: standby`) and is started there when the lease comes free. A feed's topic values
 * reach the other nodes through the topic relay. Definitions made, changed or removed over REST on
 * another node are read from the shared store at every lease check, so every node knows every connector.
 *
 * A definition's templates get only what its origin allows (template-policy.ts): a config-file one the
 * environment variables `connectors.env` lists, any one its tenant's connector secrets. It must never
 * build a definition from REST whose templates name the server's environment.
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.ts';
import { SyncError } from '../core/errors.ts';
import type { LogWriter } from '../log/log-writer.ts';
import type { RecordReader } from '../log/ports.ts';
import { AddressPolicy } from '../webhooks/ssrf.ts';
import { CircuitBreaker, DEFAULT_CIRCUIT } from './circuit-breaker.ts';
import { assertValidSpec, type ConnectorsSettings, type PullOptions, type WsFeedOptions } from './config.ts';
import { FeedSubscriptions } from './feed-subscriptions.ts';
import { canonicalJson } from './json-path.ts';
import type { ConnectorLeases } from './leases.ts';
import { PullConnector } from './pull.ts';
import type { ConnectorSecrets } from './secrets.ts';
import type { ConnectorStore, TickQuery } from './store.ts';
import { envNames, secretNames, templatePolicyProblems } from './template-policy.ts';
import type { TickWriter } from './tick-writer.ts';
import type { TopicRelay } from './topic-relay.ts';
import type { TopicHub } from './topics.ts';
import {
  type Connector,
  type ConnectorBuildContext,
  type ConnectorContext,
  type ConnectorFactory,
  type ConnectorHealth,
  type ConnectorSpec,
  ConnectorSpecError,
  type Tick,
  type TriggerRequest,
  type TriggerResult,
} from './types.ts';
import { WsFeedConnector } from './ws-feed.ts';

export type ConnectorOrigin = 'config' | 'api' | 'code';

export interface ConnectorStatus extends ConnectorHealth {
  name: string;
  tenant: string;
  kind: string;
  origin: ConnectorOrigin;
  enabled: boolean;
  /** The topic a feed publishes to. */
  topic?: string;
  metrics: Record<string, number>;
  /** The definition, with header values and login messages hidden. */
  spec?: ConnectorSpec;
  startError?: string;
  /** leader: it runs on this node; standby: another node holds its lease, this one takes over if it stops. */
  role: 'leader' | 'standby';
}

interface Entry {
  connector: Connector;
  spec: ConnectorSpec | null;
  origin: ConnectorOrigin;
  started: boolean;
  startError?: string;
  subscriptions: FeedSubscriptions | null;
  /** This node holds the connector's lease. */
  leader: boolean;
  /** Another node holds it; its topic is declared here. */
  standingBy?: boolean;
}

export interface ConnectorManagerDeps {
  settings: ConnectorsSettings;
  store: ConnectorStore;
  records: RecordReader;
  writer: LogWriter;
  topics: TopicHub;
  ticks: TickWriter;
  logger: Logger;
  /** Further kinds definitions may name (StartOptions.connectorKinds). */
  kinds?: Record<string, ConnectorFactory>;
  /** Connectors built in code (StartOptions.connectors). */
  instances?: Connector[];
  /**
   * Private addresses REST-defined connectors may reach (the webhooks' allow-list): other loopback,
   * private and link-local addresses are refused, as for outbound webhooks.
   */
  allowPrivate?: readonly string[];
  /** Which node runs each connector (one node: every lease is its own). */
  leases: ConnectorLeases;
  /** How often a standing-by node tries to take free leases over, and a leader checks it still holds them. */
  leaseCheckMs: number;
  /** Sends this node's topic values to the other nodes (absent on one node). */
  relay?: TopicRelay | null;
  /** The tenants' connector secrets (`{{secrets.NAME}}`). */
  secrets: ConnectorSecrets;
  /** The values of the variables `connectors.env` lists (`{{env.NAME}}` in config-file definitions). */
  env: Readonly<Record<string, string>>;
}

const LIST_PAGE = 1000;

function redact(spec: ConnectorSpec): ConnectorSpec {
  const out: ConnectorSpec = { ...spec };
  if (out.headers && typeof out.headers === 'object') {
    out.headers = Object.fromEntries(Object.keys(out.headers as object).map((k) => [k, '***']));
  }
  if (out.authMessage !== undefined) out.authMessage = '***';
  if (out.http && typeof out.http === 'object') {
    const http = { ...(out.http as Record<string, unknown>) };
    if (http.headers && typeof http.headers === 'object') {
      http.headers = Object.fromEntries(Object.keys(http.headers as object).map((k) => [k, '***']));
    }
    out.http = http;
  }
  return out;
}

export class ConnectorManager {
  private readonly entries = new Map<string, Entry>();
  private readonly breakers = new Map<string, CircuitBreaker>();
  private readonly kinds: Record<string, ConnectorFactory>;
  private readonly addresses: AddressPolicy;
  private closed = false;
  private leaseTimer: NodeJS.Timeout | null = null;
  private leaseRound: Promise<void> | null = null;
  /** Serializes changes of REST definitions: this node's REST calls and the reads of other nodes' changes. */
  private definitions: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ConnectorManagerDeps) {
    this.kinds = {
      'ws-feed': (spec, build) =>
        new WsFeedConnector(spec as unknown as WsFeedOptions, { variables: build.variables }),
      pull: (spec, build) => {
        const options = spec as unknown as PullOptions;
        const provider = options.provider ?? options.name;
        return new PullConnector(options, {
          breaker: this.breaker(spec.tenant, provider, options.circuit),
          variables: build.variables,
        });
      },
      ...deps.kinds,
    };
    this.addresses = new AddressPolicy(deps.allowPrivate ?? []);
    deps.leases.onLost(() => void this.leasesLost());
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

  /** The circuit breaker of a tenant's provider, shared by every connector that names it. */
  breaker(tenant: string, provider: string, options?: PullOptions['circuit']): CircuitBreaker {
    const key = `${tenant}\u0000${provider}`;
    let breaker = this.breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker(provider, { ...DEFAULT_CIRCUIT, ...options }, (state) =>
        this.deps.logger.warn({ tenant, provider, state }, `circuit of provider ${provider} is ${state}`),
      );
      this.breakers.set(key, breaker);
    }
    return breaker;
  }

  /** Every provider circuit, for metrics. */
  circuits(): Array<{ tenant: string; provider: string; state: string }> {
    return [...this.breakers].map(([key, b]) => {
      const [tenant, provider] = key.split('\u0000') as [string, string];
      return { tenant, provider, state: b.state };
    });
  }

  private key(tenant: string, name: string): string {
    return `${tenant}\u0000${name}`;
  }

  /** The `connectors.env` names. */
  get allowedEnv(): ReadonlySet<string> {
    return new Set(this.deps.settings.env);
  }

  /** The connector secrets of the tenants (REST: set, list, delete). */
  get secrets(): ConnectorSecrets {
    return this.deps.secrets;
  }

  /**
   * What a definition's templates may read, asked for at each connect or request: the listed
   * environment variables it names (config file only) and its tenant's secrets it names.
   */
  private buildContext(spec: ConnectorSpec, origin: 'config' | 'api'): ConnectorBuildContext {
    const env: Record<string, string> = {};
    if (origin === 'config') {
      for (const name of envNames(spec)) {
        const value = this.deps.env[name];
        if (value !== undefined && this.deps.settings.env.includes(name)) env[`env.${name}`] = value;
      }
    }
    const secrets = secretNames(spec);
    const { tenant } = spec;
    return {
      variables: async () => ({ ...env, ...(await this.deps.secrets.variables(tenant, secrets)) }),
    };
  }

  private build(spec: ConnectorSpec, origin: 'config' | 'api'): Connector {
    assertValidSpec(spec);
    const problems = templatePolicyProblems(spec, origin, this.allowedEnv);
    if (problems.length > 0) throw new ConnectorSpecError(problems);
    const factory = this.kinds[spec.kind];
    if (!factory) {
      throw new ConnectorSpecError([
        `${spec.name}: unknown connector kind "${spec.kind}" (kinds: ${Object.keys(this.kinds).join(', ')})`,
      ]);
    }
    const connector = factory(spec, this.buildContext(spec, origin));
    if (connector.name !== spec.name || connector.tenant !== spec.tenant) {
      throw new ConnectorSpecError([
        `${spec.name}: the ${spec.kind} factory built a connector of another name or tenant`,
      ]);
    }
    return connector;
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
    this.leaseTimer = setInterval(() => {
      this.leaseRound ??= this.leaseCheck().finally(() => {
        this.leaseRound = null;
      });
    }, this.deps.leaseCheckMs);
    this.leaseTimer.unref();
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
        await this.standBy(entry);
        return;
      }
      entry.leader = true;
      entry.standingBy = false;
    }
    const ctx = this.context(connector);
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
    }
  }

  /** Another node runs it: its topic is known here, with the latest values the running node sends. */
  private async standBy(entry: Entry): Promise<void> {
    if (entry.standingBy) return;
    entry.standingBy = true;
    const feed = entry.connector.feed;
    if (!feed) return;
    const { tenant } = entry.connector;
    try {
      this.deps.topics.declare(tenant, feed.topic, await this.deps.store.lastTickSeq(tenant, feed.topic));
    } catch (err) {
      this.deps.logger.warn({ err, connector: entry.connector.name }, 'could not read the topic seq');
      this.deps.topics.declare(tenant, feed.topic);
    }
    this.deps.relay?.requestLatest(tenant, feed.topic);
  }

  private context(connector: Connector): ConnectorContext {
    const { tenant, name } = connector;
    const principal: Principal = {
      tenant,
      user: `connector:${name}`,
      roles: ['connector'],
      via: 'tenant_key',
    };
    const { writer, records, store, topics, ticks, relay } = this.deps;
    return {
      tenant,
      name,
      logger: this.deps.logger.child({ tenant, connector: name }),
      mutate: (mutations) => writer.mutate(principal, mutations),
      publish: (event) => writer.publish(principal, event),
      records: {
        get: (collection, id) => records.getRecord(tenant, collection, id),
        list: async (collection, filter = {}) => {
          const out = [];
          let after: string | undefined;
          for (;;) {
            const page = await records.listRecords(tenant, collection, {
              limit: LIST_PAGE,
              after,
              filter,
              includeDeleted: false,
            });
            out.push(...page);
            if (page.length < LIST_PAGE) return out;
            after = page[page.length - 1]!.id;
          }
        },
      },
      topics: {
        declare: async (topic) => topics.declare(tenant, topic, await store.lastTickSeq(tenant, topic)),
        tick: (topic, input) => {
          const tick = topics.tick(tenant, topic, input);
          relay?.tick(tenant, topic, tick);
          return tick;
        },
        depth: (topic, input) => {
          const depth = topics.depth(tenant, topic, input);
          relay?.depth(tenant, topic, depth);
          return depth;
        },
      },
      state: {
        get: async <T>(key: string) => (await store.getState(tenant, name, key)) as T | null,
        put: (key, value) => store.putState(tenant, name, key, value),
      },
      persistTicks: (topic, list) => ticks.add(tenant, topic, list),
    };
  }

  private entry(tenant: string, name: string): Entry {
    const entry = this.entries.get(this.key(tenant, name));
    if (!entry) throw new SyncError('NOT_FOUND', `no connector ${name}`);
    return entry;
  }

  private statusOf(entry: Entry): ConnectorStatus {
    const { connector } = entry;
    let health: ConnectorHealth;
    let metrics: Record<string, number> = {};
    try {
      health = connector.health();
      metrics = connector.metrics?.() ?? {};
    } catch (err) {
      health = {
        state: 'failed',
        lastSuccessAt: null,
        lastError: `health check failed: ${(err as Error).message}`,
        stalenessMs: null,
        stale: false,
      };
    }
    if (!entry.started && health.state !== 'failed') {
      health = { ...health, state: entry.startError ? 'failed' : 'stopped' };
    }
    const status: ConnectorStatus = {
      name: connector.name,
      tenant: connector.tenant,
      kind: connector.kind,
      origin: entry.origin,
      enabled: entry.spec?.enabled !== false,
      ...health,
      metrics,
      role: entry.leader ? 'leader' : 'standby',
    };
    if (connector.feed) {
      status.topic = connector.feed.topic;
      const topic = this.deps.topics.stats(connector.tenant, connector.feed.topic);
      status.details = { ...status.details, subscribers: topic.subscribers, conflating: topic.conflating };
    }
    if (entry.spec) status.spec = redact(entry.spec);
    if (entry.startError) {
      status.startError = entry.startError;
      status.lastError ??= entry.startError;
    }
    return status;
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

  private checkSpec(tenant: string, name: string, spec: Record<string, unknown>): ConnectorSpec {
    if (spec.tenant !== undefined && spec.tenant !== tenant) {
      throw new SyncError('FORBIDDEN', 'a connector belongs to the tenant of the caller');
    }
    const full = { ...spec, tenant, name } as ConnectorSpec;
    try {
      this.build(full, 'api');
    } catch (err) {
      if (err instanceof ConnectorSpecError) {
        throw new SyncError('BAD_REQUEST', `invalid connector: ${err.message}`, { problems: err.problems });
      }
      throw err;
    }
    return full;
  }

  /** Every connector secret a REST definition names must exist in its tenant. */
  private async checkSecrets(spec: ConnectorSpec): Promise<void> {
    const missing = await this.deps.secrets.missing(spec.tenant, secretNames(spec));
    if (missing.length === 0) return;
    const problems = missing.map(
      (name) =>
        `${spec.name}: {{secrets.${name}}} names no connector secret of this tenant (PUT /v1/connector-secrets/${name} first)`,
    );
    throw new SyncError('BAD_REQUEST', `invalid connector: ${problems.join('; ')}`, { problems });
  }

  /** The upstream addresses of a REST-defined built-in connector must pass the SSRF policy. */
  private async checkAddresses(spec: ConnectorSpec): Promise<void> {
    const urls: string[] = [];
    if (spec.kind === 'ws-feed' && typeof spec.url === 'string') urls.push(spec.url.replace(/^ws/, 'http'));
    const http = spec.http as { baseUrl?: unknown } | undefined;
    if (spec.kind === 'pull' && typeof http?.baseUrl === 'string') urls.push(http.baseUrl);
    for (const url of urls) {
      try {
        await this.addresses.checkUrl(url);
      } catch (err) {
        if (!(err instanceof SyncError)) throw err;
        throw new SyncError(
          'BAD_REQUEST',
          err.message.replace('webhooks may not target it', 'connectors may not reach it'),
        );
      }
    }
  }

  /** Defines and starts a connector (REST); it is stored and comes back after a restart. */
  create(tenant: string, spec: Record<string, unknown>): Promise<ConnectorStatus> {
    return this.serialized(() => this.createNow(tenant, spec));
  }

  private async createNow(tenant: string, spec: Record<string, unknown>): Promise<ConnectorStatus> {
    const name = String(spec.name ?? '');
    if (this.entries.has(this.key(tenant, name))) throw new SyncError('CONFLICT', `connector ${name} exists`);
    const full = this.checkSpec(tenant, name, spec);
    await this.checkSecrets(full);
    await this.checkAddresses(full);
    await this.deps.store.putConnector(tenant, name, full);
    const entry = this.add(this.build(full, 'api'), full, 'api');
    await this.launch(entry);
    return this.statusOf(entry);
  }

  private mutable(entry: Entry): void {
    if (entry.origin !== 'api') {
      throw new SyncError(
        'FORBIDDEN',
        `connector ${entry.connector.name} is defined in ${entry.origin === 'config' ? 'the config file' : 'code'}; change it there`,
      );
    }
  }

  /** Replaces a REST-defined connector's definition and restarts it (its state, e.g. cursors, stays). */
  replace(tenant: string, name: string, spec: Record<string, unknown>): Promise<ConnectorStatus> {
    return this.serialized(() => this.replaceNow(tenant, name, spec));
  }

  private async replaceNow(
    tenant: string,
    name: string,
    spec: Record<string, unknown>,
  ): Promise<ConnectorStatus> {
    const entry = this.entry(tenant, name);
    this.mutable(entry);
    const full = this.checkSpec(tenant, name, spec);
    await this.checkSecrets(full);
    await this.checkAddresses(full);
    const next = this.build(full, 'api');
    await this.stopEntry(entry);
    await this.deps.store.putConnector(tenant, name, full);
    const fresh = this.add(next, full, 'api');
    await this.launch(fresh);
    return this.statusOf(fresh);
  }

  remove(tenant: string, name: string): Promise<void> {
    return this.serialized(() => this.removeNow(tenant, name));
  }

  private async removeNow(tenant: string, name: string): Promise<void> {
    const entry = this.entry(tenant, name);
    this.mutable(entry);
    await this.stopEntry(entry);
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
    if (!connector.trigger)
      throw new SyncError('BAD_REQUEST', `connector ${name} (${connector.kind}) cannot be triggered`);
    if (!entry.started) throw new SyncError('UNAVAILABLE', this.notRunning(entry));
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
    if (!entry.subscriptions) throw new SyncError('UNAVAILABLE', this.notRunning(entry));
    return { feed, subs: entry.subscriptions };
  }

  private notRunning(entry: Entry): string {
    const { name } = entry.connector;
    return entry.standingBy && !entry.leader
      ? `connector ${name} runs on another node (this node stands by for it); ask that node`
      : `connector ${name} is not running`;
  }

  /** The topic a feed connector publishes to. */
  topicOf(tenant: string, name: string): string {
    const feed = this.entry(tenant, name).connector.feed;
    if (!feed) throw new SyncError('NOT_FOUND', `connector ${name} is not a feed`);
    return feed.topic;
  }

  /**
   * A feed symbol's ticks in a time range: those stored, those still waiting to be, and those kept in
   * memory (all of a feed that does not persist), without duplicates.
   */
  async history(tenant: string, name: string, symbol: string, query: TickQuery): Promise<Tick[]> {
    const topic = this.topicOf(tenant, name);
    const bySeq = new Map<number, Tick>();
    for (const t of await this.deps.store.ticks(tenant, topic, symbol, query)) bySeq.set(t.seq, t);
    for (const t of this.deps.ticks.pending(tenant, topic, symbol)) bySeq.set(t.seq, t);
    for (const t of this.deps.topics.recent(tenant, topic, symbol)) bySeq.set(t.seq, t);
    const inRange = [...bySeq.values()].filter(
      (t) => (query.from === undefined || t.ts >= query.from) && (query.to === undefined || t.ts < query.to),
    );
    const dir = query.order === 'desc' ? -1 : 1;
    inRange.sort((a, b) => dir * (a.ts - b.ts || a.seq - b.seq));
    return inRange.slice(0, query.limit);
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
