/**
 * What the webhook subsystem keeps durably, and the contract each store implements for it
 * (sqlite/webhook-store.ts, postgres/webhook-store.ts). Times are epoch milliseconds.
 *
 * Delivery life cycle: `pending` (queued, or waiting for a retry at `nextAttemptAt`) → `success` (a 2xx)
 * or `failed` (dead letter: retries exhausted). A worker holds a pending delivery while it sends it by a
 * lease (`lockedUntil`, `lockedBy`): nobody else claims it until the lease runs out, so a delivery whose
 * sender crashed is sent again after the lease (or at once when its node restarts).
 */
import type { DeliveryAttempt, DeliveryStatus, WebhookStatus } from '@syncbridge/protocol';
import type { NewDelivery } from './types.ts';

export interface WebhookSecretEntry {
  secret: string;
  /** When a rotated-out secret stops signing (epoch ms); absent on the current one. */
  expiresAt?: number;
}

export interface WebhookEndpoint {
  tenant: string;
  id: string;
  name: string;
  platform: string | null;
  url: string;
  description: string | null;
  eventTypes: string[];
  headers: Record<string, string>;
  delivery: 'parallel' | 'ordered';
  rateLimit: number | null;
  maxConcurrency: number;
  /** Current secret first, then rotated-out ones still inside their overlap window. */
  secrets: WebhookSecretEntry[];
  status: WebhookStatus;
  statusReason: string | null;
  totalCalls: number;
  failedCalls: number;
  consecutiveFailures: number;
  lastTriggeredAt: number | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** A delivery to write (defined beside the store that writes it in the commit's transaction). */
export type { NewDelivery };

export interface DeliveryRow extends NewDelivery {
  status: DeliveryStatus;
  attempts: number;
  /** `attempts` when the current retry budget started (a manual retry or replay starts a new one). */
  budgetStart: number;
  nextAttemptAt: number;
  lockedUntil: number | null;
  lockedBy: string | null;
  completedAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  lastDurationMs: number | null;
}

/** What one attempt found out, and what happens to the delivery next. */
export interface AttemptResult {
  deliveryId: string;
  tenant: string;
  webhookId: string;
  /** 1 for the first attempt. */
  attempt: number;
  startedAt: number;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseBody: string | null;
  success: boolean;
  /** The delivery's state after this attempt. */
  next: { status: 'success' } | { status: 'failed' } | { status: 'pending'; at: number };
  /** Counts towards the endpoint's consecutive failures (a 429 does not: the endpoint answered). */
  countsAsFailure: boolean;
  /** Disable the endpoint with this reason (a 410 Gone). */
  disable?: string;
}

export interface ClaimRequest {
  tenant: string;
  webhookId: string;
  ordered: boolean;
  limit: number;
}

export interface CycleInput {
  results: AttemptResult[];
  claims: ClaimRequest[];
  now: number;
  leaseUntil: number;
  node: string;
  /** Disable an endpoint once this many attempts in a row failed (0: never). */
  disableAfter: number;
}

export interface CycleOutput {
  claimed: DeliveryRow[];
  /** Endpoints whose status this cycle changed (410, too many failures). */
  disabled: { tenant: string; id: string; reason: string }[];
}

export interface DeliveryQuery {
  status?: DeliveryStatus;
  limit: number;
}

export interface PlatformCounts {
  platform: string | null;
  pending: number;
  failed: number;
  inFlight: number;
  oldestPendingAt: number | null;
  lastSuccessAt: number | null;
}

export interface PeriodStats {
  platform: string | null;
  completed: number;
  failed: number;
  pending: number;
  /** Sum and max of (delivered − created) over the completed ones. */
  totalSyncMs: number;
  maxSyncMs: number | null;
}

export interface ReplayInput {
  deliveries: NewDelivery[];
  now: number;
  /** Leave deliveries that already succeeded alone. */
  onlyFailed: boolean;
}

/**
 * The webhook tables of a store: endpoints, deliveries and their attempts. The worker step is the
 * ledger's (ledger.ts), over the primitives of LedgerStore; a driver holds SQL only.
 */
export interface WebhookStore extends LedgerStore {
  /** Every endpoint of every tenant (the in-memory registry loads them at start). */
  listAllEndpoints(): Promise<WebhookEndpoint[]>;
  listEndpoints(tenant: string): Promise<WebhookEndpoint[]>;
  getEndpoint(tenant: string, id: string): Promise<WebhookEndpoint | null>;
  insertEndpoint(endpoint: WebhookEndpoint): Promise<void>;
  /** Replaces the settings, secrets and status (counters are kept). */
  updateEndpoint(endpoint: WebhookEndpoint): Promise<void>;
  /** Deletes the endpoint with its deliveries and attempts; false if there was none. */
  deleteEndpoint(tenant: string, id: string): Promise<boolean>;
  /**
   * Queues deliveries outside the log transaction (replay): a delivery of an event the endpoint has one
   * for already is reset to pending with a fresh retry budget instead (unless it is pending, or it
   * succeeded and `onlyFailed`). Returns how many were queued or reset.
   */
  replay(input: ReplayInput): Promise<number>;
  listDeliveries(tenant: string, webhookId: string, query: DeliveryQuery): Promise<DeliveryRow[]>;
  getDelivery(tenant: string, webhookId: string, deliveryId: string): Promise<DeliveryRow | null>;
  listAttempts(tenant: string, deliveryIds: string[]): Promise<Map<string, DeliveryAttempt[]>>;
  /** Sends a delivery again soon with a fresh retry budget; false if unknown or in flight. */
  retryDelivery(tenant: string, webhookId: string, deliveryId: string, now: number): Promise<boolean>;
  /** Makes every pending delivery (of a platform or endpoint) due now; returns how many. */
  trigger(tenant: string, filter: { platform?: string; webhookId?: string }, now: number): Promise<number>;
  pendingDeliveries(tenant: string, platform: string | undefined, limit: number): Promise<DeliveryRow[]>;
  countsByPlatform(tenant: string, now: number): Promise<PlatformCounts[]>;
  /** (delivered − created) of successful deliveries created since `since`, per platform. */
  recentLags(
    tenant: string,
    since: number,
    limit: number,
  ): Promise<{ platform: string | null; lag: number }[]>;
  statsByPlatform(tenant: string, since: number): Promise<PeriodStats[]>;
}

/** How a batch of attempt results changes one endpoint's counters. */
export interface CounterDelta {
  tenant: string;
  webhookId: string;
  calls: number;
  failed: number;
  /** The streak restarts from `consecutive` (a success came in this batch), else grows by it. */
  reset: boolean;
  consecutive: number;
  succeededAt: number | null;
  failedAt: number | null;
  /** A 410 asked to disable the endpoint. */
  disable: string | null;
}

type Awaitable<T> = T | Promise<T>;

/** The lease a claim takes: held by `node` until `until`; rows are due and free at `now`. */
export interface Lease {
  node: string;
  until: number;
  now: number;
}

/**
 * The primitives of one step's transaction. A synchronous driver (SQLite) returns plain values; an
 * asynchronous one (PostgreSQL) promises.
 */
export interface LedgerTransaction {
  /** Logs the attempts and moves each still-pending delivery to its next state, unleased. */
  recordAttempts(results: readonly AttemptResult[], now: number): Awaitable<void>;
  /** Adds one endpoint's counter change (calls, failures, consecutive failures, last times). */
  addCounters(delta: CounterDelta, now: number): Awaitable<void>;
  /** Disables the endpoint unless it is disabled already; true if it changed. */
  disable(tenant: string, id: string, reason: string, now: number): Awaitable<boolean>;
  /** Disables the endpoint if it is active with at least `threshold` consecutive failures; true if it changed. */
  disableFailing(
    tenant: string,
    id: string,
    reason: string,
    now: number,
    threshold: number,
  ): Awaitable<boolean>;
  /** Leases the endpoint's lowest-seq pending delivery if it is due and free. */
  claimHead(claim: ClaimRequest, lease: Lease): Awaitable<DeliveryRow | null>;
  /** Leases up to `claim.limit` due and free pending deliveries of the endpoint, lowest seq first. */
  claimDue(claim: ClaimRequest, lease: Lease): Awaitable<DeliveryRow[]>;
}

/** What the ledger needs of a store: the step's transaction, and the lease bookkeeping outside it. */
export interface LedgerStore {
  /** true: `transact` runs its body synchronously, and the primitives return plain values. */
  readonly synchronousLedger: boolean;
  /** Runs `body` in one transaction. */
  transact<R>(body: (tx: LedgerTransaction) => R): Promise<Awaited<R>>;
  /** Drops the leases a node held (it restarted: whatever it was sending is not in flight any more). */
  releaseLeases(node: string): Promise<number>;
  /**
   * Gives back deliveries this node leased but never sent (held ready, then shutting down or the
   * endpoint paused): unleased, with the attempt their lease counted taken back.
   */
  unclaim(node: string, deliveryIds: string[]): Promise<void>;
  /** Extends the leases this node still holds on these deliveries (they are still being sent). */
  renewLeases(node: string, deliveryIds: string[], until: number): Promise<void>;
  /** Endpoints with pending deliveries and the earliest `nextAttemptAt` among them. */
  pendingEndpoints(): Promise<{ tenant: string; webhookId: string; nextAttemptAt: number }[]>;
}
