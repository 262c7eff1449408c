/**
 * What the REST routes need from the rest of the server, wired by the composition root: the storage
 * ports they read (records, conflicts, devices, collection settings) and the writer's requests, never
 * the whole store or the writer's lifecycle. Routes must never open or close storage.
 */

import type { ApiKeys } from '../auth/api-keys.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { ConnectorCalls } from '../connectors/connector-calls.ts';
import type { ConnectorManager } from '../connectors/manager.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import type { RateLimiter } from '../core/rate-limit.ts';
import type { DeviceStore } from '../devices/registry.ts';
import type { ConflictStore, LogWrites, RecordReader } from '../log/ports.ts';
import type { MetricsRegistry } from '../observability/metrics.ts';
import type { ProjectionRunner } from '../plugins/projections.ts';
import type { ClusterView } from '../realtime/cluster-view.ts';
import type { RealtimeGateway } from '../realtime/gateway.ts';
import type { RotationStatus } from '../startup/key-rotation.ts';
import type { BranchStore } from '../store/branch-types.ts';
import type { HistoryStore } from '../store/history/types.ts';
import type { SealedBackfillStore } from '../store/sealed-backfill.ts';
import type { Store } from '../store/types.ts';
import type { InboundReceiver } from '../webhooks/inbound.ts';
import type { WebhookSystem } from '../webhooks/system.ts';
import type { RestAuthenticator } from './authenticate.ts';

export interface HttpContext {
  records: RecordReader;
  /** One kept version of a record, looked up on the record's index (GET …/versions/{v}, ?version=). */
  versions: Pick<HistoryStore, 'readVersion'>;
  conflicts: ConflictStore;
  devices: DeviceStore;
  /** Stores a collection's settings (and bumps the tenant's collections version). */
  collectionSettings: Pick<Store, 'putCollection'>;
  storeKind: string;
  storePing: () => Promise<void>;
  writer: LogWrites;
  /** Branches of records: fork points and merges (http/routes/branches.ts). */
  branches: BranchStore;
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
  /** Time a client has to send a whole request, body included (a body sent a byte at a time). */
  requestTimeoutMs?: number;
  startedAt: number;
  webhooks: WebhookSystem;
  inbound: InboundReceiver;
  /** Upstream feeds and scheduled pulls. */
  connectors: ConnectorManager;
  /** The trigger and feed-subscription calls, which a standing-by node forwards to the running one. */
  connectorCalls: ConnectorCalls;
  /** Seals in the background what a collection stored before a field joined its sealedFields. */
  sealedBackfill: {
    request(tenant: string, collection: string): void;
    activity(tenant: string, collection: string): 'running' | 'queued' | null;
  } | null;
  /** The backfills' stored progress (GET /v1/collections/{c}/sealed-backfill). */
  sealedProgress: Pick<SealedBackfillStore, 'readProgress'>;
  /** What is still sealed under an older secrets key (startup/key-rotation.ts); absent: no route. */
  secretsKeyStatus?: () => Promise<RotationStatus>;
}
