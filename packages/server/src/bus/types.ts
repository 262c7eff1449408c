/**
 * The Bus carries notifications of committed events between the nodes of a cluster. It never carries
 * the truth: the store does. A message may be lost, duplicated or reordered (a broker restart, a
 * partition); the receiving node's LogSequencer fills any gap from the store before delivering.
 *
 * Each Bus instance is one node's endpoint: `publish` reaches the other nodes, never this one
 * (the node delivers its own commits locally, without a round trip through the broker).
 */
import type { LogEvent } from '@syncbridge/protocol';
import type { Depth, Tick } from '../connectors/types.ts';

/** Committed events of a tenant. */
export interface EventsMessage {
  type: 'events';
  /** The node that committed the events. */
  node: string;
  tenant: string;
  /** The committed events in seq order; empty when they were too large to carry (then read the store). */
  events: LogEvent[];
  /** The last seq committed, so a receiver of an empty message knows how far to read. */
  upTo: number;
  /** When the committing node published it (ms since the epoch), for the transit-time metric. */
  sentAt?: number;
}

/** A node says it is alive, every few seconds (the cluster view). */
export interface HeartbeatMessage {
  type: 'heartbeat';
  node: string;
  url: string;
  connections: number;
  startedAt: string;
}

/** A node asks every other node for a tenant's connections; they answer with `presence`. */
export interface PresenceRequestMessage {
  type: 'presence_request';
  node: string;
  requestId: string;
  tenant: string;
}

export interface PresenceMessage {
  type: 'presence';
  node: string;
  requestId: string;
  connections: unknown[];
}

/**
 * Values of a topic published on the node that runs its feed, for the other nodes' subscribers (a
 * batch, in the order published). Ticks are outside the log: a lost message is a gap in the topic's
 * seq, which the next value of each symbol covers, as conflation does.
 */
export interface TopicValuesMessage {
  type: 'topic';
  node: string;
  tenant: string;
  topic: string;
  ticks: Tick[];
  depth: Depth[];
}

/** A node asks for a topic's latest values (it started, or it stood by); the feed's node answers. */
export interface TopicSyncRequestMessage {
  type: 'topic_sync';
  node: string;
  tenant: string;
  topic: string;
}

export type BusMessage =
  | EventsMessage
  | HeartbeatMessage
  | PresenceRequestMessage
  | PresenceMessage
  | TopicValuesMessage
  | TopicSyncRequestMessage;

export type BusHandler = (message: BusMessage) => void;

export interface Bus {
  readonly kind: string;
  publish(message: BusMessage): void;
  subscribe(handler: BusHandler): void;
  /** Called after the connection to the broker came back: messages may have been lost meanwhile. */
  onReconnect(listener: () => void): void;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Messages larger than this carry no events, only `upTo`: receivers read them from the store. */
export const MAX_CARRIED_BYTES = 256 * 1024;

/** Serializes a message, leaving the events out when they are too large to carry. */
export function encodeBusMessage(message: BusMessage): string {
  const full = JSON.stringify(message);
  if (message.type !== 'events' || full.length <= MAX_CARRIED_BYTES) return full;
  return JSON.stringify({ ...message, events: [] });
}

/** Parses a message from the wire; returns null for anything malformed. */
export function decodeBusMessage(text: string): BusMessage | null {
  try {
    const m = JSON.parse(text) as Record<string, unknown>;
    if (typeof m.node !== 'string') return null;
    switch (m.type) {
      case 'events':
        return typeof m.tenant === 'string' && typeof m.upTo === 'number' && Array.isArray(m.events)
          ? (m as unknown as BusMessage)
          : null;
      case 'heartbeat':
        return typeof m.url === 'string' && typeof m.connections === 'number'
          ? (m as unknown as BusMessage)
          : null;
      case 'presence_request':
        return typeof m.requestId === 'string' && typeof m.tenant === 'string'
          ? (m as unknown as BusMessage)
          : null;
      case 'presence':
        return typeof m.requestId === 'string' && Array.isArray(m.connections)
          ? (m as unknown as BusMessage)
          : null;
      case 'topic':
        return typeof m.tenant === 'string' &&
          typeof m.topic === 'string' &&
          Array.isArray(m.ticks) &&
          Array.isArray(m.depth)
          ? (m as unknown as BusMessage)
          : null;
      case 'topic_sync':
        return typeof m.tenant === 'string' && typeof m.topic === 'string'
          ? (m as unknown as BusMessage)
          : null;
      default:
        return null;
    }
  } catch {
    return null;
  }
}
