/**
 * The Bus carries notifications of committed events between nodes. It never carries the truth: the
 * store does. A node that receives events out of order or with a gap fills the gap from the store.
 */
import type { LogEvent } from '@syncbridge/protocol';

export type BusHandler = (tenant: string, events: LogEvent[]) => void;

export interface Bus {
  readonly kind: string;
  publish(tenant: string, events: LogEvent[]): void;
  subscribe(handler: BusHandler): void;
  close(): Promise<void>;
}
