/**
 * A commit's own deliveries, sent without a claim: which of them an endpoint can start at once, and the
 * leased row one of them is, as the commit wrote it (attempts 1, leased to the committing node).
 */
import type { EndpointState } from './endpoint-scheduler.ts';
import type { DeliveryRow, NewDelivery, WebhookEndpoint } from './types.ts';

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
    s.inFlight < e.maxConcurrency
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
