/**
 * The Bus carries notifications of committed events between the nodes of a cluster. It never carries
 * the truth: the store does. A message may be lost, duplicated or reordered (a broker restart, a
 * partition); the receiving node's LogSequencer fills any gap from the store before delivering.
 *
 * Each Bus instance is one node's endpoint: `publish` reaches the other nodes, never this one
 * (the node delivers its own commits locally, without a round trip through the broker).
 */
import type { LogEvent } from '@syncbridge/protocol';

export interface BusMessage {
  /** The node that committed the events. */
  node: string;
  tenant: string;
  /** The committed events in seq order; empty when they were too large to carry (then read the store). */
  events: LogEvent[];
  /** The last seq committed, so a receiver of an empty message knows how far to read. */
  upTo: number;
}

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
  return full.length <= MAX_CARRIED_BYTES ? full : JSON.stringify({ ...message, events: [] });
}

/** Parses a message from the wire; returns null for anything malformed. */
export function decodeBusMessage(text: string): BusMessage | null {
  try {
    const m = JSON.parse(text) as Partial<BusMessage>;
    if (typeof m.node !== 'string' || typeof m.tenant !== 'string' || typeof m.upTo !== 'number') return null;
    if (!Array.isArray(m.events)) return null;
    return m as BusMessage;
  } catch {
    return null;
  }
}
