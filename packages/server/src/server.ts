/**
 * The composition root: reads the validated config and wires store, log writer, bus, fan-out hub,
 * realtime gateway and REST into one running server. Nothing else constructs these parts or reaches
 * for process-wide state, so a test can run several servers in one process.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { destination, type Logger, pino } from 'pino';
import { ApiKeys } from './auth/api-keys.ts';
import { TokenService } from './auth/tokens.ts';
import type { MemoryBusNetwork } from './bus/memory-bus.ts';
import { ConfigError, type ServerConfig } from './config/config.ts';
import { createConnectorSystem } from './connectors/index.ts';
import type { Connector, ConnectorFactory } from './connectors/types.ts';
import { CollectionRegistry } from './core/collections.ts';
import { HybridClock } from './core/hlc.ts';
import { RateLimiter } from './core/rate-limit.ts';
import type { ConflictResolver } from './core/strategies.ts';
import { buildHttpApp } from './http/app.ts';
import { RestAuthenticator } from './http/authenticate.ts';
import { guardBranchWrites } from './log/branch-guard.ts';
import { CommitFeed } from './log/commit-feed.ts';
import type { HistoryProgress } from './log/history-compaction.ts';
import { LogWriter } from './log/log-writer.ts';
import { MaintenanceJobs } from './log/maintenance-jobs.ts';
import type { RetentionReport } from './log/retention.ts';
import { registerBusMetrics } from './observability/bus-metrics.ts';
import { MetricsRegistry } from './observability/metrics.ts';
import { registerRealtimeMetrics } from './observability/realtime-metrics.ts';
import { timeStoreReads } from './observability/store-timing.ts';
import { ProjectionRunner } from './plugins/projections.ts';
import type { Middleware, Projection } from './plugins/types.ts';
import { ConnectionAdmission } from './realtime/admission.ts';
import { ClusterView } from './realtime/cluster-view.ts';
import { RealtimeCounters } from './realtime/counters.ts';
import { RealtimeGateway } from './realtime/gateway.ts';
import { HealthPush } from './realtime/health-push.ts';
import { FanoutHub } from './realtime/hub.ts';
import { ruleChangeBarrier } from './realtime/rule-changes.ts';
import { LogSequencer } from './realtime/sequencer.ts';
import { keyStatusOf, sealedCollectionsOf } from './startup/key-rotation.ts';
import { openBus } from './startup/open-bus.ts';
import { causeOf, StartupError } from './startup/reach.ts';
import { openStorage, type Storage, secretBoxFor } from './startup/storage.ts';
import type { Store } from './store/types.ts';
import type { InboundMapper } from './webhooks/inbound.ts';
import { WebhookSystem } from './webhooks/system.ts';

export { openStorage, openStore, secretBoxFor } from './startup/storage.ts';

/** Pending connections the kernel may queue before this process accepts them. */
const LISTEN_BACKLOG = 4096;

export interface SyncbridgeServer {
  /** http://host:port of the running server. */
  url: string;
  port: number;
  config: ServerConfig;
  store: Store;
  /** The admin key, when this start generated it (first start without SYNCBRIDGE_ADMIN_KEY). */
  generatedAdminKey: string | null;
  tokens: TokenService;
  logger: Logger;
  /** Runs the retention job once now (as if the time were `now`); the job also runs on its timer. */
  runRetention(now?: number): Promise<RetentionReport>;
  /** Runs the history compaction job once now (as if the time were `now`); it also runs on its timer. */
  compactHistory(now?: number): Promise<HistoryProgress[]>;
  /** Drains connections and in-flight commits, then closes the store. */
  close(): Promise<void>;
}

/** The HS256 secret: from the config, else generated once into the data dir. */
export function resolveJwtSecret(config: ServerConfig): string {
  if (config.jwtSecret) return config.jwtSecret;
  const file = join(resolve(config.dataDir), 'jwt-secret');
  try {
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    mkdirSync(resolve(config.dataDir), { recursive: true });
    const secret = randomBytes(48).toString('base64url');
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  } catch (err) {
    throw new StartupError(`cannot read or write the JWT secret ${file}: ${causeOf(err)}`, { cause: err });
  }
}

export function createLogger(config: ServerConfig): Logger {
  return pino({ level: config.logLevel, base: { node: config.nodeId } }, destination(2));
}

export interface StartOptions {
  logger?: Logger;
  /** Conflict resolvers for `strategy: custom` collections, by the name their `resolver` setting gives. */
  resolvers?: Record<string, ConflictResolver>;
  /** Validation and side effects around the write path, in order. */
  middleware?: Middleware[];
  /** Derived views over each tenant's log, served at GET /v1/projections/{name}. */
  projections?: Projection[];
  /** Several in-process servers sharing one network form a cluster over the memory bus (tests). */
  busNetwork?: MemoryBusNetwork;
  /** Code mappings of inbound webhook payloads to domain events, by source name (config `inbound`). */
  inboundMappers?: Record<string, InboundMapper>;
  /** Connectors built in code (upstream feeds, pulls, your own), started with the server. */
  connectors?: Connector[];
  /** Further connector kinds that the config file and `POST /v1/connectors` may name. */
  connectorKinds?: Record<string, ConnectorFactory>;
}

export async function startServer(
  config: ServerConfig,
  options: StartOptions = {},
): Promise<SyncbridgeServer> {
  const logger = options.logger ?? createLogger(config);
  const bus = await openBus(config, logger.child({ component: 'bus' }), options.busNetwork);
  const secretBox = secretBoxFor(config, logger);
  let registry: CollectionRegistry | undefined;
  let storage: Storage;
  try {
    // Sealed fields are sealed as the collection settings say, current under the tenant's write lock.
    storage = await openStorage(
      config,
      logger,
      secretBox,
      (tenant, collection) => registry?.peek(tenant, collection)?.settings.sealedFields,
    );
  } catch (err) {
    await bus.close();
    throw err;
  }
  const { store } = storage;
  const collections = new CollectionRegistry(
    storage.collections,
    config.collections,
    options.resolvers,
    secretBox !== null,
  );
  registry = collections;
  // Compile the config file's collection settings now: a bad JSON schema stops the start with a clear
  // message, instead of failing every write of every tenant later.
  const collectionProblems: string[] = [];
  for (const [name, settings] of Object.entries(config.collections)) {
    try {
      collections.compile(settings);
    } catch (err) {
      collectionProblems.push(`collections.${name}: ${(err as Error).message}`);
    }
  }
  if (collectionProblems.length > 0) {
    await storage.close();
    await bus.close();
    throw new ConfigError(collectionProblems);
  }
  const keys = new ApiKeys(storage.keys, config.adminKey);
  const tokens = new TokenService({
    jwtSecret: resolveJwtSecret(config),
    jwtPublicKey: config.jwtPublicKey,
    jwksUrl: config.jwksUrl,
    issuer: config.jwtIssuer,
    audience: config.jwtAudience,
    claimsPath: config.jwtClaimsPath,
  });
  const clock = new HybridClock(config.nodeId, config.hlcMaxDriftMs);
  const middleware = options.middleware ?? [];
  let gateway: RealtimeGateway | null = null;
  // The sources are read at scrape time, once every part below exists.
  const metrics = new MetricsRegistry({
    connections: () => gateway?.size ?? 0,
    subscriptions: () => hub.subscriberCount(),
    deliveries: () => hub.deliveries,
    openConflicts: () => storage.conflicts.countOpenConflicts(),
    node: { id: config.nodeId, store: storage.kind, bus: bus.kind },
  });
  timeStoreReads(store, metrics.storeReadSeconds);
  const counters = new RealtimeCounters();
  const realtimeMetrics = registerRealtimeMetrics(metrics.registry, {
    counters,
    deliveries: () => hub.deliveries,
    subscriptions: () => hub.subscriptions(),
    head: (tenant) => sequencer.head(tenant),
    unsentBytes: () => gateway?.unsentBytes() ?? [],
  });
  const busMetrics = registerBusMetrics(metrics.registry, {
    kind: bus.kind,
    gapFills: () => sequencer.gapsFilled,
  });
  const webhooks = new WebhookSystem(config, store, logger.child({ component: 'webhooks' }), {
    attempted: (attempt) => metrics.attempted(attempt),
  });
  const writer = new LogWriter({
    store: storage.log,
    collections,
    clock,
    logger,
    middleware,
    outbox: webhooks.outbox,
    jsonLimits: { maxDepth: config.maxJsonDepth, maxBytes: config.maxJsonBytes },
    observer: {
      committed: (writes, seconds, statuses, stale) => metrics.committed(writes, seconds, statuses, stale),
      acknowledged: (kind, seconds) => metrics.appendSeconds.observe({ kind }, seconds),
    },
  });
  // Clients' writes (REST, WebSocket) to a branch need the branch (log/branch-guard.ts).
  const clientWrites = guardBranchWrites(writer, (t, c, id, name) =>
    storage.store.branches.getBranch(t, c, id, name),
  );
  const projections = new ProjectionRunner(store, options.projections ?? [], logger);
  const jobs = new MaintenanceJobs({
    retention: storage.maintenance,
    retentionOptions: {
      intervalMs: config.retentionIntervalMs,
      resultRetentionDays: config.resultRetentionDays,
      expiry: config.retention,
      pruned: (table, count) => metrics.retentionPruned.inc({ table }, count),
    },
    history: storage.store,
    historySettings: config.historyCompaction,
    sealed: store.sealedBackfill,
    secretBox,
    keyRotation: { rows: storage.sealedRows, sealedCollections: sealedCollectionsOf(store, config) },
    collections,
    logger,
  });
  const sequencer = new LogSequencer(
    storage.records,
    (tenant, events, mark) => {
      const delivered = hub.dispatch(tenant, events);
      if (mark && delivered > 0) realtimeMetrics.fannedOut(mark.origin, (performance.now() - mark.at) / 1000);
    },
    logger,
    ruleChangeBarrier(collections, (): FanoutHub => hub),
  );
  const hub = new FanoutHub(sequencer);
  const rateLimiter = new RateLimiter(
    { user: config.rateLimits.user, tenant: config.rateLimits.tenant },
    config.rateLimits.tenants,
  );
  // Everything that reacts to a commit, this node's or another's, hears it from the one feed, in order.
  const feed = new CommitFeed(logger);
  feed.connect(writer);
  feed.subscribe(
    'metrics',
    ({ events }) => {
      // One increment per kind, not per event (a group commit's events are mostly of one kind).
      let records = 0;
      for (const e of events) if (e.kind === 'record') records += 1;
      if (records > 0) metrics.events.inc({ kind: 'record' }, records);
      if (records < events.length) {
        for (const e of events) if (e.kind !== 'record') metrics.events.inc({ kind: e.kind });
      }
    },
    { origins: ['local'] },
  );
  feed.subscribe('sequencer', ({ tenant, events, origin, heardAt }) =>
    sequencer.receive(tenant, events, { origin, at: heardAt }),
  );
  feed.subscribe(
    'bus relay',
    ({ tenant, events }) => {
      const publishing = performance.now();
      bus.publish({
        type: 'events',
        node: config.nodeId,
        tenant,
        events,
        upTo: events[events.length - 1]!.seq,
        sentAt: Date.now(),
      });
      busMetrics.published((performance.now() - publishing) / 1000);
    },
    { origins: ['local'] },
  );
  feed.subscribe('projections', ({ tenant, events }) => projections.onCommit(tenant, events));
  feed.subscribe(
    'middleware',
    ({ tenant, events }) => {
      for (const mw of middleware) {
        if (!mw.afterCommit) continue;
        Promise.resolve()
          .then(() => mw.afterCommit!(tenant, events))
          .catch((err: unknown) => logger.error({ err }, 'afterCommit middleware failed'));
      }
    },
    { origins: ['local'] },
  );
  let publicUrl = '';
  const cluster = new ClusterView(bus, {
    node: config.nodeId,
    url: () => publicUrl,
    connections: () => gateway?.size ?? 0,
    list: (tenant) => gateway?.list(tenant) ?? [],
    warn: (message) => logger.warn({ component: 'cluster' }, message),
  });
  bus.subscribe((message) => {
    busMetrics.received(message);
    if (cluster.handle(message) || message.type !== 'events') return;
    const { tenant, events, upTo } = message;
    if (events.length > 0) feed.heard(tenant, events);
    else sequencer.behind(tenant, upTo);
  });
  // Messages lost while the broker was away, or never sent: find them in the store.
  bus.onReconnect(() => {
    busMetrics.reconnected();
    void sequencer.resync();
  });
  const resyncTimer = setInterval(() => void sequencer.resync(), config.busResyncMs);
  resyncTimer.unref();
  writer.onConflicts((tenant, conflicts) => {
    for (const c of conflicts) {
      if (c.status === 'resolved') metrics.conflictsResolved.inc({ resolution: c.resolution ?? 'unknown' });
    }
    gateway?.notifyConflicts(tenant, conflicts);
  });

  // Connectors: upstream feeds into topic channels, scheduled pulls through the writer. Each runs on
  // one node (its lease); with other nodes on the bus, topic values are relayed to them.
  const clustered =
    options.busNetwork !== undefined ||
    (config.busUrl !== undefined && !config.busUrl.startsWith('memory://'));
  const connectors = await createConnectorSystem({
    config,
    store: storage.records,
    connectorStore: storage.connectors,
    leases: storage.leases,
    writer,
    logger: logger.child({ component: 'connectors' }),
    registry: metrics.registry,
    kinds: options.connectorKinds,
    instances: options.connectors,
    bus: clustered ? bus : null,
    secretBox,
  });
  const manager = connectors.manager;
  feed.subscribe('connectors', ({ tenant, events }) => manager.hear(tenant, events));
  gateway = new RealtimeGateway({
    config,
    store,
    writer: clientWrites,
    hub,
    collections,
    tokens,
    logger: logger.child({ component: 'realtime' }),
    metrics: counters,
    rateLimiter,
    admission: new ConnectionAdmission(config.rateLimits.maxConnectionsPerUser),
    health: new HealthPush((tenant) => webhooks.health.health(tenant), logger.child({ component: 'health' })),
    topics: connectors.topics,
  });
  await webhooks.start();
  const app: FastifyInstance = await buildHttpApp(
    {
      records: storage.records,
      versions: storage.store.history,
      conflicts: storage.conflicts,
      devices: storage.devices,
      collectionSettings: storage.collections,
      storeKind: storage.kind,
      storePing: () => storage.ping(),
      writer: clientWrites,
      branches: storage.store.branches,
      collections,
      tokens,
      keys,
      auth: new RestAuthenticator(tokens, keys),
      gateway,
      metrics,
      projections,
      busKind: bus.kind,
      busPing: () => bus.ping(),
      cluster,
      rateLimiter,
      maxBodyBytes: config.maxFrameBytes,
      maxDevicesPerUser: config.retention.maxDevicesPerUser,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      metricsToken: config.metricsToken,
      startedAt: Date.now(),
      webhooks,
      inbound: webhooks.inbound(writer, options.inboundMappers),
      connectors: connectors.manager,
      connectorCalls: connectors.calls,
      sealedBackfill: jobs.sealedBackfill,
      sealedProgress: store.sealedBackfill,
      secretsKeyStatus: keyStatusOf(config, secretBox, store),
    },
    logger,
  );
  jobs.start();
  gateway.attach(app.server);
  let generatedAdminKey: string | null = null;
  const closeParts = async (): Promise<void> => {
    clearInterval(resyncTimer);
    await jobs.stop();
    await gateway.close();
    await connectors.close();
    await app.close();
    await writer.drain();
    await webhooks.close();
    await bus.close();
    await storage.close();
  };
  // Node's default accept queue (511) overflows when thousands of clients come back at once after a
  // restart; each dropped connection then waits for the client's SYN retransmission (1 s, 3 s, 7 s...).
  // The kernel caps this at net.core.somaxconn (4096 on current kernels).
  try {
    await app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG });
  } catch (err) {
    await closeParts();
    const code = (err as { code?: string }).code;
    const why = code === 'EADDRINUSE' ? 'the address is in use' : causeOf(err);
    throw new StartupError(`cannot listen on ${config.host}:${config.port}: ${why}`, { cause: err });
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  publicUrl = `http://${host}:${port}`;
  cluster.start();

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      clearInterval(resyncTimer);
      cluster.stop();
      await closeParts();
    })();
    return closing;
  };
  try {
    await connectors.start();
    // Only now, once the server listens and runs: a start that failed earlier (port in use, bus down)
    // must not use up the one chance to show a generated key.
    generatedAdminKey = await keys.ensureAdminKey();
  } catch (err) {
    await close();
    throw err;
  }
  return {
    url: `http://${host}:${port}`,
    port,
    config,
    store,
    generatedAdminKey,
    tokens,
    logger,
    runRetention: (now) => jobs.retention.runOnce(now),
    compactHistory: (now) => jobs.historyCompaction.runOnce(now),
    close,
  };
}
