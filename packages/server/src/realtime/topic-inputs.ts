/**
 * What a publisher hands a topic: a price update of one symbol, or an order book update, before the
 * topic hub numbers and stamps them (the `Tick` and `Depth` of the protocol). Types only.
 */
import type { DepthLevel } from '@syncbridge/protocol';

/** A price update of one symbol, as a connector hands it to a topic. */
export interface TickInput {
  symbol: string;
  price?: number;
  volume?: number;
  /** Milliseconds since the epoch; the time of publication when absent. */
  ts?: number;
  /** Further fields (open, high, bid...) carried as they are. */
  data?: Record<string, unknown>;
}

export interface DepthInput {
  symbol: string;
  bids: DepthLevel[];
  asks: DepthLevel[];
  ts?: number;
}
