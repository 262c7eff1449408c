/** What the REST routes need from the rest of the server, wired by the composition root. */
import type { ApiKeys } from '../auth/api-keys.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { ConnectorManager } from '../connectors/manager.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import type { RateLimiter } from '../core/rate-limit.ts';
import type { MetricsRegistry } from '../observability/metrics.ts';
import type { ProjectionRunner } from '../plugins/projections.ts';
import type { ClusterView } from '../realtime/cluster-view.ts';
import type { RealtimeGateway } from '../realtime/gateway.ts';
import type { LogWriter } from '../store/log-writer.ts';
import type { Store } from '../store/types.ts';
import type { InboundReceiver } from '../webhooks/inbound.ts';
import type { WebhookSystem } from '../webhooks/system.ts';
import type { RestAuthenticator } from './authenticate.ts';

export interface HttpContext {
  store: Store;
  writer: LogWriter;
  collections: CollectionRegistry;
  tokens: TokenService;
  keys: ApiKeys;
  auth: RestAuthenticator;
  gateway: RealtimeGateway;
  metrics: MetricsRegistry;
  projections: ProjectionRunner;
  busKind: string;
  busPing: () => Promise<boolean>;
  cluster: ClusterView;
  rateLimiter: RateLimiter;
  maxBodyBytes: number;
  /** Registering one more device for a user evicts the least recently seen (config `retention`). */
  maxDevicesPerUser: number;
  /** The bearer token GET /metrics needs to show tenant-labelled series (unset: the admin key only). */
  metricsToken?: string;
  /** Time a client has to send a complete request head, upgrades included (slowloris). */
  headersTimeoutMs?: number;
  startedAt: number;
  webhooks: WebhookSystem;
  inbound: InboundReceiver;
  /** Upstream feeds and scheduled pulls. */
  connectors: ConnectorManager;
}
