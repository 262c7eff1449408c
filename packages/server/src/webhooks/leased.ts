/**
 * Deliveries leased to this node and not sent yet: how many an endpoint may hold, which of a commit's
 * own deliveries its commit can lease (so they are sent without a claim), the leased row one of them is
 * as the commit wrote it (attempts 1, leased to the committing node), and starting or giving them back.
 */
import type { Logger } from 'pino';
import type { EndpointScheduler, EndpointState } from './endpoint-scheduler.ts';
import type { WebhookLedger } from './ledger.ts';
import type { WebhookRegistry } from './registry.ts';
import type { DeliveryRow, NewDelivery, WebhookEndpoint } from './types.ts';

/**
 * How many deliveries of an endpoint this node may hold leased at once: an ordered endpoint its head
 * only, a parallel one its concurrency. A lease means "being sent" to the API (`inFlight`), so a delivery
 * is leased only when it can start: one held ready waits only for its commit, or for the same step.
 */
export function leaseCap(e: WebhookEndpoint): number {
  return e.delivery === 'ordered' ? 1 : e.maxConcurrency;
}

/** Deliveries this node holds or will hold leased for the endpoint. */
export function held(s: EndpointState): number {
  return s.inFlight + s.ready.length + s.reserved;
}

/**
 * Whether a new delivery to this endpoint can be leased by its commit: the endpoint is active, parallel
 * (an ordered one sends its lowest-seq delivery only) and not rate-limited, has room, and nothing older
 * may be waiting for a claim (which the new one would pass).
 */
export function startsAtOnce(e: WebhookEndpoint | undefined, s: EndpointState): boolean {
  return (
    e?.status === 'active' &&
    e.delivery === 'parallel' &&
    e.rateLimit === null &&
    !s.backlog &&
    held(s) < leaseCap(e)
  );
}

/** The row a delivery with a `lease` is once its commit wrote it. */
export function leasedRow(d: NewDelivery): DeliveryRow {
  const lease = d.lease!;
  return {
    ...d,
    status: 'pending',
    attempts: 1,
    budgetStart: 0,
    nextAttemptAt: d.createdAt,
    lockedUntil: lease.until,
    lockedBy: lease.node,
    completedAt: null,
    lastStatus: null,
    lastError: null,
    lastDurationMs: null,
  };
}

/** What starting and giving back held deliveries needs of the dispatcher. */
export interface Holder {
  closed(): boolean;
  launch(row: DeliveryRow): void;
  /** The deliveries whose leases the dispatcher renews. */
  leased: Set<string>;
  scheduler: EndpointScheduler;
  dispatcher: { registry: WebhookRegistry; ledger: WebhookLedger; node: string; logger: Logger };
}

/**
 * Starts an endpoint's ready deliveries while it has room, lowest seq first. Those of an endpoint that
 * is not active any more (paused, disabled, deleted), or all when shutting down, are given back unsent.
 */
export function pumpReady(h: Holder, s: EndpointState): void {
  if (s.ready.length === 0) return;
  const e = h.dispatcher.registry.get(s.tenant, s.id);
  if (h.closed() || e?.status !== 'active') {
    giveBack(h, s.ready.splice(0));
    return;
  }
  const room = (e.delivery === 'ordered' ? 1 : e.maxConcurrency) - s.inFlight;
  if (room <= 0) return;
  if (s.ready.length > 1) s.ready.sort((a, b) => a.seq - b.seq);
  for (const row of s.ready.splice(0, room)) h.launch(row);
}

/** Leased, never sent: unleased with their attempt taken back, for a later step or another node. */
function giveBack(h: Holder, rows: DeliveryRow[]): void {
  if (rows.length === 0) return;
  for (const r of rows) h.leased.delete(r.id);
  const { ledger, node, logger } = h.dispatcher;
  ledger
    .unclaim(
      node,
      rows.map((r) => r.id),
    )
    .catch((err: unknown) =>
      logger.warn({ err }, 'could not give back webhook deliveries; their leases run out'),
    );
}

/**
 * Inside a commit's transaction, before its deliveries are written: leases to this node those it can
 * start at once (`startsAtOnce`), counting them as reserved. The others are left for a step, and hold
 * back later ones (the endpoint has a backlog).
 */
export function reserveLeases(h: Holder, deliveries: readonly NewDelivery[], until: number): void {
  const { registry, node } = h.dispatcher;
  for (const d of deliveries) {
    const s = h.scheduler.state(d.tenant, d.webhookId);
    if (startsAtOnce(registry.get(d.tenant, d.webhookId), s)) {
      s.reserved += 1;
      d.lease = { node, until };
    } else s.backlog = true;
  }
}

/** Reserved deliveries whose commit did not happen: no longer reserved. Whether any was. */
export function abandonLeases(h: Holder, deliveries: readonly NewDelivery[]): boolean {
  let freed = false;
  for (const d of deliveries) {
    if (d.lease?.node !== h.dispatcher.node) continue;
    h.scheduler.state(d.tenant, d.webhookId).reserved -= 1;
    delete d.lease;
    freed = true;
  }
  return freed;
}

/** Committed deliveries: the leased ones are held ready and started; the others' endpoints have work. */
export function holdCommitted(h: Holder, deliveries: readonly NewDelivery[]): void {
  const touched = new Set<EndpointState>();
  for (const d of deliveries) {
    if (d.lease?.node === h.dispatcher.node) {
      const s = h.scheduler.state(d.tenant, d.webhookId);
      s.reserved -= 1;
      holdRow(h, s, leasedRow(d));
      touched.add(s);
    } else h.scheduler.markHot(d.tenant, d.webhookId);
  }
  for (const s of touched) pumpReady(h, s);
}

/** Keeps a delivery leased to this node ready to send (its lease renewed meanwhile). */
export function holdRow(h: Holder, s: EndpointState, row: DeliveryRow): void {
  s.ready.push(row);
  h.leased.add(row.id);
}
