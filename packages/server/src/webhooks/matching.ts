/**
 * Which log events an endpoint receives, and the JSON body it receives for each.
 *
 * An event's webhook type is its domain event `type` (`trade_closed`), or `record.<collection>.<op>`
 * for a record change (`record.orders.patch`). An endpoint's `eventTypes` are exact types or patterns
 * where `*` stands for any run of characters (`trade_*`, `record.orders.*`, `*`). An endpoint that names a
 * platform does not receive that platform's own events back, nor events addressed to another platform.
 */
import type { LogEvent } from '@syncbridge/protocol';

export function webhookEventType(event: LogEvent): string {
  return event.kind === 'record' ? `record.${event.collection}.${event.op}` : (event.type ?? 'event');
}

const cache = new Map<string, RegExp>();

function patternRegex(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (!re) {
    const source = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'))
      .join('.*');
    re = new RegExp(`^${source}$`);
    if (cache.size > 10_000) cache.clear();
    cache.set(pattern, re);
  }
  return re;
}

export function typeMatches(patterns: readonly string[], type: string): boolean {
  for (const p of patterns) {
    if (p === '*' || p === type) return true;
    if (p.includes('*') && patternRegex(p).test(type)) return true;
  }
  return false;
}

export interface MatchTarget {
  eventTypes: readonly string[];
  platform: string | null;
}

export function eventMatches(endpoint: MatchTarget, event: LogEvent): boolean {
  if (endpoint.platform !== null) {
    if (event.source === endpoint.platform) return false;
    if (event.target !== undefined && event.target !== endpoint.platform) return false;
  }
  return typeMatches(endpoint.eventTypes, webhookEventType(event));
}

/** The JSON body of a delivery (Standard Webhooks shape: `type`, `timestamp`, `data`, plus the log position). */
export function deliveryBody(tenant: string, event: LogEvent): string {
  const body: Record<string, unknown> = {
    id: event.eventId,
    type: webhookEventType(event),
    timestamp: event.ts,
    tenant,
    seq: event.seq,
  };
  if (event.kind === 'record') {
    const data: Record<string, unknown> = {
      collection: event.collection,
      id: event.id,
      op: event.op,
      version: event.version,
      data: event.data ?? null,
    };
    if (event.previous) data.previous = event.previous;
    body.data = data;
  } else {
    if (event.source !== undefined) body.source = event.source;
    if (event.target !== undefined) body.target = event.target;
    if (event.priority !== undefined) body.priority = event.priority;
    body.data = event.payload ?? null;
  }
  body.actor = event.actor;
  return JSON.stringify(body);
}
