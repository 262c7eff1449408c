/**
 * The Bus carries notifications of committed events between the nodes of a cluster. It never carries
 * the truth: the store does. A message may be lost, duplicated or reordered (a broker restart, a
 * partition); the receiving node's LogSequencer fills any gap from the store before delivering.
 *
 * Each Bus instance is one node's endpoint: `publish` reaches the other nodes, never this one
 * (the node delivers its own commits locally, without a round trip through the broker). The messages
 * and their schemas are in messages.ts; what all backends share is in base-bus.ts.
 */
import type { BusMessage } from './messages.ts';

export type {
  BusMessage,
  ConnectorAnswerMessage,
  ConnectorCall,
  ConnectorCallMessage,
  ConnectorsChangedMessage,
  EventsMessage,
  HeartbeatMessage,
  PresenceMessage,
  PresenceRequestMessage,
  TopicSyncRequestMessage,
  TopicValuesMessage,
} from './messages.ts';
export {
  decodeBusMessage,
  encodeBusMessage,
  MAX_CARRIED_BYTES,
  MAX_CONNECTOR_CALL_CHARS,
} from './messages.ts';

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
