/** What the realtime gateway needs from the rest of the server, wired by the composition root. */
import type { Logger } from 'pino';
import type { TokenService } from '../auth/tokens.ts';
import type { ServerConfig } from '../config/config.ts';
import type { CollectionRegistry } from '../core/collections.ts';
import type { RateLimiter } from '../core/rate-limit.ts';
import type { LogWrites } from '../log/ports.ts';
import type { Store } from '../store/types.ts';
import type { RealtimeCounters } from './counters.ts';
import type { HealthPush } from './health-push.ts';
import type { FanoutHub } from './hub.ts';
import type { TopicHub } from './topic-hub.ts';

export interface RealtimeContext {
  config: Pick<
    ServerConfig,
    | 'maxFrameBytes'
    | 'maxBufferedBytes'
    | 'heartbeatMs'
    | 'idleTimeoutMs'
    | 'helloTimeoutMs'
    | 'allowedOrigins'
    | 'retention'
    | 'maxConnections'
    | 'upgradeTimeoutMs'
    | 'floodCloseAfter'
    | 'maxJsonDepth'
  >;
  store: Store;
  writer: LogWrites;
  hub: FanoutHub;
  /** Collection settings: the access rules of records channels are read from here at every event. */
  collections: CollectionRegistry;
  tokens: TokenService;
  logger: Logger;
  /** Traffic counters, read by the metrics registry at scrape time. */
  metrics: RealtimeCounters;
  /** Pushes sync health to operators' connections (absent: no health messages). */
  health?: HealthPush;
  /** Token buckets per user and tenant, shared with REST. */
  rateLimiter: RateLimiter;
  /** Counts authenticated connections per user; `admit` refuses past the per-user cap. */
  admission: { admit(tenant: string, user: string): boolean; release(tenant: string, user: string): void };
  /** `topic:` channels (connectors' feeds); without it they are refused. */
  topics?: TopicHub;
}
